"""Seconds the offline engine takes to minute a 1-hour meeting and a 1 MB transcript.

    python benchmarks/meeting_speed.py                       # this checkout's engine
    git worktree add /tmp/before a5ffadd && PYTHONPATH=/tmp/before/src python benchmarks/meeting_speed.py

It imports only what every version of the engine has (OfflineEngine, text.word_count, the
schemas, parse_transcript), so the same inputs can be timed on an older checkout: like with
like. The hour is the QMSum meetings' segments in turn until 9,000 words (an hour of speech at
150 words a minute); the megabyte, the same until 1,000,000 characters. Wall and CPU seconds,
best of 3 (of 1 for the megabyte), after one warm-up run; on a shared machine trust the CPU.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

if "PYTHONPATH" not in os.environ:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from marginalia.engines import text as nlp  # noqa: E402
from marginalia.engines.offline import OfflineEngine  # noqa: E402
from marginalia.schemas import Segment, Transcript  # noqa: E402
from marginalia.tools.transcripts import parse_transcript  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "meetings" / "qmsum"


def meeting(pool: list[Segment], *, words: int = 0, chars: int = 0) -> Transcript:
    segments: list[Segment] = []
    said_words = said_chars = 0
    while said_words < words or said_chars < chars:
        seg = pool[len(segments) % len(pool)]
        segments.append(Segment(id=len(segments), speaker=seg.speaker, text=seg.text))
        said_words += nlp.word_count(seg.text)
        said_chars += len(seg.text)
    return Transcript(speakers=list(dict.fromkeys(s.speaker for s in segments if s.speaker)), segments=segments)


def main() -> int:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else FIXTURES
    paths = sorted(folder.glob("*.json"))
    if not paths:
        print(f"skipped: no QMSum meetings in {folder}")
        return 0
    pool = [seg for p in paths for seg in parse_transcript(p.read_bytes(), filename=p.name).segments]
    engine = OfflineEngine()
    hour, megabyte = meeting(pool, words=9_000), meeting(pool, chars=1_000_000)
    engine.extract_minutes(hour)
    print(f"engine from {Path(sys.modules['marginalia'].__file__).parent} (load average {os.getloadavg()[0]:.1f})")
    for label, transcript, runs in (("1-hour meeting", hour, 3), ("1 MB transcript", megabyte, 1)):
        best = None
        for _ in range(runs):
            wall, cpu = time.perf_counter(), time.process_time()
            engine.extract_minutes(transcript)
            took = (time.perf_counter() - wall, time.process_time() - cpu)
            best = took if best is None or took[0] < best[0] else best
        print(f"{label}: {len(transcript.segments)} segments, wall {best[0]:.2f} s, CPU {best[1]:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
