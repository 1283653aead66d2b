"""``marginalia batch --on temporal`` with 2 worker processes (each object done exactly once;
submitting again starts nothing), and the approval expiry timer (the run ends ``expired``,
nothing written)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from datetime import timedelta

from temporal_support import put_sample, wait_for
from worker_instruments import crashkit

from marginalia.temporal import client

OBJECTS = 30


def _transcript(i: int) -> bytes:
    return (
        f"Ana: Welcome to sync number {i}. We decided to ship release {i} on Friday.\n"
        f"Ben: I will write the release notes for release {i} by Thursday.\n"
        "Ana: Great, thanks everyone.\n"
    ).encode()


def _batch_cli(temporal_env, prefix: str, *extra: str) -> subprocess.CompletedProcess:
    env = {**os.environ, **temporal_env.env, "COLUMNS": "200"}
    args = [sys.executable, "-m", "marginalia", "batch", prefix, "--agent", "minutes", "--on", "temporal", *extra]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)


def _runs_in(bucket: str) -> int:
    from marginalia.temporal.settings import TemporalSettings

    async def count() -> int:
        c = await TemporalSettings.from_env().connect()
        return (await c.count_workflows(f"MarginaliaBucket='{bucket}'")).count

    return asyncio.run(count())


def test_batch_of_30_on_two_workers_each_object_once_and_resubmitting_starts_nothing(temporal_env):
    store = temporal_env.open_store()
    store.create_bucket("d-batch", exist_ok=True)
    for i in range(OBJECTS):
        store.put_object("d-batch", f"syncs/{i:02d}.txt", _transcript(i))
    workers = [temporal_env.worker(concurrency=2) for _ in range(2)]

    done = _batch_cli(temporal_env, "s3://d-batch/syncs/", "--yes")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"done: {OBJECTS}" in done.stdout
    events = crashkit.EventLog.read(temporal_env.log)
    writes = Counter(
        (e["key"], e["name"])
        for e in events
        if e["ev"] == "write" and e["phase"] == "end" and e["op"] == "put_annotation"
    )
    for i in range(OBJECTS):
        for name in ("transcript", "meeting_minutes", "action_items"):
            assert writes[(f"syncs/{i:02d}.txt", name)] == 1
    assert {e["pid"] for e in events if e["ev"] == "engine"} == {w.pid for w in workers}  # both took runs
    wait_for(lambda: _runs_in("d-batch") == OBJECTS, what="visibility to list every run")

    again = client.submit_batch("s3://d-batch/syncs/", agent="minutes", approve=True)
    assert [r.status for r in again] == ["skipped"] * OBJECTS
    assert _runs_in("d-batch") == OBJECTS
    assert len(crashkit.EventLog.read(temporal_env.log)) == len(events)  # no model call, no write

    # runs still waiting for approval: a second submission attaches to them, starts nothing
    for i in range(3):
        store.put_object("d-batch", f"open/{i}.txt", _transcript(100 + i))
    first = client.submit_batch("s3://d-batch/open/", agent="minutes")
    assert [r.status for r in first] == ["waiting"] * 3 and not any("submitted before" in r.detail for r in first)
    second = client.submit_batch("s3://d-batch/open/", agent="minutes")
    assert [r.status for r in second] == ["waiting"] * 3 and all("submitted before" in r.detail for r in second)
    wait_for(lambda: _runs_in("d-batch") == OBJECTS + 3, what="visibility")
    assert _runs_in("d-batch") == OBJECTS + 3

    from typer.testing import CliRunner

    from marginalia.cli import app

    listed = CliRunner().invoke(app, ["threads", "--pending"], env={"COLUMNS": "250"})
    assert listed.exit_code == 0 and listed.output.count("waiting") == 3, listed.output


def test_approval_expires_run_ends_expired_nothing_written(temporal_env):
    store = temporal_env.open_store()
    uri = put_sample(store, "d-meet", "late.vtt", "standup.vtt")
    worker = temporal_env.worker()
    thread = client.blocking(
        client.astart(
            "minutes",
            uri,
            {"transcript_input": None},
            remind_after=timedelta(seconds=1),
            expire_after=timedelta(seconds=4),
            wait=False,
        )
    )
    assert client.wait(thread).status == "waiting"

    from temporalio.client import WorkflowExecutionStatus

    from marginalia.temporal.settings import TemporalSettings

    async def outcome():
        handle = (await TemporalSettings.from_env().connect()).get_workflow_handle(thread)
        return await handle.result(), (await handle.describe()).status

    result, status = asyncio.run(outcome())
    assert result["status"] == "expired" and status == WorkflowExecutionStatus.COMPLETED
    names = {a.name for a in store.list_annotations("d-meet", "late.vtt")}
    assert "meeting_minutes" not in names and "action_items" not in names
    from marginalia.runtime import state_location
    from marginalia.threads import ThreadIndex

    assert ThreadIndex(store, state_location(store)).get(thread).status == "expired"
    temporal_env.stop(worker)
    log = (temporal_env.root / "worker-0.log").read_text()
    assert f"thread {thread} still waits for approval" in log
