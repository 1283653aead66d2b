"""The local store under real faults: a frozen writer, a read-only filesystem, a lost or damaged
catalogue, a WAL left behind, a full disk. Every fault is real (SIGSTOP, a read-only bind mount, a
tmpfs of a few MiB in a private mount namespace); nothing is simulated."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from marginalia.errors import StoreUnusable
from marginalia.storage.local import LocalStore

SAMPLES = Path(__file__).parents[2] / "src" / "marginalia" / "samples"


def cli(store: Path, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "MARGINALIA_STORE": f"local:{store}", "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "marginalia", *args], env=env, capture_output=True, input=input, timeout=300
    )


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    """The CLI failed with the bad-input status and exactly one line, no traceback."""
    err = proc.stderr.decode()
    assert proc.returncode == 2, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


def _can_mount() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


needs_mount = pytest.mark.skipif(not _can_mount(), reason="needs a private mount namespace (unshare -m, mount)")


def in_mount_namespace(script: str, **env: str) -> subprocess.CompletedProcess:
    """Run a shell ``script`` in a private mount namespace (its mounts vanish with it)."""
    return subprocess.run(
        ["unshare", "-m", "sh", "-euc", script],
        env={**os.environ, **env, "PY": sys.executable},
        capture_output=True,
        timeout=600,
    )


@pytest.fixture
def filled(store_dir) -> Path:
    store = LocalStore(store_dir)
    store.create_bucket("bkt")
    for i in range(40):
        store.put_object("bkt", f"doc{i:02d}.txt", f"body {i}".encode())
        store.put_annotation("bkt", f"doc{i:02d}.txt", "summary", '{"text": "' + "x" * 300 + '"}')
    store.close()
    return store_dir


# --- item 4: reads never wait for the write lock ---------------------------------------------
_FROZEN_WRITER = textwrap.dedent(
    """
    import sys, time
    from marginalia.storage.local import LocalStore
    store = LocalStore(sys.argv[1])
    with store._write() as tx:        # holds the catalogue's write lock (BEGIN IMMEDIATE)
        tx.conn.execute("UPDATE meta SET value = value WHERE name = 'sequence'")
        print("holding", flush=True)
        time.sleep(600)
    """
)


def test_a_frozen_writer_does_not_block_readers(filled):
    writer = subprocess.Popen([sys.executable, "-c", _FROZEN_WRITER, str(filled)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "holding"
        writer.send_signal(signal.SIGSTOP)  # frozen with the lock held, as a debugger or Ctrl-Z leaves it
        listing = cli(filled, "ls", "s3://bkt/")
        assert listing.returncode == 0, listing.stderr.decode()
        assert listing.stdout.decode().count("doc") == 40
        got = cli(filled, "get", "s3://bkt/doc07.txt")
        assert got.returncode == 0 and got.stdout == b"body 7", got.stderr.decode()
        notes = cli(filled, "annotations", "s3://bkt/doc07.txt")
        assert notes.returncode == 0 and "summary" in notes.stdout.decode(), notes.stderr.decode()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.send_signal(signal.SIGCONT)
        writer.wait(30)


@needs_mount
def test_a_read_only_store_is_readable_and_refuses_writes_as_read_only(filled, tmp_path):
    out = in_mount_namespace(
        """
        mount --bind "$STORE" "$STORE" && mount -o remount,bind,ro "$STORE"
        export MARGINALIA_STORE="local:$STORE"
        "$PY" -m marginalia get s3://bkt/doc03.txt > "$OUT/got"
        "$PY" -m marginalia annotations s3://bkt/doc03.txt > "$OUT/notes"
        echo new | "$PY" -m marginalia put - s3://bkt/new.txt 2> "$OUT/put.err" || echo $? > "$OUT/put.rc"
        """,
        STORE=str(filled),
        OUT=str(tmp_path),
    )
    assert out.returncode == 0, out.stderr.decode()
    assert (tmp_path / "got").read_bytes() == b"body 3"
    assert "summary" in (tmp_path / "notes").read_text()
    assert (tmp_path / "put.rc").read_text().strip() == "2"
    error = (tmp_path / "put.err").read_text()
    assert "read-only" in error and "Traceback" not in error and len(error.strip().splitlines()) == 1


# --- item 5: a lost, emptied or damaged catalogue; the WAL ----------------------------------
@pytest.mark.parametrize("loss", ["deleted", "emptied"])
def test_a_lost_catalogue_is_not_recreated_beside_the_blobs(filled, loss):
    catalog = filled / "catalog.sqlite3"
    if loss == "deleted":
        catalog.unlink()
    else:
        catalog.write_bytes(b"")
    with pytest.raises(StoreUnusable, match="store repair"):
        LocalStore(filled)
    assert not catalog.exists() or catalog.stat().st_size == 0  # nothing written in its place
    proc = cli(filled, "ls", "s3://bkt/")
    assert "store repair" in one_error_line(proc)


def test_garbage_in_the_middle_of_the_catalogue_stops_writes(filled):
    catalog = filled / "catalog.sqlite3"
    size = catalog.stat().st_size
    assert size > 16 * 4096
    with open(catalog, "r+b") as f:  # the header survives, pages in the middle do not
        f.seek(size // 2 - 4096)
        f.write(os.urandom(8 * 4096))
    store = LocalStore(filled)
    assert store.damaged
    with pytest.raises(StoreUnusable, match="damaged"):
        store.put_object("bkt", "after", b"x")
    with pytest.raises(StoreUnusable, match="damaged"):
        store.put_annotation("bkt", "doc00.txt", "late", "x")
    store.close()
    proc = cli(filled, "annotate", "s3://bkt/doc01.txt", "late", "--json", '{"a": 1}')
    assert "damaged" in one_error_line(proc)


_IDLE_READER = textwrap.dedent(
    """
    import sys, time
    from marginalia.storage.local import LocalStore
    store = LocalStore(sys.argv[1])
    store.list_buckets()
    print("open", flush=True)
    time.sleep(600)
    """
)


def test_no_wal_is_left_when_a_process_finishes(store_dir, tmp_path):
    LocalStore(store_dir).close()
    # Another process has the store open (a batch worker, an MCP server): the writer is not the
    # catalogue's last connection, so SQLite's own clean-up at close does not run.
    reader = subprocess.Popen([sys.executable, "-c", _IDLE_READER, str(store_dir)], stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "open"
        script = textwrap.dedent(
            """
            import sys
            from marginalia.storage.local import LocalStore
            store = LocalStore(sys.argv[1])
            store.create_bucket("bkt")
            for i in range(200):
                store.put_annotation("bkt", store.put_object("bkt", f"k{i}", b"x").key, "n", "y" * 2000)
            # no close(): the process simply ends, as a CLI command does
            """
        )
        subprocess.run([sys.executable, "-c", script, str(store_dir)], check=True, timeout=300)
        wal = store_dir / "catalog.sqlite3-wal"
        assert not wal.exists() or wal.stat().st_size == 0
        alone = tmp_path / "alone.sqlite3"
        shutil.copyfile(store_dir / "catalog.sqlite3", alone)  # the catalogue file only, as a naive backup does
        conn = sqlite3.connect(alone)
        assert conn.execute("SELECT count(*) FROM annotation_store").fetchone()[0] == 200
        conn.close()
    finally:
        reader.kill()
        reader.wait(30)


# --- item 10: a full disk is one line ---------------------------------------------------------
@needs_mount
def test_a_full_disk_is_one_line_in_put_annotate_and_minutes(tmp_path):
    out = in_mount_namespace(
        """
        mkdir -p "$DISK" && mount -t tmpfs -o size=3m tmpfs "$DISK"
        export MARGINALIA_STORE="local:$DISK/store"
        "$PY" -m marginalia mb s3://bkt > /dev/null
        "$PY" -m marginalia put "$SAMPLES/standup.vtt" s3://bkt/standup.vtt > /dev/null
        head -c 4000000 /dev/zero > "$OUT/big"
        "$PY" -m marginalia put "$OUT/big" s3://bkt/big 2> "$OUT/put.err" || echo $? > "$OUT/put.rc"
        head -c 4000000 /dev/zero > "$DISK/filler" 2>/dev/null || true
        head -c 300000 /dev/zero | tr '\\0' x > "$OUT/payload"
        "$PY" -m marginalia annotate s3://bkt/standup.vtt note --file "$OUT/payload" \
            2> "$OUT/annotate.err" || echo $? > "$OUT/annotate.rc"
        "$PY" -m marginalia minutes s3://bkt/standup.vtt --yes 2> "$OUT/minutes.err" || echo $? > "$OUT/minutes.rc"
        """,
        DISK=str(tmp_path / "disk"),
        OUT=str(tmp_path),
        SAMPLES=str(SAMPLES),
    )
    assert out.returncode == 0, out.stderr.decode()
    for command in ("put", "annotate", "minutes"):
        error = (tmp_path / f"{command}.err").read_text()
        assert (tmp_path / f"{command}.rc").read_text().strip() == "2", (command, error)
        assert "no space left" in error, (command, error)
        assert "Traceback" not in error and len(error.strip().splitlines()) == 1, (command, error)


# --- item 5: a rebuildable store, and the store commands ---------------------------------------
def _contents(store: LocalStore) -> dict:
    """Everything a user sees: buckets, current objects with bodies, versions, annotations."""
    seen: dict = {}
    for bucket in store.list_buckets():
        for info in store.list_objects(bucket):
            body = store.get_object(bucket, info.key)[0]
            notes = {
                a.name: store.get_annotation(bucket, info.key, a.name).payload
                for a in store.list_annotations(bucket, info.key)
            }
            seen[(bucket, info.key)] = (body, info.etag, info.content_type, info.metadata, notes)
    return seen


@pytest.mark.parametrize("loss", ["deleted", "emptied", "garbage"])
def test_store_repair_rebuilds_names_versions_and_annotations(filled, loss):
    store = LocalStore(filled)
    store.create_bucket("vers", versioned=True)
    first = store.put_object("vers", "doc", b"one", metadata={"owner": "ana"})
    store.put_annotation("vers", "doc", "note", "on version one", version_id=first.version_id)
    second = store.put_object("vers", "doc", b"two", content_type="text/plain")
    store.put_annotation("vers", "doc", "note", "on version two")
    store.delete_annotation("bkt", "doc05.txt", "summary")
    store.put_object("bkt", "doc06.txt", b"overwritten")  # the old body and its annotations are gone
    before = _contents(store)
    store.close()
    catalog = filled / "catalog.sqlite3"
    if loss == "deleted":
        catalog.unlink()
    elif loss == "emptied":
        catalog.write_bytes(b"")
    else:
        size = catalog.stat().st_size
        with open(catalog, "r+b") as f:
            f.seek(size // 2 - 4096)
            f.write(os.urandom(8 * 4096))

    check = cli(filled, "store", "check")
    assert "store repair" in one_error_line(check)
    repair = cli(filled, "store", "repair")
    assert repair.returncode == 0, repair.stderr.decode()
    assert "rebuilt the catalogue" in repair.stdout.decode()
    assert cli(filled, "store", "check").returncode == 0

    rebuilt = LocalStore(filled)
    assert _contents(rebuilt) == before
    versions = rebuilt.get_object("vers", "doc", version_id=first.version_id)
    assert versions[0] == b"one" and rebuilt.get_object("vers", "doc")[1].version_id == second.version_id
    assert rebuilt.get_annotation("vers", "doc", "note", version_id=first.version_id).payload == b"on version one"
    rebuilt.put_annotation("bkt", "doc01.txt", "after", "the repair")  # writable again, sequence moves on
    assert rebuilt.get_annotation("bkt", "doc01.txt", "after").payload == b"the repair"
    rebuilt.close()


def test_store_gc_command_removes_orphan_blobs(filled):
    orphan = filled / "blobs" / "ee" / ("ee" + "1" * 30)
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"left by a crash")
    os.utime(orphan, (0, 0))
    check = cli(filled, "store", "check")
    assert check.returncode == 0 and "store gc" in check.stdout.decode()
    gc = cli(filled, "store", "gc")
    assert gc.returncode == 0 and "removed 1 orphan" in gc.stdout.decode(), gc.stderr.decode()
    assert not orphan.exists()
    assert cli(filled, "get", "s3://bkt/doc03.txt").stdout == b"body 3"
