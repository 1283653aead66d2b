"""The thread index and leases between workers: conditional index updates, a finished thread
that stays finished, a lease takeover whose loser writes nothing, a "being run elsewhere" message
that says who, until when and how to break it, and failed-on-bad-input threads not offered for
resume. Real LocalStore, real graphs, real processes where a process matters."""

from __future__ import annotations

import inspect
import socket
import subprocess
import sys
import time

import crashkit
import pytest

from marginalia.errors import ThreadBusy
from marginalia.lease import Lease, LeasedStore, LeaseRecord, lease_key
from marginalia.storage.base import Store
from marginalia.storage.local import LocalStore
from marginalia.testing.cli import cli_local_store
from marginalia.testing.cli import run_cli as cli
from marginalia.threads import STATUSES, ThreadIndex, ThreadRecord, as_status
from marginalia.uri import parse_uri


@pytest.fixture
def state(local_store):
    local_store.create_bucket("state")
    return parse_uri("s3://state/v1", require_key=False)


class WritesFirst:
    """A store through which, just before this worker's next PUT, another worker's write lands."""

    def __init__(self, inner, other_write):
        self.inner, self.other_write = inner, other_write

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def put_object(self, *args, **kwargs):
        other, self.other_write = self.other_write, None
        if other is not None:
            other()
        return self.inner.put_object(*args, **kwargs)


# --- item 6 ---------------------------------------------------------------------------------
def test_index_updates_are_compare_and_swap(local_store, state):
    ThreadIndex(local_store, state).put(ThreadRecord("t-cas", "minutes", "s3://m/a.vtt", "running"))
    winner = ThreadIndex(local_store, state)
    loser = ThreadIndex(
        WritesFirst(local_store, lambda: winner.update("t-cas", status="done")),  # lands between read and write
        state,
    )
    loser.update("t-cas", trace_id="trace-of-the-loser")
    record = ThreadIndex(local_store, state).get("t-cas")
    assert record.status == "done"  # last-writer-wins would have put "running" back
    assert record.trace_id == "trace-of-the-loser"  # and the loser's change was applied on top


def test_a_finished_thread_never_goes_back_to_failed(local_store, state):
    index = ThreadIndex(local_store, state)
    index.put(ThreadRecord("t-done", "minutes", "s3://m/a.vtt", "done"))
    index.update("t-done", status="failed", error="ThreadBusy: lost the lease")
    assert index.get("t-done").status == "done" and index.get("t-done").error is None


def test_the_loser_of_a_lease_takeover_rewrites_nothing(tmp_path):
    """Worker A prepares the approval, then is frozen past its lease; worker B takes the thread
    over and finishes it. When A wakes, its run stops before writing: the thread stays done, the
    minutes are written once, and ``resume`` is not told the thread failed."""
    from marginalia.api import minutes
    from marginalia.runtime import drive, resume, state_location

    store = LocalStore(tmp_path / "store")
    store.create_bucket("meet")
    store.put_object("meet", "standup.vtt", crashkit.fixture_bytes("minutes"))
    waiting = minutes("s3://meet/standup.vtt", store=store, engine="offline")
    state = state_location(store)

    a_store = crashkit.RecordingStore(LocalStore(tmp_path / "store"))
    run_a = resume(waiting.thread_id, "approve", store=a_store, engine="offline")
    lease_a = run_a.lease.lease
    lease_a._stop.set()  # A is frozen: its renewer stops too ...
    lease_a.expires_at = time.time() - 1  # ... for longer than the lease lives
    key = lease_key(state, waiting.thread_id)
    data, info = store.get_object(state.bucket, key)
    stale = LeaseRecord.decode(data)
    store.put_object(
        state.bucket,
        key,
        LeaseRecord(stale.thread_id, stale.holder, time.time() - 1, stale.acquired_at).encode(),
        if_match=info.etag,
    )  # fmt: skip  (what the clock did to A's lease while A was stopped)

    done = drive(resume(waiting.thread_id, "approve", store=store, engine="offline"))  # worker B
    assert done.status == "done"
    calls_before = len(a_store.calls)
    with pytest.raises(ThreadBusy, match="being run elsewhere"):
        drive(run_a)
    assert ThreadIndex(store, state).get(waiting.thread_id).status == "done"
    a_writes = [c for c in a_store.calls[calls_before:] if c["op"] != "put_object" or "/leases/" not in c["key"]]
    assert a_writes == []  # no annotation, checkpoint or index write by the loser
    names = [a.name for a in store.list_annotations("meet", "standup.vtt")]
    assert names.count("meeting_minutes") == 1


# --- item 8 ---------------------------------------------------------------------------------
def test_being_run_elsewhere_names_holder_expiry_and_how_to_unlock(local_store, state):
    held = Lease(local_store, state, "t-msg", ttl=90).acquire()
    with pytest.raises(ThreadBusy) as refused:
        Lease(local_store, state, "t-msg").acquire()
    message = str(refused.value)
    assert held.holder in message
    assert time.strftime("%Y-%m-%d", time.gmtime(held.expires_at)) in message and "UTC" in message
    assert "marginalia threads unlock t-msg" in message
    held.release()


def test_threads_unlock_refuses_a_live_local_holder_and_breaks_a_dead_one(tmp_path, monkeypatch):
    store = cli_local_store(tmp_path / "store", monkeypatch, "meet")
    from marginalia.runtime import state_location

    state = state_location(store)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        lease = Lease(store, state, "t-unlock", holder=f"{socket.gethostname()}:{holder.pid}:abc").acquire()
        code, out, err = cli("threads", "unlock", "t-unlock")
        assert code != 0 and f"process {holder.pid}" in err and "alive" in err, (out, err)
        with pytest.raises(ThreadBusy):
            Lease(store, state, "t-unlock").acquire()
    finally:
        holder.kill()
        holder.wait(30)
    # The same lease held on another host: the caller's word is taken, and the thread is free again.
    lease.holder = "otherhost:4242:abc"
    lease.renew()
    code, out, err = cli("threads", "unlock", "t-unlock")
    assert code == 0 and "unlocked thread t-unlock" in out and "otherhost:4242" in out, (out, err)
    Lease(store, state, "t-unlock").acquire().release()
    code, out, err = cli("threads", "unlock", "t-unlock")
    assert code == 0 and "nothing to unlock" in out


def test_a_lost_lease_stops_the_run_before_it_writes(local_store, state):
    lease = Lease(local_store, state, "t-lost", ttl=60).acquire()
    lease.ensure()  # fresh: no request, no error
    taker = Lease(local_store, state, "t-lost", holder="otherhost:1:taker")
    taker.acquired_at = time.time()
    data, info = local_store.get_object(state.bucket, lease.key)
    local_store.put_object(state.bucket, lease.key, taker._record(time.time() + 60), if_match=info.etag)
    lease.expires_at = time.time() - 1  # this worker was frozen past its expiry
    with pytest.raises(ThreadBusy, match="otherhost:1:taker"):
        lease.ensure()
    assert lease.lost is not None
    with pytest.raises(ThreadBusy):
        lease.ensure()  # stays lost


def test_a_leased_store_has_the_store_signatures_and_checks_the_lease_on_every_write(local_store, state):
    """LeasedStore's methods are written out with Store's signatures (a type checker sees them),
    cover every abstract method, and each write is refused once the lease is lost."""
    for name, method in vars(LeasedStore).items():
        if callable(method) and not name.startswith("_"):
            assert inspect.signature(method) == inspect.signature(getattr(Store, name)), name
    assert Store.__abstractmethods__ <= set(vars(LeasedStore))
    local_store.create_bucket("meet")
    local_store.put_object("meet", "doc", b"body")
    lease = Lease(local_store, state, "t-leased", ttl=60).acquire()
    leased = LeasedStore(local_store, lease)
    leased.put_annotation("meet", "doc", "held", "while the lease is held")
    taker = Lease(local_store, state, "t-leased", holder="otherhost:2:taker")
    taker.acquired_at = time.time()
    _, info = local_store.get_object(state.bucket, lease.key)
    local_store.put_object(state.bucket, lease.key, taker._record(time.time() + 60), if_match=info.etag)
    lease.expires_at = time.time() - 1  # frozen past its expiry: the next write looks and finds the taker
    writes = {
        "create_bucket": lambda: leased.create_bucket("other"),
        "put_object": lambda: leased.put_object("meet", "doc", b"late"),
        "delete_object": lambda: leased.delete_object("meet", "doc"),
        "delete_objects": lambda: leased.delete_objects("meet", ["doc"]),
        "copy_object": lambda: leased.copy_object("meet", "doc", "meet", "copy"),
        "put_annotation": lambda: leased.put_annotation("meet", "doc", "late", "x"),
        "delete_annotation": lambda: leased.delete_annotation("meet", "doc", "held"),
    }
    for name, write in writes.items():
        try:
            write()
        except ThreadBusy as exc:
            assert "otherhost:2:taker" in str(exc), name
        else:
            pytest.fail(f"LeasedStore.{name} wrote after the lease was lost")
    assert local_store.get_object("meet", "doc")[0] == b"body"
    assert [o.key for o in leased.list_objects("meet")] == ["doc"]  # reads pass through
    assert [a.name for a in leased.list_annotations("meet", "doc")] == ["held"]
    assert not local_store.bucket_exists("other")


# --- item 12: a thread that failed on bad input is not offered for resume ----------------------
def test_a_thread_failed_on_bad_input_is_not_offered_for_resume(tmp_path, monkeypatch):
    store = cli_local_store(tmp_path / "store", monkeypatch, "meet")
    store.put_object("meet", "broken.vtt", b"this is not WebVTT at all")
    code, out, err = cli("minutes", "s3://meet/broken.vtt")
    assert code == 2 and "malformed WebVTT" in err
    code, out, err = cli("threads")
    assert code == 0 and "failed" in out, (out, err)
    assert "marginalia resume" not in out
    from marginalia.runtime import state_location

    (record,) = ThreadIndex(store, state_location(store)).list()
    assert record.status == "failed" and record.permanent
    code, out, err = cli("resume", record.thread_id)
    assert code == 2 and "fail the same way" in err, (out, err)


def test_every_write_of_a_run_checks_its_lease(tmp_path):
    """A node's writes go through the run's store: once the lease is lost (taken over while this
    worker was frozen), the next annotation write is refused and nothing reaches the object."""
    from marginalia.api import minutes
    from marginalia.runtime import resume

    store = LocalStore(tmp_path / "store")
    store.create_bucket("meet")
    store.put_object("meet", "standup.vtt", crashkit.fixture_bytes("minutes"))
    waiting = minutes("s3://meet/standup.vtt", store=store, engine="offline")
    run = resume(waiting.thread_id, "approve", store=store, engine="offline")
    try:
        run.context.store.put_annotation("meet", "standup.vtt", "probe", "while the lease is held")
        lease = run.lease.lease
        lease._stop.set()
        taker = Lease(store, run.index.state, waiting.thread_id, holder="otherhost:7:taker")
        taker.acquired_at = time.time()
        _, info = store.get_object(lease.bucket, lease.key)
        store.put_object(lease.bucket, lease.key, taker._record(time.time() + 60), if_match=info.etag)
        lease.expires_at = time.time() - 1  # frozen past the expiry it wrote
        with pytest.raises(ThreadBusy, match="otherhost:7:taker"):
            run.context.store.put_annotation("meet", "standup.vtt", "late", "after the takeover")
        names = {a.name for a in store.list_annotations("meet", "standup.vtt")}
        assert "probe" in names and "late" not in names
    finally:
        run.release()


def test_a_status_read_back_from_elsewhere_is_one_of_the_statuses():
    """Temporal's MarginaliaStatus search attribute is free text: it becomes a thread status only
    when it names one, else the default (it used to be passed through as any string)."""
    assert STATUSES == ("running", "waiting", "done", "failed", "interrupted", "rejected", "expired")
    assert [as_status(s, default="running") for s in STATUSES] == list(STATUSES)
    assert as_status("Waiting", default="running") == "running"
    assert as_status("", default="failed") == "failed"
    assert as_status(None, default="running") == "running"
