"""The local store's SQLite catalogue: its schema, and opening it without ever blocking on a writer.

* **Opening never takes the write lock.** A catalogue whose schema is current is only read on open
  (the schema check, ``PRAGMA quick_check``), so a process frozen while it holds the write lock
  (SIGSTOP, a debugger) cannot stop ``ls``, ``get`` or ``annotations`` elsewhere: in WAL mode
  readers never wait for the writer. Only a new or older catalogue is written on open.
* **Read-only stores are readable.** On a read-only filesystem (or without write permission) the
  catalogue is opened with ``mode=ro`` (``immutable=1`` when SQLite cannot even create the WAL
  index there), and writes are refused with a message that says "read-only".
* **A lost catalogue is not silently replaced.** A missing or emptied catalogue beside existing
  blobs is refused (``marginalia store repair`` rebuilds it); a catalogue that fails the integrity
  check opens for reading but refuses writes.
* **No WAL left behind.** :func:`checkpoint` folds the write-ahead log into the catalogue file when
  a process closes its store, so a copy of ``catalog.sqlite3`` alone holds everything.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import sqlite3
from pathlib import Path

from ..errors import StoreUnusable

CATALOG_NAME = "catalog.sqlite3"
BUSY_TIMEOUT_MS = 60_000

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (name, value) VALUES ('sequence', 0), ('schema_version', 1);

CREATE TABLE IF NOT EXISTS bucket (
    name TEXT PRIMARY KEY,
    versioning TEXT NOT NULL CHECK (versioning IN ('Disabled', 'Enabled', 'Suspended')),
    created TEXT NOT NULL
);

-- One row per object version or delete marker, version_id 'null' being the null version.
CREATE TABLE IF NOT EXISTS object_version (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    bucket TEXT NOT NULL,
    key TEXT NOT NULL,
    version_id TEXT NOT NULL,
    is_latest INTEGER NOT NULL,
    is_delete_marker INTEGER NOT NULL,
    blob TEXT,
    size INTEGER NOT NULL DEFAULT 0,
    etag TEXT,
    last_modified TEXT NOT NULL,
    content_type TEXT,
    metadata TEXT NOT NULL DEFAULT '{}',
    join_key TEXT NOT NULL UNIQUE
);
CREATE UNIQUE INDEX IF NOT EXISTS object_version_identity ON object_version (bucket, key, version_id);
CREATE UNIQUE INDEX IF NOT EXISTS object_version_latest ON object_version (bucket, key) WHERE is_latest = 1;

-- The annotations themselves, the source of truth (payloads are valid UTF-8, so stored as TEXT).
CREATE TABLE IF NOT EXISTS annotation_store (
    object_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    sequence_number TEXT NOT NULL,
    last_modified TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    checksum_algorithm TEXT,
    checksum TEXT,
    payload TEXT NOT NULL,
    PRIMARY KEY (object_id, name)
);

-- Spec R17.5: the annotation table, one row per live annotation, exactly these 12 columns.
CREATE TABLE IF NOT EXISTS annotation (
    bucket TEXT NOT NULL, object_key TEXT NOT NULL, object_version_id TEXT,
    object_join_key TEXT NOT NULL, name TEXT NOT NULL, sequence_number TEXT NOT NULL,
    last_modified_date TEXT, size INTEGER, e_tag TEXT, checksum_algorithm TEXT,
    replication_status TEXT, text_value TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS annotation_identity ON annotation (object_join_key, name);
CREATE INDEX IF NOT EXISTS annotation_bucket_name ON annotation (bucket, name);
CREATE INDEX IF NOT EXISTS annotation_bucket_key ON annotation (bucket, object_key);
-- Covers "objects with annotation X (but not Y)" without reading rows: the name scan, the NOT EXISTS
-- probe by (name, bucket, object_key) and its version check. Name first, so that a query scoped by
-- bucket only keeps annotation_bucket_key (rows of one object are adjacent there). Created on open
-- for older catalogues, and a short-lived (bucket, name, ...) variant is dropped.
DROP INDEX IF EXISTS annotation_bucket_name_key;
CREATE INDEX IF NOT EXISTS annotation_name_bucket_key ON annotation (name, bucket, object_key, object_version_id);

-- Spec R17.9: the journal, with object_tags/user_metadata as JSON objects and annotation as {"name": ...}.
CREATE TABLE IF NOT EXISTS journal (
    bucket TEXT NOT NULL, key TEXT NOT NULL, sequence_number TEXT NOT NULL,
    record_type TEXT NOT NULL, record_timestamp TEXT NOT NULL, version_id TEXT,
    is_delete_marker INTEGER, size INTEGER, last_modified_date TEXT, e_tag TEXT,
    storage_class TEXT, is_multipart INTEGER, encryption_status TEXT, is_bucket_key_enabled INTEGER,
    kms_key_arn TEXT, checksum_algorithm TEXT, object_tags TEXT, user_metadata TEXT,
    requester TEXT, source_ip_address TEXT, request_id TEXT, annotation TEXT
);
CREATE INDEX IF NOT EXISTS journal_sequence ON journal (sequence_number);
"""

#: What a current catalogue has (tables and indexes the schema creates) and must not have.
_EXPECTED = frozenset(re.findall(r"CREATE (?:UNIQUE )?(?:TABLE|INDEX) IF NOT EXISTS (\w+)", SCHEMA))
_DROPPED = frozenset(re.findall(r"DROP INDEX IF EXISTS (\w+)", SCHEMA))
#: Blob files are ``blobs/<2 hex>/<32 hex>``; anything else in there (temp files, sidecars) is not one.
BLOB_NAME = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{32}$")


def schema_statements() -> list[str]:
    return [s for s in SCHEMA.split(";") if s.strip()]  # no ';' inside the schema's comments


def connect(path: Path, *, read_only: bool, durable: bool) -> sqlite3.Connection:
    """A connection to the catalogue; read-only ones cannot write even by mistake."""
    if read_only:
        conn = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None, check_same_thread=False)
        try:  # WAL needs its index file (-shm); where it cannot be created, read the file as it is
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError:
            conn.close()
            conn = sqlite3.connect(
                f"{path.as_uri()}?immutable=1", uri=True, isolation_level=None, check_same_thread=False
            )
    else:
        conn = sqlite3.connect(path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
        conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def read_only_reason(root: Path) -> str | None:
    """Why this store cannot be written (a read-only filesystem, no permission), or None."""
    probe = root if root.exists() else root.parent
    catalog = root / CATALOG_NAME
    for path in (probe, catalog):
        if path.exists() and not os.access(path, os.W_OK):
            with contextlib.suppress(OSError):
                if os.statvfs(path).f_flag & os.ST_RDONLY:
                    return "read-only filesystem"
            return f"no write permission on {str(path)!r}"
    return None


def has_blobs(blob_root: Path) -> bool:
    """Whether any object body lives under ``blob_root`` (a catalogue once named it)."""
    if not blob_root.is_dir():
        return False
    return any(BLOB_NAME.match(f"{p.parent.name}/{p.name}") for p in blob_root.glob("*/*"))


def schema_state(conn: sqlite3.Connection) -> str:
    """``missing`` (new or emptied catalogue), ``outdated`` (needs a write) or ``current``."""
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    if "meta" not in names:
        return "missing"
    return "outdated" if (_EXPECTED - names) or (names & _DROPPED) else "current"


def integrity_problem(conn: sqlite3.Connection) -> str | None:
    """The first problem ``PRAGMA quick_check`` finds (pages, b-trees, indexes), or None."""
    try:
        rows = [row[0] for row in conn.execute("PRAGMA quick_check(20)")]
    except sqlite3.DatabaseError as exc:
        return str(exc)
    if rows == ["ok"]:
        return None
    found = [line.strip() for row in rows for line in row.splitlines() if line.strip() and "***" not in line]
    return f"{found[0] if found else rows[0]}{f' and {len(found) - 1} more problems' if len(found) > 1 else ''}"


def checkpoint(conn: sqlite3.Connection) -> None:
    """Fold the WAL into the catalogue and truncate it; skipped (not waited for) while a writer is busy."""
    with contextlib.suppress(sqlite3.Error):
        conn.execute("PRAGMA busy_timeout = 0")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def translate(exc: sqlite3.Error, root: Path) -> StoreUnusable | None:
    """The one-line error for a catalogue that is full, read-only or damaged; None for anything else."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    where = str(root)
    if primary == sqlite3.SQLITE_FULL or (primary == sqlite3.SQLITE_IOERR and _nearly_full(root)):
        return disk_full(where)  # SQLite reports a full disk as an I/O error when the WAL index cannot grow
    if primary == sqlite3.SQLITE_READONLY:
        return StoreUnusable(f"the local store {where!r} is read-only ({exc}): writes are refused")
    if primary in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB):
        return StoreUnusable(
            f"the local store catalogue {str(root / CATALOG_NAME)!r} is damaged ({exc}): "
            f"see `marginalia store check {where}` and `marginalia store repair {where}`"
        )
    return None


def _nearly_full(root: Path) -> bool:
    try:
        stats = os.statvfs(root)
    except OSError:
        return False
    return stats.f_bavail * stats.f_frsize < 256 * 1024


def disk_full(where: str) -> StoreUnusable:
    return StoreUnusable(f"no space left on the device of the local store {where!r}: free some space and retry")


def is_disk_full(exc: OSError) -> bool:
    return exc.errno in (errno.ENOSPC, errno.EDQUOT)
