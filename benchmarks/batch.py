"""Batch throughput: objects per second of ``marginalia batch`` with 1, 2 and 4 workers.

    .venv/bin/python benchmarks/batch.py [--objects 200] [--workers 1,2,4]

The objects are derived from the packaged stand-up transcript (each one a variant with its own
ETag), in a fresh local bucket per worker count; the minutes agent runs with ``--yes`` on the
offline engine, so a run goes through ingest, transcript, extraction, approval and annotate, and
writes its checkpoints and trace archive like any other.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=200)
    parser.add_argument("--workers", default="1,2,4")
    args = parser.parse_args()
    import marginalia
    from marginalia.batch import batch
    from marginalia.storage.local import LocalStore

    vtt = (Path(marginalia.__file__).parent / "samples" / "standup.vtt").read_bytes()
    print(f"{'workers':>7} {'objects':>7} {'seconds':>8} {'objects/s':>9}")
    for workers in (int(w) for w in args.workers.split(",")):
        store = LocalStore(Path(tempfile.mkdtemp(prefix="marginalia-batch-")))
        store.create_bucket("meetings")
        for i in range(args.objects):
            store.put_object("meetings", f"m/{i:04d}.vtt", vtt + f"\n\nNOTE meeting {i}\n".encode())
        started = time.perf_counter()
        rows = batch("s3://meetings/m/", agent="minutes", workers=workers, approve=True, store=store, engine="offline")
        seconds = time.perf_counter() - started
        done = sum(r.status == "done" for r in rows)
        assert done == args.objects, [r for r in rows if r.status != "done"][:3]
        print(f"{workers:>7} {done:>7} {seconds:>8.1f} {done / seconds:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
