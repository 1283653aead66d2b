"""A long transcript to the approval point: wall time and peak memory (issue 17 item 2).

    .venv/bin/python benchmarks/transcript.py --mib 2 [--mib 20] [--engine offline] [--phases]

For each size, a WebVTT meeting of that many MiB is generated (the sample stand-up's lines over
and over, ``tests/durability/crashkit.long_meeting_vtt``), put in a fresh local store, and the
minutes agent runs in a child process (a fresh interpreter: its peak RSS is the run's alone)
until it waits for approval. Prints a table: size, chunks, wall seconds, the child's CPU seconds
(user + system: what the run costs, whatever the machine's load) and peak RSS (MB), both from
``resource.getrusage(RUSAGE_CHILDREN)``. ``--engine free`` answers every chunk at once with no
text work (as a model whose calls cost nothing would): the pipeline's own share (parse, the
transcript annotation, plan, one task and one saved result per chunk, checkpoints, merge). Goal (issue 17): 20 MiB in < 60 s and < 500 MB on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, sys, time
import marginalia
from marginalia.engines.offline import OfflineEngine
from marginalia.schemas import Minutes
from marginalia.storage.local import LocalStore


class FreeEngine(OfflineEngine):
    # 'free': a model whose calls cost nothing (no text work), to time the pipeline alone
    name = "free"

    def extract_minutes(self, transcript, *, first_segment=0, hint_date=None, chunks=1):
        return Minutes(title=f"segments {first_segment}+", summary=f"{len(transcript.segments)} segments")

    def merge_minutes(self, parts, transcript):
        return Minutes(title="merged", summary=f"{len(parts)} parts")


root, engine = sys.argv[1], sys.argv[2]
engine = FreeEngine() if engine == "free" else engine
store = LocalStore(root)
started = time.monotonic()
result = marginalia.minutes("s3://meet/long.vtt", store=store, engine=engine)
print(json.dumps({"status": result.status, "seconds": time.monotonic() - started}))
"""


def meeting_vtt(mib: float) -> bytes:
    """The generated meeting of about ``mib`` MiB (the crash tests' long meeting)."""
    sys.path.insert(0, str(ROOT / "tests" / "durability"))
    import crashkit

    return crashkit.long_meeting_vtt(int(mib * (1 << 20) * 0.8))


def run(mib: float, engine: str) -> dict:
    from marginalia.nodes.minutes import DEFAULT_CHUNK_CHARS, plan_chunks
    from marginalia.storage.local import LocalStore
    from marginalia.tools.transcripts import parse_transcript

    data = meeting_vtt(mib)
    chunks = len(
        plan_chunks([len(s.text) for s in parse_transcript(data, filename="x.vtt").segments], DEFAULT_CHUNK_CHARS)
    )
    root = tempfile.mkdtemp(prefix="marginalia-transcript-")
    store = LocalStore(root)
    store.create_bucket("meet")
    store.put_object("meet", "long.vtt", data)
    store.close()
    env = {**os.environ, "MARGINALIA_STORE": f"local:{root}"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", CHILD, root, engine], env=env, capture_output=True, text=True)
    wall = time.monotonic() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = usage.ru_maxrss  # KiB, the largest child so far
    cpu = (usage.ru_utime + usage.ru_stime) - (before.ru_utime + before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"{mib} MiB: the run failed: {proc.stderr.strip().splitlines()[-1:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"mib": len(data) / (1 << 20), "chunks": chunks, "seconds": wall, "run_seconds": out["seconds"],
            "cpu": cpu, "peak_mb": max(peak, before.ru_maxrss) / 1024, "status": out["status"]}  # fmt: skip


def phases(mib: float) -> dict[str, float]:
    """CPU seconds of the offline engine's share, step by step, in this process (no graph, no
    store): parse, the plan's cleaning, every chunk's ``extract_minutes``, the merge."""
    from marginalia.engines.meeting_cleaning import clean_text
    from marginalia.engines.offline import OfflineEngine
    from marginalia.nodes.minutes import DEFAULT_CHUNK_CHARS, plan_chunks
    from marginalia.schemas import Transcript
    from marginalia.tools.transcripts import parse_transcript

    data = meeting_vtt(mib)
    took: dict[str, float] = {}
    clock = time.process_time()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.process_time()
        took[name], clock = now - clock, now

    transcript = parse_transcript(data, filename="long.vtt")
    lap("parse")
    chunks = plan_chunks([len(clean_text(s.text)) for s in transcript.segments], DEFAULT_CHUNK_CHARS)
    lap("plan")
    engine = OfflineEngine()
    parts = [
        engine.extract_minutes(
            Transcript(language=transcript.language, speakers=transcript.speakers, segments=transcript.segments[a:b]),
            first_segment=a,
            chunks=len(chunks),
        )
        for a, b in chunks
    ]
    lap("chunks")
    engine.merge_minutes(parts, transcript)
    lap("merge")
    return took


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=float, action="append", help="transcript size in MiB (repeatable)")
    parser.add_argument(
        "--engine", default="offline", help="offline, or free: a model whose calls cost nothing (the pipeline alone)"
    )
    parser.add_argument(
        "--phases", action="store_true", help="also time the offline engine's steps in this process (CPU s)"
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(
        f"{'MiB':>6s} {'chunks':>7s} {'seconds':>8s} {'CPU s':>7s} {'peak MB':>8s}  status   (cores: {os.cpu_count()}, load {load:.1f})"
    )
    for mib in args.mib or [2.0]:
        row = run(mib, args.engine)
        print(
            f"{row['mib']:6.1f} {row['chunks']:7d} {row['seconds']:8.1f} {row['cpu']:7.1f} {row['peak_mb']:8.0f}  {row['status']}",
            flush=True,
        )
    if args.phases:
        for mib in args.mib or [2.0]:
            took = phases(mib)
            print(
                f"offline engine, {mib:g} MiB requested, CPU s: " + ", ".join(f"{k} {v:.1f}" for k, v in took.items())
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
