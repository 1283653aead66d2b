"""Thread leases on both backends, and two workers resuming the same thread at once."""

from __future__ import annotations

import threading
import time

import crashkit
import pytest

from marginalia.errors import ThreadBusy
from marginalia.lease import Lease, LeaseRecord, thread_lease
from marginalia.testing.cli import run_cli as cli
from marginalia.uri import parse_uri


@pytest.fixture
def state(store, bucket):
    return parse_uri(f"s3://{bucket}/v1", require_key=False)


def test_one_holder_at_a_time_then_release(store, state):
    with thread_lease(store, state, "t-1") as first:
        with pytest.raises(ThreadBusy, match="thread t-1 is being run elsewhere"):
            Lease(store, state, "t-1").acquire()
        record = LeaseRecord.decode(store.get_object(state.bucket, first.key)[0])
        assert record.holder == first.holder and not record.expired()
    # released: the next worker takes it at once (If-Match on the released record)
    nxt = Lease(store, state, "t-1").acquire()
    assert LeaseRecord.decode(store.get_object(state.bucket, nxt.key)[0]).holder == nxt.holder
    nxt.release()


def test_expired_lease_is_taken_over_by_exactly_one(store, state):
    stale = Lease(store, state, "t-2", ttl=0.3, holder="otherhost:1:dead").acquire()
    time.sleep(0.4)
    barrier, won, lost = threading.Barrier(4), [], []

    def contender():
        lease = Lease(store, state, "t-2", ttl=30)
        barrier.wait()
        try:
            won.append(lease.acquire())
        except ThreadBusy:
            lost.append(lease)

    threads = [threading.Thread(target=contender) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1 and len(lost) == 3
    with pytest.raises(ThreadBusy):  # the old holder lost it: its renewal is refused
        stale.renew()
    won[0].release()


def test_renewal_keeps_a_long_run_leased(store, state):
    with thread_lease(store, state, "t-3", ttl=2.0) as lease:
        time.sleep(3.0)  # longer than the ttl: the background renewal pushed the expiry
        with pytest.raises(ThreadBusy):
            Lease(store, state, "t-3").acquire()
        assert lease.lost is None


def test_lease_of_a_crashed_local_process_is_taken_at_once(local_store):
    local_store.create_bucket("state-b")
    state = parse_uri("s3://state-b/v1", require_key=False)
    import socket
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    Lease(local_store, state, "t-4", holder=f"{socket.gethostname()}:{pid}:x").acquire()
    Lease(local_store, state, "t-4").acquire().release()  # no waiting for the 120 s ttl


def test_two_workers_resume_the_same_thread_exactly_one_proceeds(tmp_path, monkeypatch):
    """Both answer the approval at the same moment through the runtime alone (no lease taken by
    the caller): one writes the minutes, the other is told the thread is being run elsewhere
    before it runs anything; the annotations are written once and the thread is intact. The
    CLI turns the refusal into one line and exit status 2."""
    from marginalia.api import minutes
    from marginalia.runtime import drive, resume, state_location
    from marginalia.storage.local import LocalStore

    root = tmp_path / "store"
    setup = LocalStore(root)
    setup.create_bucket("meet")
    setup.put_object("meet", "standup.vtt", crashkit.fixture_bytes("minutes"))
    waiting = minutes("s3://meet/standup.vtt", store=setup, engine="offline")
    assert waiting.status == "waiting"

    barrier, results, busy = threading.Barrier(2), [], []
    stores = [crashkit.RecordingStore(LocalStore(root)) for _ in range(2)]

    def worker(store):
        barrier.wait()
        try:
            run = resume(waiting.thread_id, "approve", store=store, engine="offline")
        except ThreadBusy as exc:
            busy.append(str(exc))
            return
        time.sleep(0.3)  # the winner still holds the lease while the loser tries
        results.append(drive(run))

    threads = [threading.Thread(target=worker, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 1 and results[0].status == "done"
    assert len(busy) == 1 and busy[0].startswith(f"thread {waiting.thread_id} is being run elsewhere")
    loser = next(s for s in stores if not any(c["op"] == "put_annotation" for c in s.calls))
    # the loser wrote nothing: no thread record, checkpoint or annotation (its lease PUT was refused)
    assert {c["op"] for c in loser.calls} <= {"create_bucket"}
    writes = [c for s in stores for c in s.calls if c["op"] == "put_annotation" and c["bucket"] == "meet"]
    assert sorted(c["name"] for c in writes) == ["action_items", "meeting_minutes"]
    names = {a.name for a in setup.list_annotations("meet", "standup.vtt")}
    assert {"transcript", "meeting_minutes", "action_items"} <= names
    from marginalia.graph.minutes import build_minutes_graph
    from marginalia.runtime import open_checkpointer

    graph = build_minutes_graph(checkpointer=open_checkpointer(setup, state_location(setup)))
    snapshot = graph.get_state({"configurable": {"thread_id": waiting.thread_id}})
    assert not snapshot.next and snapshot.values["decision"] == "approve"

    # the lease was released when drive returned: the next worker is refused only by the thread
    with pytest.raises(Exception, match="not waiting for approval"):
        resume(waiting.thread_id, store=setup)
    # a lease held elsewhere: the CLI says so in one line, exit 4 (busy), and nothing runs
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{root}")
    monkeypatch.delenv("MARGINALIA_STATE", raising=False)
    again = minutes("s3://meet/standup.vtt", store=setup, engine="offline")
    with thread_lease(setup, state_location(setup), again.thread_id):
        code, out, err = cli("approve", again.thread_id)
    assert code == 4, (out, err)  # busy: exit 4 (README, Exit codes)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and f"thread {again.thread_id} is being run elsewhere" in lines[0]
    assert "Traceback" not in err and "Done" not in out
    assert cli("approve", again.thread_id)[0] == 0  # free again: it goes through
