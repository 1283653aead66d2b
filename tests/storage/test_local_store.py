"""What only the local backend promises: safe keys on disk, crash safety, multi-process consistency,
and the SQL ``annotation``/``journal`` tables kept in step with every write (spec R17)."""

from __future__ import annotations

import multiprocessing
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from marginalia.errors import (
    BucketNotFound,
    InvalidInput,
    InvalidURI,
    MethodNotAllowed,
    PreconditionFailed,
    StorageError,
)
from marginalia.storage import rules
from marginalia.storage.local import ANNOTATION_COLUMNS, LocalStore

R17_5_COLUMNS = [
    "bucket", "object_key", "object_version_id", "object_join_key", "name", "sequence_number",
    "last_modified_date", "size", "e_tag", "checksum_algorithm", "replication_status", "text_value",
]  # fmt: skip
R17_9_COLUMNS = [
    "bucket", "key", "sequence_number", "record_type", "record_timestamp", "version_id", "is_delete_marker",
    "size", "last_modified_date", "e_tag", "storage_class", "is_multipart", "encryption_status",
    "is_bucket_key_enabled", "kms_key_arn", "checksum_algorithm", "object_tags", "user_metadata", "requester",
    "source_ip_address", "request_id", "annotation",
]  # fmt: skip


def query(store: LocalStore, sql: str, *params) -> list[tuple]:
    """Read the catalogue the way a search component would: a separate, plain connection."""
    conn = sqlite3.connect(store.catalog_path)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def annotation_rows(store: LocalStore) -> list[tuple]:
    return query(
        store,
        "SELECT object_key, object_version_id, name, text_value FROM annotation ORDER BY object_key, object_version_id, name",
    )


def blob_files(root: Path) -> list[Path]:
    """Object bodies and temp files under blobs/, without the metadata sidecars beside them."""
    return sorted(
        p
        for p in (root / "blobs").rglob("*")
        if p.is_file() and not p.name.endswith(".meta") and not p.parent.name.endswith(".ann")
    )


@pytest.fixture
def b(local_store) -> str:
    local_store.create_bucket("bkt")
    return "bkt"


# --- layout and keys -------------------------------------------------------------------------
def test_keys_never_become_paths(local_store, b, tmp_path):
    local_store.put_object(b, "a/b/c.txt", b"x")
    files = [p.relative_to(local_store.root).as_posix() for p in local_store.root.rglob("*") if p.is_file()]
    assert not any("c.txt" in f or f.startswith("a/") for f in files)
    for bad in ["../../outside", "/etc/passwd", "a/../../x", "x\x00y", "a\\..\\b"]:
        with pytest.raises(InvalidURI):
            local_store.put_object(b, bad, b"x")
        with pytest.raises(InvalidURI):
            local_store.copy_object(b, "a/b/c.txt", b, bad)
    with pytest.raises(InvalidURI):
        local_store.list_objects_page(b, "../")
    with pytest.raises(InvalidURI):
        local_store.create_bucket("../up")
    assert not (tmp_path / "outside").exists()


def test_missing_bucket_and_auto_create(tmp_path):
    strict = LocalStore(tmp_path / "s")
    with pytest.raises(BucketNotFound, match="marginalia mb"):
        strict.put_object("nobucket", "k", b"x")
    with pytest.raises(StorageError):
        strict.create_bucket("dup")
        strict.create_bucket("dup", exist_ok=False)
    relaxed = LocalStore(tmp_path / "r", auto_create_buckets=True)
    assert list(relaxed.list_objects("fresh")) == []
    relaxed.put_object("fresh", "k", b"x")
    assert relaxed.bucket_exists("fresh") and relaxed.list_buckets() == ["fresh"]


def test_create_bucket_can_enable_versioning_later(local_store):
    local_store.create_bucket("later")
    assert local_store.put_object("later", "k", b"1").version_id is None
    local_store.create_bucket("later", versioned=True)
    assert local_store.is_versioned("later")
    assert local_store.put_object("later", "k", b"2").version_id
    assert local_store.get_object("later", "k", version_id="null")[0] == b"1"  # the pre-versioning null version


def test_suspended_versioning_overwrites_the_null_version(local_store):
    local_store.create_bucket("susp", versioned=True)
    v1 = local_store.put_object("susp", "k", b"1")
    local_store.set_versioning("susp", False)
    assert local_store.put_object("susp", "k", b"2").version_id is None
    local_store.put_annotation("susp", "k", "a", "on null")
    local_store.put_object("susp", "k", b"3")  # R11.8: replaces the null version and its annotations
    assert list(local_store.list_annotations("susp", "k")) == []
    assert local_store.get_object("susp", "k", version_id=v1.version_id)[0] == b"1"


def test_delete_marker_version_is_method_not_allowed(local_store):
    local_store.create_bucket("vers", versioned=True)
    local_store.put_object("vers", "k", b"1")
    local_store.delete_object("vers", "k")
    [(marker,)] = query(local_store, "SELECT version_id FROM object_version WHERE is_delete_marker = 1")
    with pytest.raises(MethodNotAllowed):
        local_store.get_annotation("vers", "k", "a", version_id=marker)
    with pytest.raises(MethodNotAllowed):
        local_store.head_object("vers", "k", version_id=marker)
    local_store.delete_object("vers", "k", version_id=marker)  # removing the marker restores the object
    assert local_store.get_object("vers", "k")[0] == b"1"


# --- crash safety ----------------------------------------------------------------------------
_SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from marginalia.storage.local import LocalStore

    class SlowBody:
        calls = 0
        def read(self, size):
            SlowBody.calls += 1
            if SlowBody.calls == 3:
                print("streaming", flush=True)
            if SlowBody.calls > 3:
                time.sleep(60)
            return b"N" * size

    store = LocalStore(Path(sys.argv[1]))
    mode = sys.argv[2]
    if mode == "commit":
        original = LocalStore._install_version
        def stalled(self, *args, **kwargs):
            row = original(self, *args, **kwargs)
            print("streaming", flush=True)   # inside BEGIN IMMEDIATE, after the new row was inserted
            time.sleep(60)
            return row
        LocalStore._install_version = stalled
        store.put_object("bkt", "doc", b"N" * 10)
    else:
        store.put_object("bkt", "doc", SlowBody())
    """
)


@pytest.mark.parametrize("moment", ["stream", "commit"])
def test_killed_writer_leaves_the_old_object(store_dir, moment):
    store = LocalStore(store_dir)
    store.create_bucket("bkt")
    old = store.put_object("bkt", "doc", b"old body")
    store.put_annotation("bkt", "doc", "keep", "me")
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_WRITER, str(store_dir), moment], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "streaming"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    data, info = store.get_object("bkt", "doc")
    assert data == b"old body" and info.etag == old.etag
    assert store.get_annotation("bkt", "doc", "keep").payload == b"me"
    assert query(store, "PRAGMA integrity_check") == [("ok",)]
    store.put_object("bkt", "doc", b"after the crash")  # the write lock was released
    assert store.get_object("bkt", "doc")[0] == b"after the crash"
    leftovers = blob_files(store_dir)
    assert len(leftovers) == 2  # the live blob + the dead writer's temp file or orphan blob
    assert store.gc(older_than=0) == 1
    assert store.get_object("bkt", "doc")[0] == b"after the crash"
    store.close()


def test_gc_keeps_young_orphans_and_referenced_blobs(local_store, b):
    local_store.put_object(b, "k", b"live")
    orphan = local_store.root / "blobs" / "ab" / ("ab" + "0" * 30)  # a blob name: 32 hex digits
    orphan.parent.mkdir(exist_ok=True)
    orphan.write_bytes(b"crash leftover")
    assert local_store.gc() == 0  # younger than an hour: could be a write in flight
    os.utime(orphan, (0, 0))
    assert local_store.gc() == 1 and not orphan.exists()
    assert local_store.get_object(b, "k")[0] == b"live"


def test_overwrite_and_delete_remove_old_blobs(local_store, b):
    def blobs():
        return blob_files(local_store.root)

    local_store.put_object(b, "k", b"1")
    local_store.put_object(b, "k", b"2")
    assert len(blobs()) == 1
    local_store.copy_object(b, "k", b, "k2")
    assert len(blobs()) == 2
    local_store.delete_object(b, "k")
    local_store.delete_object(b, "k2")
    assert blobs() == []


def test_failed_conditional_write_leaves_no_blob(local_store, b):
    local_store.put_object(b, "k", b"1")

    def files():
        return sorted(p for p in (local_store.root / "blobs").rglob("*") if p.is_file())  # sidecars too

    before = files()
    with pytest.raises(PreconditionFailed):
        local_store.put_object(b, "k", b"2", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        local_store.put_object(b, "k", b"2", if_match='"0123"')
    assert files() == before


# --- concurrency -----------------------------------------------------------------------------
def _race_worker(root: str, worker: int, rounds: int) -> int:
    store = LocalStore(Path(root))
    wins = 0
    for i in range(rounds):
        store.put_annotation("bkt", "shared", f"w{worker}-{i:03d}", f"worker {worker} round {i}")
        store.put_annotation("bkt", "shared", "last-writer", f"worker {worker}")
        try:
            store.put_object("bkt", f"race/{i:03d}", f"worker {worker}".encode(), if_none_match=True)
            wins += 1
        except PreconditionFailed:
            pass
    store.close()
    return wins


def test_two_processes_keep_a_consistent_catalogue(local_store, b):
    local_store.put_object(b, "shared", b"x")
    rounds = 40
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        wins = pool.starmap(_race_worker, [(str(local_store.root), w, rounds) for w in (1, 2)])
    assert sum(wins) == rounds  # exactly one creator per key (If-None-Match is atomic)
    names = [a.name for a in local_store.list_annotations(b, "shared")]
    assert len(names) == 2 * rounds + 1
    assert local_store.get_annotation(b, "shared", "last-writer").payload in (b"worker 1", b"worker 2")
    assert len(list(local_store.list_objects(b, "race/"))) == rounds
    # The SQL table mirrors the store exactly, and every event has its own sequence number.
    assert [r[2] for r in annotation_rows(local_store)] == sorted(names)
    seqs = [s for (s,) in query(local_store, "SELECT sequence_number FROM journal")]
    assert len(seqs) == len(set(seqs)) and all(len(s) == 20 and s.isdigit() for s in seqs)


def test_threads_share_one_store(local_store, b):
    local_store.put_object(b, "k", b"x")
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: local_store.put_annotation(b, "k", f"t{i:03d}", str(i)), range(200)))
    assert len(list(local_store.list_annotations(b, "k"))) == 200
    assert len(annotation_rows(local_store)) == 200
    errors = []

    def reader():
        try:
            for _ in range(50):
                local_store.get_object(b, "k")
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(30):
        local_store.put_object(b, "k", str(i).encode())  # readers must never see a missing blob
    for t in threads:
        t.join()
    assert errors == []


# --- the annotation table and the journal (R17) ----------------------------------------------
def test_annotation_table_has_exactly_the_r17_5_columns(local_store):
    assert list(ANNOTATION_COLUMNS) == R17_5_COLUMNS
    assert [r[1] for r in query(local_store, "PRAGMA table_info(annotation)")] == R17_5_COLUMNS
    assert [r[1] for r in query(local_store, "PRAGMA table_info(journal)")] == R17_9_COLUMNS
    indexed = {tuple(c[2] for c in query(local_store, f"PRAGMA index_info({name!r})")) for (name,) in query(
        local_store, "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'annotation'")}  # fmt: skip
    assert {("bucket", "name"), ("bucket", "object_key")} <= indexed


def test_annotation_rows_follow_every_write(local_store, b):
    local_store.put_object(b, "doc", b"body")
    info = local_store.put_annotation(b, "doc", "agent.summary", '{"status":"ok"}')
    [row] = query(local_store, "SELECT * FROM annotation")
    record = dict(zip(R17_5_COLUMNS, row, strict=False))
    assert record["bucket"] == b and record["object_key"] == "doc" and record["object_version_id"] is None
    assert record["name"] == "agent.summary" and record["text_value"] == '{"status":"ok"}'
    assert record["size"] == 15 and record["e_tag"] == info.etag and record["checksum_algorithm"] == "CRC32"
    assert record["replication_status"] is None and len(record["object_join_key"]) >= 16
    assert len(record["sequence_number"]) == 20
    assert record["last_modified_date"] == info.last_modified.strftime("%Y-%m-%d %H:%M:%S.%f")

    local_store.put_annotation(b, "doc", "agent.summary", '{"status":"failed"}')  # overwrite: still one row
    [(seq2, text)] = query(local_store, "SELECT sequence_number, text_value FROM annotation")
    assert text == '{"status":"failed"}' and seq2 > record["sequence_number"]

    local_store.put_annotation(b, "doc", "note", "hi")
    local_store.copy_object(b, "doc", b, "copy")
    local_store.copy_object(b, "doc", b, "bare", annotation_directive="EXCLUDE")
    assert annotation_rows(local_store) == [
        ("copy", None, "agent.summary", '{"status":"failed"}'),
        ("copy", None, "note", "hi"),
        ("doc", None, "agent.summary", '{"status":"failed"}'),
        ("doc", None, "note", "hi"),
    ]
    join_keys = dict(query(local_store, "SELECT object_key, object_join_key FROM annotation"))
    assert join_keys["copy"] != join_keys["doc"]

    local_store.delete_annotation(b, "doc", "note")
    local_store.put_object(b, "copy", b"overwritten")  # unversioned overwrite drops them (R11.3)
    assert annotation_rows(local_store) == [("doc", None, "agent.summary", '{"status":"failed"}')]
    local_store.delete_object(b, "doc")
    assert annotation_rows(local_store) == []


def test_annotation_rows_in_a_versioned_bucket(local_store):
    local_store.create_bucket("vers", versioned=True)
    v1 = local_store.put_object("vers", "doc", b"1")
    local_store.put_annotation("vers", "doc", "a", "on v1")
    v2 = local_store.put_object("vers", "doc", b"2")
    local_store.put_annotation("vers", "doc", "a", "on v2")
    local_store.delete_object("vers", "doc")  # delete marker keeps both
    assert sorted(annotation_rows(local_store)) == sorted(
        [("doc", v1.version_id, "a", "on v1"), ("doc", v2.version_id, "a", "on v2")]
    )
    local_store.delete_object("vers", "doc", version_id=v1.version_id)
    assert annotation_rows(local_store) == [("doc", v2.version_id, "a", "on v2")]


def test_journal_records_object_and_annotation_events(local_store, b):
    local_store.put_object(b, "doc", b"body", metadata={"Team": "ops"})
    local_store.put_annotation(b, "doc", "a", "1")
    local_store.put_annotation(b, "doc", "a", "2")
    local_store.delete_annotation(b, "doc", "a")
    local_store.delete_annotation(b, "doc", "a")  # nothing to delete: no event
    local_store.delete_object(b, "doc")
    events = query(local_store, "SELECT record_type, annotation, user_metadata FROM journal ORDER BY sequence_number")
    assert [e[0] for e in events] == ["CREATE", "CREATE_ANNOTATION", "CREATE_ANNOTATION", "DELETE_ANNOTATION", "DELETE"]
    assert events[1][1] == '{"name": "a"}' and events[0][1] is None
    assert events[0][2] == '{"team": "ops"}'
    # the journal uses the same timestamp format as the annotation table and parses as SQL text dates
    [(ts,)] = query(local_store, "SELECT record_timestamp FROM journal WHERE record_type = 'CREATE'")
    assert query(local_store, "SELECT datetime(?) IS NOT NULL", ts) == [(1,)]


def test_reindex_rebuilds_the_annotation_table(local_store, b):
    local_store.put_object(b, "doc", b"body")
    for n in ("x", "y", "z"):
        local_store.put_annotation(b, "doc", n, n * 3)
    before = query(local_store, "SELECT * FROM annotation ORDER BY name")
    conn = sqlite3.connect(local_store.catalog_path)
    conn.execute("DELETE FROM annotation")
    conn.execute(
        "INSERT INTO annotation (bucket, object_key, object_join_key, name, sequence_number) VALUES ('bkt', 'ghost', 'j', 'stale', '0')"
    )
    conn.commit()
    conn.close()
    assert local_store.reindex() == 3
    assert query(local_store, "SELECT * FROM annotation ORDER BY name") == before


def test_sequence_numbers_are_monotonic_across_reopen(store_dir):
    first = LocalStore(store_dir)
    first.create_bucket("bkt")
    first.put_object("bkt", "k", b"x")
    a = first.put_annotation("bkt", "k", "a", "1")
    first.close()
    second = LocalStore(store_dir)
    second.put_annotation("bkt", "k", "b", "1")
    seqs = dict(query(second, "SELECT name, sequence_number FROM annotation"))
    assert seqs["b"] > seqs["a"] and a.checksum == rules.checksum("CRC32", b"1")


def test_unusable_root_or_catalogue_is_a_clear_error(tmp_path):
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("x")
    with pytest.raises(InvalidInput, match="cannot use"):
        LocalStore(not_a_dir)
    broken = tmp_path / "broken"
    (broken / "blobs").mkdir(parents=True)
    (broken / "catalog.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StorageError, match="not a usable Marginalia catalogue"):
        LocalStore(broken)


def test_upload_of_a_directory_is_invalid_input(local_store, b, tmp_path):
    with pytest.raises(InvalidInput, match="cannot upload"):
        local_store.put_object(b, "k", tmp_path)
    with pytest.raises(InvalidInput, match="text mode"):
        with open(tmp_path / "store" / "catalog.sqlite3", encoding="latin-1") as text_file:
            local_store.put_object(b, "k", text_file)
    with pytest.raises(InvalidInput):
        local_store.put_object(b, "k", "a str is not a body")
