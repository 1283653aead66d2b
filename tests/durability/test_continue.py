"""Continuing a thread that stopped before its end: a node failed after the review answer, or
the process was SIGKILLed mid-run. ``resume`` (API and CLI) takes it on from its last
checkpoint; the nodes that had completed do not run again, and the finished thread is archived."""

from __future__ import annotations

import signal

import crashkit
import pytest

import marginalia
from marginalia import context, runtime
from marginalia.errors import BackendError, InvalidInput
from marginalia.storage.local import LocalStore

URI = "s3://meet/standup.vtt"


@pytest.fixture
def env(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{root}")
    monkeypatch.setenv("MARGINALIA_ENGINE", "offline")
    monkeypatch.delenv("MARGINALIA_STATE", raising=False)
    monkeypatch.setattr(context, "_DEFAULTS", {})
    store = LocalStore(root)
    store.create_bucket("meet")
    store.put_object("meet", "standup.vtt", crashkit.fixture_bytes("minutes"))
    yield store
    store.close()


class FailsOnce(crashkit.RecordingStore):
    """The store answers the first write of annotation ``name`` with a permanent error."""

    def __init__(self, inner, name: str):
        super().__init__(inner)
        self.name, self.failed = name, False

    def put_annotation(self, bucket, key, name, payload, **kw):
        if name == self.name and not self.failed:
            self.failed = True
            raise BackendError(f"s3://{bucket}/{key}: the annotation service answered 500 (injected)")
        return super().put_annotation(bucket, key, name, payload, **kw)


def archives(store) -> list[str]:
    return [o.key for o in store.list_objects("marginalia-state", "v1/archives/")]


def test_a_node_that_failed_after_the_review_answer_is_continued(env):
    from marginalia.cli.agent_cmds import shown_status
    from marginalia.threads import ThreadIndex

    waiting = marginalia.minutes(URI, store=env)
    flaky = FailsOnce(LocalStore(env.root), "meeting_minutes")
    with pytest.raises(BackendError, match="injected"):
        marginalia.resume(waiting.thread_id, store=flaky)
    state = runtime.state_location(env)
    record = ThreadIndex(env, state).get(waiting.thread_id)
    assert record.status == "failed" and "injected" in record.error
    assert shown_status(record, env, state) == "failed"
    assert archives(env) == []  # not finished: not archived

    # it is not waiting for a review any more: a review answer is refused, the thread unchanged
    with pytest.raises(InvalidInput, match="not waiting for approval.*marginalia resume"):
        marginalia.resume(waiting.thread_id, action="approve", store=env)

    calls: list[str] = []
    engine = crashkit.CountingEngine(  # every engine call the resumed run makes lands in `calls`
        __import__("marginalia.engines.offline", fromlist=["x"]).OfflineEngine(),
        lambda **event: calls.append(event.get("method")),
        crashkit.KillSwitch(None),
    )
    counting = crashkit.RecordingStore(LocalStore(env.root))
    done = marginalia.resume(waiting.thread_id, store=counting, engine=engine)
    assert done.status == "done" and {a.name for a in done.annotations} == {"meeting_minutes", "action_items"}
    assert calls == []  # transcript, extraction, merge and review completed before: not run again
    puts = sorted(c["name"] for c in counting.calls if c["op"] == "put_annotation" and c["bucket"] == "meet")
    assert puts == ["action_items", "meeting_minutes"]  # no second transcript
    assert env.get_annotation("meet", "standup.vtt", "meeting_minutes").json()["title"] == done.proposal["title"]
    assert ThreadIndex(env, state).get(waiting.thread_id).status == "done"
    assert archives(env) == [f"v1/archives/{waiting.thread_id}.json"]
    with pytest.raises(InvalidInput, match="nothing left to run"):
        marginalia.resume(waiting.thread_id, store=env)


def test_a_sigkilled_run_is_listed_interrupted_and_resumed_from_the_cli(env, tmp_path):
    """The first process is killed inside extract_chunk (the model answered, the node did not
    return); `marginalia threads` says interrupted and how to go on; `marginalia resume` does,
    without writing the transcript again, to the result of an uninterrupted run."""
    from marginalia.cli.agent_cmds import shown_status
    from marginalia.threads import ThreadIndex

    log = tmp_path / "events.log"
    child_env = {
        "MARGINALIA_STORE": f"local:{env.root}",
        "MARGINALIA_ENGINE": "offline",
        crashkit.LOG_ENV: str(log),
        crashkit.CRASH_ENV: "engine:1",
    }
    proc = crashkit.context().Process(target=crashkit.child_start, args=(URI, "killed-1", child_env))
    proc.start()
    proc.join(60)
    assert proc.exitcode == -signal.SIGKILL
    state = runtime.state_location(env)
    record = ThreadIndex(env, state).get("killed-1")
    assert record.status == "running" and shown_status(record, env, state) == "interrupted"
    first = crashkit.EventLog.read(log)
    assert [e["name"] for e in first if e["ev"] == "write" and e["phase"] == "end" and e["op"] == "put_annotation"] == [
        "transcript"
    ]

    from test_leases import cli

    code, listed, _ = cli("threads")
    assert code == 0 and "interrupted" in listed and "marginalia resume killed-1" in listed
    counting = crashkit.RecordingStore(LocalStore(env.root))
    context._DEFAULTS[("store", f"local:{env.root}")] = counting  # the CLI opens the store from the environment
    code, out, err = cli("resume", "killed-1")
    assert code == 0, err
    assert "Done" in out and "meeting_minutes" in out
    puts = sorted(c["name"] for c in counting.calls if c["op"] == "put_annotation" and c["bucket"] == "meet")
    assert puts == ["action_items", "meeting_minutes"]  # the transcript of the killed run stands
    assert shown_status(ThreadIndex(env, state).get("killed-1"), env, state) == "done"

    reference = marginalia.minutes(
        "s3://meet/standup.vtt", approve=True, store=LocalStore(env.root), thread_id="uninterrupted"
    )
    got = env.get_annotation("meet", "standup.vtt", "meeting_minutes").json()
    assert crashkit.normalize(got, "meet") == crashkit.normalize(
        {**reference.proposal, **{k: got[k] for k in ("transcript", "provenance")}}, "meet"
    )
    assert archives(env) == ["v1/archives/killed-1.json", "v1/archives/uninterrupted.json"]


def test_resume_completes_a_finished_thread_a_kill_left_without_its_record_or_archive(env, tmp_path):
    """A kill after a thread's last checkpoint leaves its minutes written but its bookkeeping
    undone (issue 17 item 7): killed before its trace archive, or before the index record says
    ``done``. ``marginalia resume`` completes it: the record ``done``, the archive written, and no
    model call or annotation write again. (It used to say "nothing left to run" and leave both.)"""
    from test_leases import cli

    from marginalia.cli.agent_cmds import shown_status
    from marginalia.threads import ThreadIndex

    state = runtime.state_location(env)
    index_writes = None
    for thread_id, kill in (("no-archive", "archive:1:before"), ("no-record", None)):
        log = tmp_path / f"{thread_id}.log"
        if kill is None:  # the last index write of a whole run: the one that says ``done``
            kill = f"index:{index_writes}:before"
        child_env = {
            "MARGINALIA_STORE": f"local:{env.root}",
            "MARGINALIA_ENGINE": "offline",
            crashkit.LOG_ENV: str(log),
            crashkit.CRASH_ENV: kill,
        }
        proc = crashkit.context().Process(target=crashkit.child_start, args=(URI, thread_id, child_env))
        proc.start()
        proc.join(120)
        assert proc.exitcode == -signal.SIGKILL, kill
        writes = [e for e in crashkit.EventLog.read(log) if e["ev"] == "write" and e["phase"] == "end"]
        if index_writes is None:
            index_writes = sum("/threads/" in (e.get("key") or "") for e in writes)
        assert f"v1/archives/{thread_id}.json" not in archives(env)
        record = ThreadIndex(env, state).get(thread_id)
        assert (record.status == "done") == (thread_id == "no-archive"), record.status
        assert env.get_annotation("meet", "standup.vtt", "action_items")  # the run's work is all there

        counting = crashkit.RecordingStore(LocalStore(env.root))
        context._DEFAULTS[("store", f"local:{env.root}")] = counting  # the CLI opens the store from the environment
        code, out, err = cli("resume", thread_id)
        assert code == 0, out + err
        assert f"v1/archives/{thread_id}.json" in archives(env)
        assert shown_status(ThreadIndex(env, state).get(thread_id), env, state) == "done"
        assert not [c for c in counting.calls if c["bucket"] == "meet"]  # nothing of the meeting written again
