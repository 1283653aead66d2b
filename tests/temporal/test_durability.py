"""Temporal runs survive what the issue names: a worker killed mid-run (kill -9 at the Nth
engine call), every worker gone while a run waits for approval, and the server restarted on
its DB file with runs in flight. Engine calls and store writes are counted OUTSIDE the worker
processes (an append-only log, ``worker_instruments``)."""

from __future__ import annotations

import json
import signal
import threading
from collections import Counter

from temporal_support import put_sample, wait_for
from worker_instruments import crashkit

from marginalia.temporal import client

NAMES = ("transcript", "meeting_minutes", "action_items")  # every annotation the minutes agent writes
INPUTS = {"transcript_input": None, "chunk_chars": 500}  # several chunks: several engine calls


def _submit(uri: str, *, approve: bool) -> str:
    return client.blocking(client.astart("minutes", uri, dict(INPUTS), approve=approve, wait=False))


def _annotation_writes(events, bucket: str) -> Counter:
    return Counter(
        (e["key"], e["name"])
        for e in events
        if e["ev"] == "write" and e["phase"] == "end" and e["op"] == "put_annotation" and e["bucket"] == bucket
    )


def _minutes(store, bucket: str, key: str) -> dict:
    doc = json.loads(store.get_annotation(bucket, key, "meeting_minutes").payload)
    doc.pop("provenance")
    return doc


def test_worker_killed_mid_run_another_finishes_no_completed_node_again(temporal_env):
    store = temporal_env.open_store()
    put_sample(store, "d-meet", "ref.vtt", "standup.vtt")
    uri = put_sample(store, "d-meet", "crash.vtt", "standup.vtt")

    # an uninterrupted run of the same transcript: the work a run does
    ref_log = temporal_env.root / "ref.log"
    ref_worker = temporal_env.worker(log=ref_log)
    assert client.wait(_submit("s3://d-meet/ref.vtt", approve=True)).status == "done"
    temporal_env.stop(ref_worker)
    ref_events = crashkit.EventLog.read(ref_log)
    want = crashkit.signature(crashkit.work_events(ref_events))
    engine_calls = sum(1 for e in ref_events if e["ev"] == "engine")
    assert engine_calls >= 3, ref_events

    kill_at = engine_calls  # the merge call: the chunks' extraction steps are checkpointed by then
    doomed = temporal_env.worker(crash_at=f"engine:{kill_at}")
    thread = _submit(uri, approve=True)
    assert doomed.wait(timeout=180) == -signal.SIGKILL
    survivor = temporal_env.worker()
    result = client.wait(thread)
    assert result.status == "done" and {a.name for a in result.annotations} == {"meeting_minutes", "action_items"}

    events = crashkit.EventLog.read(temporal_env.log)
    assert {e["pid"] for e in events if e["ev"] == "engine"} == {doomed.pid, survivor.pid}
    assert sum(1 for e in events if e["ev"] == "engine" and e["pid"] == doomed.pid) == kill_at
    steps = crashkit.record_steps(store, events)
    durable = [e for e in crashkit.completed(events, survivor.pid, steps) if e["pid"] == doomed.pid]
    assert any(e["ev"] == "engine" for e in durable)  # the killed worker finished some nodes durably...
    assert crashkit.check_executions(events, survivor.pid, want, steps) == []  # ...and none of them ran again
    assert _annotation_writes(events, "d-meet") == {("crash.vtt", n): 1 for n in NAMES}
    assert _minutes(store, "d-meet", "crash.vtt") == _minutes(store, "d-meet", "ref.vtt")


def test_no_worker_while_waiting_then_approved_and_finished_by_a_later_worker(temporal_env):
    store = temporal_env.open_store()
    uri = put_sample(store, "d-meet", "wait.vtt", "standup.vtt")
    first = temporal_env.worker()
    waiting = client.wait(_submit(uri, approve=False))
    assert waiting.status == "waiting"
    temporal_env.stop(first)  # zero compute: no worker process exists while the run waits

    from temporalio.client import WorkflowExecutionStatus

    from marginalia.temporal.settings import TemporalSettings

    async def describe():
        c = await TemporalSettings.from_env().connect()
        return await c.get_workflow_handle(waiting.thread_id).describe()

    desc = client.blocking(describe())
    assert desc.status == WorkflowExecutionStatus.RUNNING and not desc.raw_description.pending_activities

    answer: dict = {}
    reviewer = threading.Thread(target=lambda: answer.update(r=client.review(waiting.thread_id, {"action": "approve"})))
    reviewer.start()  # the Update waits for a worker to take it
    engine_before = sum(1 for e in crashkit.EventLog.read(temporal_env.log) if e["ev"] == "engine")
    temporal_env.worker()
    reviewer.join(timeout=180)
    assert answer["r"].status == "done"
    assert store.get_annotation("d-meet", "wait.vtt", "meeting_minutes")
    events = crashkit.EventLog.read(temporal_env.log)
    assert sum(1 for e in events if e["ev"] == "engine") == engine_before  # approving ran no model call again
    assert _annotation_writes(events, "d-meet") == {("wait.vtt", n): 1 for n in NAMES}


def test_server_restarted_on_its_db_file_runs_in_flight_finish(temporal_env, tmp_path, monkeypatch):
    from marginalia.temporal.dev_server import DevServer

    server = DevServer(tmp_path / "restart.db").start()
    try:
        monkeypatch.setenv("MARGINALIA_TEMPORAL", server.address)
        temporal_env.env["MARGINALIA_TEMPORAL"] = server.address
        temporal_env.env["MARGINALIA_TEST_ENGINE_DELAY"] = "0.5"  # runs are still in flight at the restart
        store = temporal_env.open_store()
        uris = [put_sample(store, "d-meet", f"r{i}.vtt", "standup.vtt") for i in range(2)]
        temporal_env.worker()
        threads = [_submit(u, approve=True) for u in uris]
        wait_for(
            lambda: any(e["ev"] == "engine" for e in crashkit.EventLog.read(temporal_env.log)),
            what="a run in flight",
        )
        server.restart()
        results = [client.wait(t) for t in threads]
        assert [r.status for r in results] == ["done", "done"]
        writes = _annotation_writes(crashkit.EventLog.read(temporal_env.log), "d-meet")
        assert writes == {(f"r{i}.vtt", n): 1 for i in range(2) for n in NAMES}
    finally:
        temporal_env.stop_all()
        server.stop()
