"""marginalia batch: every object once, skips, failures reported, resumable after a kill, retries."""

from __future__ import annotations

import json

import crashkit
import pytest
from typer.testing import CliRunner

from marginalia.batch import batch, batch_agent, thread_id_for
from marginalia.errors import ObjectNotFound, TransientError
from marginalia.storage.local import LocalStore

VTT = crashkit.fixture_bytes("minutes")


def variant(i: int) -> bytes:
    """The stand-up with one line changed, so every object has its own ETag and minutes."""
    return (
        VTT.replace(b"Platform team", f"Platform team {i}".encode(), 1)
        if b"Platform team" in VTT
        else VTT + f"\n\nNOTE {i}\n".encode()
    )


@pytest.fixture
def meetings(tmp_path, monkeypatch):
    root = tmp_path / "store"
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{root}")
    store = LocalStore(root)
    store.create_bucket("meet")
    for i in range(4):
        store.put_object("meet", f"m/{i}.vtt", variant(i))
    store.put_object("meet", "m/broken.vtt", b"\x00\x01 not a transcript \xff")
    store.put_object("meet", "m/notes.md", b"# not taken: wrong suffix")
    return store


def counting_offline_engine(log_path):
    """The offline engine, every call logged to ``log_path`` (never killed)."""
    from marginalia.engines.offline import OfflineEngine

    return crashkit.CountingEngine(OfflineEngine(), crashkit.EventLog(log_path), crashkit.KillSwitch(None))


def rows_by_uri(rows):
    return {r.uri.rsplit("/", 1)[-1]: r for r in rows}


def test_batch_runs_each_object_reports_failures_and_skips_on_rerun(meetings):
    rows = rows_by_uri(
        batch("s3://meet/m/", agent="minutes", workers=2, approve=True, store=meetings, engine="offline")
    )
    assert set(rows) == {"0.vtt", "1.vtt", "2.vtt", "3.vtt", "broken.vtt"}
    assert all(rows[f"{i}.vtt"].status == "done" for i in range(4))
    assert rows["broken.vtt"].status == "failed" and "broken.vtt" in rows["broken.vtt"].detail
    for i in range(4):
        assert meetings.get_annotation("meet", f"m/{i}.vtt", "meeting_minutes").json()["title"]
    again = rows_by_uri(batch("s3://meet/m/", agent="minutes", workers=2, approve=True, store=meetings))
    assert [again[f"{i}.vtt"].status for i in range(4)] == ["skipped"] * 4
    assert again["broken.vtt"].status == "failed"  # still reported, the batch went on


def test_results_do_not_depend_on_the_number_of_workers(meetings, tmp_path):
    batch("s3://meet/m/", agent="minutes", workers=4, approve=True, store=meetings, engine="offline")
    serial = LocalStore(tmp_path / "serial")
    serial.create_bucket("meet")
    for i in range(4):
        serial.put_object("meet", f"m/{i}.vtt", variant(i))
    batch("s3://meet/m/", agent="minutes", workers=1, approve=True, store=serial, engine="offline")
    for i in range(4):
        a = crashkit.normalize(meetings.get_annotation("meet", f"m/{i}.vtt", "meeting_minutes").json(), "meet")
        b = crashkit.normalize(serial.get_annotation("meet", f"m/{i}.vtt", "meeting_minutes").json(), "meet")
        assert a == b


def test_waiting_threads_are_reported_not_restarted(meetings, tmp_path):
    first = batch("s3://meet/m/0", agent="minutes", workers=1, store=meetings, engine="offline")
    assert [r.status for r in first] == ["waiting"]
    log = tmp_path / "engine.log"
    engine = counting_offline_engine(log)
    again = batch("s3://meet/m/0", agent="minutes", workers=1, store=meetings, engine=engine, approve=True)
    assert [(r.status, r.thread_id) for r in again] == [("waiting", first[0].thread_id)]
    assert not crashkit.EventLog.read(log)  # no model call: nothing was re-run
    info = meetings.head_object("meet", "m/0.vtt")
    assert first[0].thread_id == thread_id_for("minutes", info)


def test_force_reruns_annotated_objects(meetings):
    batch("s3://meet/m/1", agent="minutes", workers=1, approve=True, store=meetings, engine="offline")
    before = meetings.get_annotation("meet", "m/1.vtt", "meeting_minutes").json()["provenance"]["created_at"]
    rows = batch("s3://meet/m/1", agent="minutes", workers=1, approve=True, force=True, store=meetings)
    assert [r.status for r in rows] == ["done"]
    after = meetings.get_annotation("meet", "m/1.vtt", "meeting_minutes").json()["provenance"]
    assert after["thread_id"] == rows[0].thread_id and after["created_at"] >= before


def test_a_killed_batch_continues_where_it_stopped(meetings, tmp_path):
    """A batch process SIGKILLed inside the second object's model call; the re-run skips the
    finished object and continues the interrupted thread (deterministic ids), not a new one."""
    ctx = crashkit.context()
    log = tmp_path / "batch.log"
    env = {
        "MARGINALIA_STORE": f"local:{tmp_path / 'store'}",
        crashkit.LOG_ENV: str(log),
        crashkit.CRASH_ENV: "engine:2",
        "MARGINALIA_ENGINE": "offline",
    }
    proc = ctx.Process(target=_batch_child, args=(env,))
    proc.start()
    proc.join(120)
    assert proc.exitcode == -9
    killed_pid = proc.pid
    before = {e["name"] for e in crashkit.EventLog.read(log) if e["ev"] == "write" and e.get("op") == "put_annotation"}
    assert "transcript" in before
    rows = rows_by_uri(
        batch("s3://meet/m/", agent="minutes", workers=1, approve=True, store=meetings, engine="offline")
    )
    assert [rows[f"{i}.vtt"].status for i in range(4)].count("done") + [
        rows[f"{i}.vtt"].status for i in range(4)
    ].count("skipped") == 4
    assert any(rows[f"{i}.vtt"].status == "skipped" for i in range(4))  # finished before the kill: not redone
    index = {r.thread_id for r in rows.values() if r.thread_id}
    started = {
        e.get("key", "").split("/threads/")[-1][:-5]
        for e in crashkit.EventLog.read(log)
        if e["pid"] == killed_pid and "/threads/" in (e.get("key") or "")
    }
    assert len(started) == 2 and len(started & index) == 1  # the interrupted thread was continued
    interrupted = next(r for r in rows.values() if r.thread_id in started)
    assert interrupted.status == "done"


def _batch_child(env, prefix="s3://meet/m/"):
    import os

    os.environ.update(env)
    from marginalia.config import open_store
    from marginalia.engines.offline import OfflineEngine

    log, kill = crashkit.EventLog(env[crashkit.LOG_ENV]), crashkit.KillSwitch(env[crashkit.CRASH_ENV])
    store = crashkit.RecordingStore(open_store(), log, kill)
    batch(
        prefix,
        agent="minutes",
        workers=1,
        approve=True,
        store=store,
        engine=crashkit.CountingEngine(OfflineEngine(), log, kill),
    )
    os._exit(0)


class FlakyStore(crashkit.RecordingStore):
    """Throttled (TransientError) on the first ``n`` annotation writes, like S3's SlowDown."""

    def __init__(self, inner, n):
        super().__init__(inner)
        self.left = n

    def put_annotation(self, bucket, key, name, payload, **kw):
        if self.left > 0:
            self.left -= 1
            raise TransientError(f"SlowDown on s3://{bucket}/{key}: please reduce your request rate")
        return super().put_annotation(bucket, key, name, payload, **kw)


class FlakyEngine:
    """The offline engine, timing out on its first call (a transient model error)."""

    def __init__(self):
        from marginalia.engines.offline import OfflineEngine

        self.inner, self.failed = OfflineEngine(), 0
        self.name, self.model = self.inner.name, self.inner.model

    def __getattr__(self, attr):
        target = getattr(self.inner, attr)

        def call(*a, **k):
            if not self.failed:
                self.failed += 1
                raise TimeoutError("model read timed out")
            return target(*a, **k)

        return call if callable(target) else target


def test_transient_errors_are_retried_per_node_permanent_ones_fail_that_object(meetings):
    flaky = FlakyStore(meetings, 2)
    engine = FlakyEngine()
    rows = rows_by_uri(batch("s3://meet/m/", agent="minutes", workers=1, approve=True, store=flaky, engine=engine))
    assert engine.failed == 1 and flaky.left == 0
    assert [rows[f"{i}.vtt"].status for i in range(4)] == ["done"] * 4
    assert rows["broken.vtt"].status == "failed"


def test_cli_batch_table_and_exit_status(meetings):
    from marginalia.cli import app

    result = CliRunner().invoke(
        app, ["batch", "s3://meet/m/", "--agent", "minutes", "--workers", "2", "--yes", "--suffix", ".vtt"]
    )
    assert result.exit_code == 1, result.output  # broken.vtt failed
    assert "done: 4" in result.output and "failed: 1" in result.output and "broken.vtt" in result.output
    ok = CliRunner().invoke(app, ["batch", "s3://meet/m/0", "--yes"])
    assert ok.exit_code == 0 and "skipped: 1" in ok.output
    import subprocess
    import sys

    for argv, said in (
        (["s3://meet/m/", "--agent", "nope"], "unknown batch agent 'nope'"),
        (["s3://meet/../x/"], "'..' path segments"),
    ):
        bad = subprocess.run(
            [sys.executable, "-m", "marginalia", "batch", *argv], capture_output=True, text=True, timeout=60
        )
        assert bad.returncode == 2 and said in bad.stderr and "Traceback" not in bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1


def test_summary_agent_in_batch(tmp_path):
    store = LocalStore(tmp_path / "s")
    store.create_bucket("docs")
    store.put_object("docs", "r/a.pdf", crashkit.fixture_bytes("summary"))
    store.put_object("docs", "r/cut.pdf", crashkit.fixture_bytes("summary")[:700])
    rows = rows_by_uri(batch("s3://docs/r/", agent="summary", workers=2, approve=True, store=store, engine="offline"))
    assert rows["a.pdf"].status == "done" and rows["a.pdf"].annotations == ("summary",)
    assert rows["cut.pdf"].status == "failed" and "cut.pdf" in rows["cut.pdf"].detail
    assert json.loads(store.get_annotation("docs", "r/a.pdf", "summary").payload)["summary"]
    assert batch_agent("summary").batch.annotation == "summary"


def test_an_object_another_worker_is_running_is_elsewhere_and_the_batch_exits_0(meetings):
    """While another worker holds the lease of one object's thread, a batch reports that object
    ``elsewhere`` (naming the holder), finishes the rest and exits 0: nothing failed."""
    from marginalia.lease import thread_lease
    from marginalia.runtime import state_location
    from marginalia.testing.cli import run_cli

    busy = meetings.head_object("meet", "m/0.vtt")
    with thread_lease(meetings, state_location(meetings), thread_id_for("minutes", busy)) as held:
        code, out, err = run_cli("batch", "s3://meet/m/", "--suffix", ".vtt", "--yes", "--workers", "1")
        rows = rows_by_uri(
            batch("s3://meet/m/", agent="minutes", workers=1, approve=True, store=meetings, engine="offline")
        )
    assert rows["0.vtt"].status == "elsewhere" and held.holder in rows["0.vtt"].detail
    assert [rows[f"{i}.vtt"].status for i in (1, 2, 3)] == ["skipped"] * 3  # the CLI batch did them
    assert "elsewhere: 1" in out and "failed: 1" in out  # broken.vtt
    assert code == 1  # broken.vtt failed; without it the batch exits 0:
    meetings.delete_object("meet", "m/broken.vtt")
    with thread_lease(meetings, state_location(meetings), thread_id_for("minutes", busy)):
        code, out, err = run_cli("batch", "s3://meet/m/", "--suffix", ".vtt", "--yes", "--workers", "1")
    assert code == 0, out + err
    assert "elsewhere: 1" in out and "failed: 0" in out


def test_a_rerun_completes_what_a_kill_left_undone(meetings, tmp_path):
    """A batch killed right after an object's last annotation write leaves the object annotated but
    its thread ``running`` in the index and without its trace archive. The re-run skips the object
    (no model call, nothing written twice) and completes its thread: done, archive written."""
    from marginalia.archive import archive_uri
    from marginalia.runtime import state_location
    from marginalia.threads import ThreadIndex

    log = tmp_path / "batch.log"
    env = {
        "MARGINALIA_STORE": f"local:{tmp_path / 'store'}",
        crashkit.LOG_ENV: str(log),
        crashkit.CRASH_ENV: "annotation:3:after",  # transcript, meeting_minutes, action_items
        "MARGINALIA_ENGINE": "offline",
    }
    proc = crashkit.context().Process(target=_batch_child, args=(env, "s3://meet/m/0"))
    proc.start()
    proc.join(300)
    assert proc.exitcode == -9
    state = state_location(meetings)
    thread_id = thread_id_for("minutes", meetings.head_object("meet", "m/0.vtt"))
    assert ThreadIndex(meetings, state).get(thread_id).status != "done"  # what the kill left
    archive = archive_uri(state, thread_id)
    with pytest.raises(ObjectNotFound):
        meetings.head_object(archive.bucket, archive.key)

    engine_log = tmp_path / "engine.log"
    engine = counting_offline_engine(engine_log)
    rows = batch("s3://meet/m/0", agent="minutes", workers=1, approve=True, store=meetings, engine=engine)
    assert [r.status for r in rows] == ["skipped"]
    assert not crashkit.EventLog.read(engine_log)  # no model call: only the bookkeeping was completed
    assert ThreadIndex(meetings, state).get(thread_id).status == "done"
    meetings.head_object(archive.bucket, archive.key)  # the archive is there now
