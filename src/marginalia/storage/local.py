"""``LocalStore``: a directory that behaves like S3 buckets with S3 Annotations (the embedded default).

Layout of ``root``::

    catalog.sqlite3          buckets, object versions, annotations, the ``annotation`` table, the journal
    blobs/<2 hex>/<32 hex>   object bodies: immutable files, one per object version

Why this design:

* **Atomic, crash-safe writes.** A body is streamed to a temp file next to its final place, fsynced,
  then ``os.replace``-d under a fresh random name; only then does a SQLite transaction make it the
  object's current version. A crash leaves either the old version or the new one, never a torn file;
  orphaned blobs from a crash are removed by :meth:`LocalStore.gc`.
* **Conditional writes across processes.** Every write runs in ``BEGIN IMMEDIATE`` (one writer at a
  time, ``busy_timeout`` waits for the lock), so If-None-Match / If-Match / ObjectIfMatch checks and
  the 1,000-annotation limit are checked and applied atomically, even between processes.
* **Keys never become file paths.** Keys are validated (:func:`marginalia.uri.validate_key`) on every
  call and live only in the catalogue, so no key can escape the directory.
* **Searchable.** The ``annotation`` table (spec R17.5, exactly 12 columns) and the ``journal``
  (R17.9; MAP/STRUCT columns as JSON text) are written in the same transaction as the data, so SQL
  over them is always read-your-writes (R17.10). Timestamps are ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC.

Semantics follow spec R11 (versioning and lifecycle), R13 (copy), R14 (ObjectIfMatch) and the shared
validator :mod:`marginalia.storage.rules`, so both backends raise the same errors. Version ids:
random hex in a versioning-enabled bucket; the ``null`` version is reported as ``None`` and can be
addressed explicitly as ``"null"``.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, overload

from ..errors import (
    AnnotationNotFound,
    BucketNotFound,
    InvalidInput,
    MethodNotAllowed,
    ObjectNotFound,
    PreconditionFailed,
    StorageError,
    StoreUnusable,
    TransientError,
)
from ..uri import validate_bucket, validate_key
from . import catalogue, rules, sidecars
from .base import (
    Annotation,
    AnnotationDirective,
    AnnotationInfo,
    AnnotationPage,
    Body,
    ObjectInfo,
    ObjectPage,
    Store,
)

CHUNK_SIZE = 1024 * 1024
NULL_VERSION = "null"
DEFAULT_CONTENT_TYPE = "binary/octet-stream"  # what S3 stores when PutObject sends none
ORPHAN_MAX_AGE_SECONDS = 3600.0
_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"

# The column list of the R17.5 annotation table, and how each column is derived from the stored
# annotation (a) and its object version (o). One mapping used by every write and by reindex().
ANNOTATION_COLUMNS = (
    "bucket", "object_key", "object_version_id", "object_join_key", "name", "sequence_number",
    "last_modified_date", "size", "e_tag", "checksum_algorithm", "replication_status", "text_value",
)  # fmt: skip
_ANNOTATION_ROW_SELECT = """
    SELECT o.bucket, o.key, NULLIF(o.version_id, 'null'), o.join_key, a.name, a.sequence_number,
           a.last_modified, a.size, a.etag, a.checksum_algorithm, NULL, a.payload
    FROM annotation_store a JOIN object_version o ON o.id = a.object_id
"""


#: Stores of this process, closed at exit so each folds its WAL into the catalogue (see catalogue.checkpoint).
_OPEN_STORES: weakref.WeakSet[LocalStore] = weakref.WeakSet()


@atexit.register
def _close_open_stores() -> None:
    for store in list(_OPEN_STORES):
        with contextlib.suppress(Exception):
            store.close()


def format_timestamp(when: dt.datetime) -> str:
    """UTC ``YYYY-MM-DD HH:MM:SS.ffffff`` without zone (Timestamp NTZ, spec R17.5)."""
    return when.astimezone(dt.UTC).strftime(_TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, _TIMESTAMP_FORMAT).replace(tzinfo=dt.UTC)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _public_version_id(stored: str) -> str | None:
    """The version id callers see: the stored ``null`` version is ``None``, as on S3Store."""
    return None if stored == NULL_VERSION else stored


def _fsync_dir(path: Path) -> None:
    """Make a rename durable (POSIX); harmless no-op where directories cannot be opened."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _body_chunks(body: Body, uri: str) -> Iterator[bytes]:
    """Yield the body in chunks of at most CHUNK_SIZE, never holding a whole file in memory."""
    if isinstance(body, (bytes, bytearray, memoryview)):
        view = memoryview(body).cast("B")
        for start in range(0, len(view), CHUNK_SIZE):
            yield bytes(view[start : start + CHUNK_SIZE])
        return
    if isinstance(body, Path):
        try:
            f = body.open("rb")
        except FileNotFoundError:
            raise InvalidInput(f"cannot upload to {uri}: file {str(body)!r} does not exist") from None
        except OSError as exc:  # a directory, no permission, ...
            raise InvalidInput(f"cannot upload {str(body)!r} to {uri}: {exc.strerror}") from None
        with f:
            yield from _body_chunks(f, uri)
        return
    if hasattr(body, "read"):
        while chunk := body.read(CHUNK_SIZE):
            if isinstance(chunk, str):
                raise InvalidInput(f"cannot upload to {uri}: the file object is open in text mode; open it with 'rb'")
            yield bytes(chunk)
        return
    raise InvalidInput(
        f"cannot upload to {uri}: body must be bytes, a binary file object or a Path, not {type(body).__name__}"
    )


@dataclass
class _Transaction:
    """What a write transaction created and made garbage: blobs to remove after commit/rollback."""

    conn: sqlite3.Connection
    new_blobs: list[str] = field(default_factory=list)
    garbage_blobs: list[str] = field(default_factory=list)
    garbage_annotations: list[tuple[str, str]] = field(default_factory=list)  # (blob, name) sidecars

    def next_sequence(self) -> str:
        """The store-wide monotonic 20-digit sequence number (spec R17.4)."""
        (value,) = self.conn.execute(
            "UPDATE meta SET value = value + 1 WHERE name = 'sequence' RETURNING value"
        ).fetchone()
        return f"{value:020d}"


class LocalStore(Store):
    """Buckets, versioned objects and S3 Annotations in a local directory (see module docstring).

    ``auto_create_buckets=True`` creates a missing bucket on first write (and treats a missing
    bucket as empty on reads) — handy for demos; by default a missing bucket is BucketNotFound.
    """

    kind = "local"

    def __init__(self, root: Path | str, *, auto_create_buckets: bool = False, durable: bool = True):
        self.root = Path(root).expanduser().resolve()
        self.auto_create_buckets = auto_create_buckets
        self._durable = durable
        self._blob_root = self.root / "blobs"
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        #: Why writes are refused: a read-only filesystem or permission (reads still work), or None.
        self.read_only: str | None = catalogue.read_only_reason(self.root)
        #: What the integrity check found wrong with the catalogue (reads work, writes refused), or None.
        self.damaged: str | None = None
        if not self.read_only:
            try:
                self._blob_root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InvalidInput(f"cannot use {str(self.root)!r} as a local store: {exc.strerror}") from None
        elif not self.root.is_dir():
            raise InvalidInput(f"cannot use {str(self.root)!r} as a local store: it does not exist ({self.read_only})")
        try:
            self._open_catalogue()
        except sqlite3.Error as exc:
            self.close()
            known = catalogue.translate(exc, self.root)
            if known is not None and "damaged" not in str(known):
                raise known from None
            raise StoreUnusable(
                f"{str(self.catalog_path)!r} is not a usable Marginalia catalogue ({exc}): "
                f"see `marginalia store check {self.root}`"
            ) from None
        except BaseException:
            self.close()
            raise
        _OPEN_STORES.add(self)

    # --- catalogue plumbing ------------------------------------------------------------------
    @property
    def catalog_path(self) -> Path:
        """The SQLite catalogue holding the ``annotation`` and ``journal`` tables."""
        return self.root / catalogue.CATALOG_NAME

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork: SQLite handles must not cross processes)."""
        pid = os.getpid()
        held = getattr(self._local, "conn", None)
        if held is not None and held[0] == pid:
            return held[1]
        conn = catalogue.connect(self.catalog_path, read_only=bool(self.read_only), durable=self._durable)
        self._local.conn = (pid, conn)
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    def _open_catalogue(self) -> None:
        """Open without the write lock when the schema is current (see :mod:`.catalogue`)."""
        conn = self._conn()
        state = catalogue.schema_state(conn)
        if state == "missing" and catalogue.has_blobs(self._blob_root):
            raise StoreUnusable(
                f"the local store {str(self.root)!r} holds object bodies but its catalogue "
                f"{catalogue.CATALOG_NAME} is missing or empty: refusing to start an empty one beside them; "
                f"rebuild it with `marginalia store repair {self.root}`"
            )
        if self.read_only:
            if state != "current":
                raise StoreUnusable(
                    f"the local store {str(self.root)!r} is read-only ({self.read_only}) and its catalogue "
                    f"{'does not exist' if state == 'missing' else 'needs an upgrade'}: open it where it can be written"
                )
            return
        if state == "current":
            self.damaged = catalogue.integrity_problem(conn)
            return
        for attempt in range(50):  # switching to WAL needs a moment without other writers
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError:
                time.sleep(0.05 * (attempt + 1))
        with self._write() as tx:
            for statement in catalogue.schema_statements():
                tx.conn.execute(statement)

    def close(self) -> None:
        """Close every connection; the WAL is folded into the catalogue first (nothing left beside it)."""
        with self._connections_lock:
            conns, self._connections = self._connections, []
        mine = getattr(self._local, "conn", None)
        if mine is not None and mine[0] == os.getpid() and not self.read_only and mine[1] in conns:
            catalogue.checkpoint(mine[1])
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreUnusable(
                f"the local store {str(self.root)!r} is read-only ({self.read_only}): writes are refused, reads work"
            )
        if self.damaged:
            raise StoreUnusable(
                f"the local store catalogue {str(self.catalog_path)!r} is damaged ({self.damaged}): writes are "
                f"refused; see `marginalia store check {self.root}` and `marginalia store repair {self.root}`"
            )

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """Catalogue failures (disk full, read-only, damaged) as one-line :class:`StoreUnusable` errors."""
        try:
            yield
        except sqlite3.Error as exc:
            error = catalogue.translate(exc, self.root)
            if error is None:
                raise
            raise error from None
        except OSError as exc:
            if catalogue.is_disk_full(exc):
                raise catalogue.disk_full(str(self.root)) from None
            raise

    @contextlib.contextmanager
    def _write(self) -> Iterator[_Transaction]:
        """A ``BEGIN IMMEDIATE`` transaction; blobs made garbage are unlinked only after commit."""
        self._check_writable()
        conn = self._conn()
        # Threads of this process queue on a lock (fair, no polling); other processes are kept
        # out by BEGIN IMMEDIATE + busy_timeout.
        with self._write_lock, self._translated():
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # still locked after busy_timeout
                if catalogue.translate(exc, self.root) is not None:
                    raise
                raise TransientError(
                    f"the local store catalogue {str(self.catalog_path)!r} is busy ({exc}); retry"
                ) from None
            tx = _Transaction(conn)
            try:
                yield tx
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                self._unlink_blobs(tx.new_blobs)
                raise
        self._unlink_blobs(tx.garbage_blobs)
        for blob, name in tx.garbage_annotations:
            sidecars.remove_annotation(self._blob_path(blob), name)

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot for several SELECTs (never waits for a writer)."""
        conn = self._conn()
        with self._translated():
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("COMMIT")

    # --- blobs -------------------------------------------------------------------------------
    def _blob_path(self, name: str) -> Path:
        return self._blob_root / name

    def _new_blob_name(self) -> str:
        hex_id = uuid.uuid4().hex
        return f"{hex_id[:2]}/{hex_id}"

    def _write_blob(self, body: Body, uri: str) -> tuple[str, int, str]:
        """Stream ``body`` into a new immutable blob; return (name, size, quoted md5 ETag)."""
        self._check_writable()
        name = self._new_blob_name()
        final = self._blob_path(name)
        with self._translated():
            final.parent.mkdir(exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=final.parent, prefix=".tmp-")
        md5 = hashlib.md5()
        size = 0
        try:
            with self._translated(), os.fdopen(fd, "wb") as f:
                for chunk in _body_chunks(body, uri):
                    f.write(chunk)
                    md5.update(chunk)
                    size += len(chunk)
                f.flush()
                if self._durable:
                    os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        if self._durable:
            _fsync_dir(final.parent)
        return name, size, rules.quote_etag(md5.hexdigest())

    def _link_blob(self, source: str) -> str:
        """A new name for an existing blob's content (hard link; a copy where links are impossible)."""
        name = self._new_blob_name()
        target = self._blob_path(name)
        target.parent.mkdir(exist_ok=True)
        try:
            os.link(self._blob_path(source), target)
        except OSError:
            tmp = target.with_name(f".tmp-{target.name}")
            shutil.copyfile(self._blob_path(source), tmp)
            os.replace(tmp, target)
        if self._durable:
            _fsync_dir(target.parent)
        return name

    def _unlink_blobs(self, names: Iterable[str]) -> None:
        for name in names:
            with contextlib.suppress(FileNotFoundError):
                self._blob_path(name).unlink()
            sidecars.remove_all(self._blob_path(name))

    def gc(self, *, older_than: float = ORPHAN_MAX_AGE_SECONDS) -> int:
        """Remove blob files no version references (crash leftovers) older than ``older_than`` s.

        The age threshold protects blobs of writes still in flight. Returns how many were removed.
        """
        cutoff = time.time() - older_than
        candidates = []
        for path in self._blob_root.glob("*/*"):  # blobs and temp files; sidecars go with their blob
            if not (catalogue.BLOB_NAME.match(f"{path.parent.name}/{path.name}") or path.name.startswith(".tmp-")):
                continue
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_mtime <= cutoff:
                    candidates.append(path)
        with self._read() as conn:
            referenced = {row[0] for row in conn.execute("SELECT blob FROM object_version WHERE blob IS NOT NULL")}
        removed = 0
        for path in candidates:
            if f"{path.parent.name}/{path.name}" not in referenced:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed += 1
                sidecars.remove_all(path)
        return removed

    # --- buckets -----------------------------------------------------------------------------
    def create_bucket(self, bucket: str, *, versioned: bool = False, exist_ok: bool = True) -> None:
        validate_bucket(bucket)
        with self._write() as tx:
            row = tx.conn.execute("SELECT versioning FROM bucket WHERE name = ?", (bucket,)).fetchone()
            if row is not None:
                if not exist_ok:
                    raise StorageError(f"bucket {bucket!r} already exists", code="BucketAlreadyOwnedByYou")
                if versioned and row["versioning"] != "Enabled":
                    tx.conn.execute("UPDATE bucket SET versioning = 'Enabled' WHERE name = ?", (bucket,))
                return
            tx.conn.execute(
                "INSERT INTO bucket (name, versioning, created) VALUES (?, ?, ?)",
                (bucket, "Enabled" if versioned else "Disabled", format_timestamp(_now())),
            )

    def bucket_exists(self, bucket: str) -> bool:
        validate_bucket(bucket)
        with self._read() as conn:
            return conn.execute("SELECT 1 FROM bucket WHERE name = ?", (bucket,)).fetchone() is not None

    def is_versioned(self, bucket: str) -> bool:
        validate_bucket(bucket)
        with self._read() as conn:
            return self._versioning(conn, bucket) == "Enabled"

    def set_versioning(self, bucket: str, enabled: bool) -> None:
        """Enable or suspend versioning (S3 cannot turn it off once enabled; only suspend)."""
        validate_bucket(bucket)
        with self._write() as tx:
            state = self._versioning(tx.conn, bucket)
            if enabled:
                new = "Enabled"
            else:
                new = "Disabled" if state == "Disabled" else "Suspended"
            tx.conn.execute("UPDATE bucket SET versioning = ? WHERE name = ?", (new, bucket))

    def list_buckets(self) -> list[str]:
        with self._read() as conn:
            return [row[0] for row in conn.execute("SELECT name FROM bucket ORDER BY name")]

    @overload
    def _versioning(self, conn: sqlite3.Connection, bucket: str, *, create: Literal[True]) -> str: ...
    @overload
    def _versioning(self, conn: sqlite3.Connection, bucket: str, *, create: bool = False) -> str | None: ...
    def _versioning(self, conn: sqlite3.Connection, bucket: str, *, create: bool = False) -> str | None:
        """The bucket's versioning state; BucketNotFound unless auto-creating (``None`` = empty)."""
        row = conn.execute("SELECT versioning FROM bucket WHERE name = ?", (bucket,)).fetchone()
        if row is not None:
            return row["versioning"]
        if self.auto_create_buckets:
            if create:
                conn.execute(
                    "INSERT INTO bucket (name, versioning, created) VALUES (?, 'Disabled', ?)",
                    (bucket, format_timestamp(_now())),
                )
                return "Disabled"
            return None
        raise BucketNotFound(
            f"bucket {bucket!r} does not exist in the local store {str(self.root)!r}: create it first "
            f"(marginalia mb {bucket})",
            uri=f"s3://{bucket}/",
        )

    # --- object versions ---------------------------------------------------------------------
    @staticmethod
    def _info(row: sqlite3.Row) -> ObjectInfo:
        return ObjectInfo(
            bucket=row["bucket"],
            key=row["key"],
            etag=row["etag"],
            size=row["size"],
            last_modified=parse_timestamp(row["last_modified"]),
            version_id=_public_version_id(row["version_id"]),
            content_type=row["content_type"],
            metadata=json.loads(row["metadata"]),
        )

    def _resolve(self, conn: sqlite3.Connection, bucket: str, key: str, version_id: str | None) -> sqlite3.Row:
        """The object version a request targets (R11.6, R11.7): current, or the one named."""
        uri = rules.object_uri(bucket, key)
        exists = self._versioning(conn, bucket) is not None
        if version_id is None:
            row = (
                exists
                and conn.execute(
                    "SELECT * FROM object_version WHERE bucket = ? AND key = ? AND is_latest = 1", (bucket, key)
                ).fetchone()
            )
            if not row or row["is_delete_marker"]:
                why = " (its current version is a delete marker)" if row else ""
                raise ObjectNotFound(f"no such object {uri}{why}", uri=uri)
            return row
        row = (
            exists
            and conn.execute(
                "SELECT * FROM object_version WHERE bucket = ? AND key = ? AND version_id = ?",
                (bucket, key, version_id),
            ).fetchone()
        )
        if not row:
            raise ObjectNotFound(f"no such version {version_id!r} of {uri} (R11.7)", code="NoSuchVersion", uri=uri)
        if row["is_delete_marker"]:
            raise MethodNotAllowed(f"version {version_id!r} of {uri} is a delete marker (R11.6)", uri=uri)
        return row

    def _drop_version(self, tx: _Transaction, row: sqlite3.Row) -> None:
        """Remove a version (or delete marker) with all its annotations (R11.3, R11.5)."""
        tx.conn.execute("DELETE FROM annotation_store WHERE object_id = ?", (row["id"],))
        tx.conn.execute("DELETE FROM annotation WHERE object_join_key = ?", (row["join_key"],))
        tx.conn.execute("DELETE FROM object_version WHERE id = ?", (row["id"],))
        if row["blob"]:
            tx.garbage_blobs.append(row["blob"])

    def _install_version(
        self,
        tx: _Transaction,
        bucket: str,
        key: str,
        *,
        versioning: str,
        blob: str | None,
        size: int = 0,
        etag: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
        delete_marker: bool = False,
    ) -> sqlite3.Row:
        """Make a new current version (or delete marker) of ``key``; it starts with no annotations (R11.2).

        Versioning enabled: a new random version id, the old current version becomes noncurrent.
        Otherwise the ``null`` version is replaced and its annotations dropped (R11.3, R11.8).
        """
        conn = tx.conn
        if versioning == "Enabled":
            version_id = uuid.uuid4().hex
        else:
            version_id = NULL_VERSION
            old_null = conn.execute(
                "SELECT * FROM object_version WHERE bucket = ? AND key = ? AND version_id = ?",
                (bucket, key, NULL_VERSION),
            ).fetchone()
            if old_null is not None:
                self._drop_version(tx, old_null)
        conn.execute(
            "UPDATE object_version SET is_latest = 0 WHERE bucket = ? AND key = ? AND is_latest = 1", (bucket, key)
        )
        when = format_timestamp(_now())
        row = conn.execute(
            """INSERT INTO object_version (bucket, key, version_id, is_latest, is_delete_marker, blob, size, etag,
                                           last_modified, content_type, metadata, join_key)
               VALUES (?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *""",
            (
                bucket, key, version_id, int(delete_marker), blob, size, etag, when,
                content_type, json.dumps(metadata or {}, ensure_ascii=False), uuid.uuid4().hex,
            ),
        ).fetchone()  # fmt: skip
        if blob is not None:  # enough beside the blob to rebuild this row (marginalia store repair)
            sidecars.write_version(self._blob_path(blob), row, self._durable)
        self._journal(tx, "DELETE" if delete_marker else "CREATE", row)
        return row

    def _promote_latest(self, conn: sqlite3.Connection, bucket: str, key: str) -> None:
        conn.execute(
            """UPDATE object_version SET is_latest = 1 WHERE id =
               (SELECT max(id) FROM object_version WHERE bucket = ? AND key = ?)""",
            (bucket, key),
        )

    def _journal(self, tx: _Transaction, record_type: str, row: sqlite3.Row, annotation: str | None = None) -> str:
        """Append one R17.9 journal record for an object version event or an annotation event."""
        sequence = tx.next_sequence()
        is_object_event = annotation is None
        tx.conn.execute(
            """INSERT INTO journal (bucket, key, sequence_number, record_type, record_timestamp, version_id,
                   is_delete_marker, size, last_modified_date, e_tag, storage_class, is_multipart,
                   encryption_status, is_bucket_key_enabled, kms_key_arn, checksum_algorithm, object_tags,
                   user_metadata, requester, source_ip_address, request_id, annotation)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, NULL, NULL, ?, ?)""",
            (
                row["bucket"], row["key"], sequence, record_type, format_timestamp(_now()),
                _public_version_id(row["version_id"]),
                row["is_delete_marker"] if is_object_event else None,
                row["size"] if is_object_event and not row["is_delete_marker"] else None,
                row["last_modified"] if is_object_event else None,
                row["etag"] if is_object_event else None,
                "STANDARD" if is_object_event and not row["is_delete_marker"] else None,
                0 if is_object_event and not row["is_delete_marker"] else None,
                "SSE-S3" if is_object_event and not row["is_delete_marker"] else None,
                0 if is_object_event and not row["is_delete_marker"] else None,
                "{}" if is_object_event else None,
                row["metadata"] if is_object_event else None,
                uuid.uuid4().hex,
                None if is_object_event else json.dumps({"name": annotation}, ensure_ascii=False),
            ),
        )  # fmt: skip
        return sequence

    # --- objects -----------------------------------------------------------------------------
    def put_object(
        self,
        bucket: str,
        key: str,
        body: Body,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        uri, metadata, expected = rules.validate_put_object(bucket, key, metadata, if_match)
        if if_none_match or expected is not None:  # fail fast, before streaming a body for nothing
            with self._read() as conn:
                self._check_put_preconditions(conn, bucket, key, if_none_match, expected)
        blob, size, etag = self._write_blob(body, uri)
        with self._write() as tx:
            tx.new_blobs.append(blob)
            versioning = self._versioning(tx.conn, bucket, create=True)
            self._check_put_preconditions(tx.conn, bucket, key, if_none_match, expected)  # authoritative
            row = self._install_version(
                tx, bucket, key, versioning=versioning, blob=blob, size=size, etag=etag,
                content_type=content_type or DEFAULT_CONTENT_TYPE, metadata=metadata,
            )  # fmt: skip
        return self._info(row)

    def _check_put_preconditions(
        self, conn: sqlite3.Connection, bucket: str, key: str, if_none_match: bool, expected: str | None
    ) -> None:
        """If-None-Match: * and If-Match on PutObject (a missing object fails If-Match with NoSuchKey)."""
        uri = rules.object_uri(bucket, key)
        current: sqlite3.Row | None = None
        if self._versioning(conn, bucket) is not None:
            current = conn.execute(
                "SELECT * FROM object_version WHERE bucket = ? AND key = ? AND is_latest = 1", (bucket, key)
            ).fetchone()
        exists = current is not None and not current["is_delete_marker"]
        if if_none_match and exists:
            raise PreconditionFailed(f"{uri} already exists (If-None-Match: *)", uri=uri)
        if expected is not None:
            if not exists:
                raise ObjectNotFound(f"no such object {uri} (If-Match needs an existing object)", uri=uri)
            assert current is not None  # exists
            if current["etag"] != expected:
                raise PreconditionFailed(
                    f"{uri} has ETag {current['etag']}, not {expected} (If-Match): it changed since it was read",
                    uri=uri,
                )

    def head_object(self, bucket: str, key: str, *, version_id: str | None = None) -> ObjectInfo:
        version_id = rules.validate_object_address(bucket, key, version_id)
        with self._read() as conn:
            return self._info(self._resolve(conn, bucket, key, version_id))

    def open_object(
        self, bucket: str, key: str, *, version_id: str | None = None
    ) -> tuple[Iterator[bytes], ObjectInfo]:
        version_id = rules.validate_object_address(bucket, key, version_id)
        for _attempt in range(5):
            with self._read() as conn:
                row = self._resolve(conn, bucket, key, version_id)
            try:
                f = self._blob_path(row["blob"]).open("rb")
            except FileNotFoundError:
                continue  # overwritten or deleted between lookup and open: look again
            return self._stream(f), self._info(row)
        raise ObjectNotFound(f"{rules.object_uri(bucket, key)} changed repeatedly while being opened; retry")

    @staticmethod
    def _stream(f) -> Iterator[bytes]:
        with f:
            while chunk := f.read(CHUNK_SIZE):
                yield chunk

    def list_objects_page(
        self,
        bucket: str,
        prefix: str = "",
        *,
        max_keys: int = 1000,
        continuation_token: str | None = None,
        start_after: str | None = None,
        delimiter: str | None = None,
    ) -> ObjectPage:
        prefix = rules.validate_list_objects(
            bucket, prefix, max_keys=max_keys, delimiter=delimiter, continuation_token=continuation_token
        )
        after, skip_prefix = start_after or "", None
        if continuation_token is not None:
            fields = rules.decode_token(continuation_token, "objects", where=f"s3://{bucket}/{prefix}")
            after, skip_prefix = fields["l"], fields.get("cp")
        objects: list[ObjectInfo] = []
        prefixes: list[str] = []
        last: tuple[str, str | None] | None = None
        more = False
        with self._read() as conn:
            if self._versioning(conn, bucket) is None:
                return ObjectPage([], None, [])
            cursor = conn.execute(
                """SELECT * FROM object_version WHERE bucket = ? AND is_latest = 1 AND is_delete_marker = 0
                   AND key > ? AND key >= ? ORDER BY key""",
                (bucket, after, prefix),
            )
            for row in cursor:
                key = row["key"]
                if not key.startswith(prefix):
                    break
                if skip_prefix and key.startswith(skip_prefix):
                    continue
                common = None
                if delimiter:
                    cut = key.find(delimiter, len(prefix))
                    if cut >= 0:
                        common = key[: cut + len(delimiter)]
                if len(objects) + len(prefixes) == max_keys:
                    more = True
                    break
                if common is not None:
                    prefixes.append(common)
                    skip_prefix = common
                    last = (key, common)
                else:
                    objects.append(self._info(row))
                    last = (key, None)
        next_token = None
        if more and last is not None:
            extra = {"cp": last[1]} if last[1] else {}
            next_token = rules.encode_token("objects", last[0], **extra)
        return ObjectPage(objects, next_token, prefixes)

    def delete_object(self, bucket: str, key: str, *, version_id: str | None = None) -> None:
        version_id = rules.validate_object_address(bucket, key, version_id)
        with self._write() as tx:
            self._delete_one(tx, bucket, key, version_id)

    def _delete_one(self, tx: _Transaction, bucket: str, key: str, version_id: str | None) -> None:
        """R11.3-R11.5: drop (unversioned), delete marker (versioned), or remove one version."""
        conn = tx.conn
        versioning = self._versioning(conn, bucket)
        if versioning is None:
            return
        if version_id is not None:
            row = conn.execute(
                "SELECT * FROM object_version WHERE bucket = ? AND key = ? AND version_id = ?",
                (bucket, key, version_id),
            ).fetchone()
            if row is None:
                return  # idempotent
            self._drop_version(tx, row)
            self._journal(tx, "DELETE", row)
            if row["is_latest"]:
                self._promote_latest(conn, bucket, key)
            return
        if versioning == "Disabled":
            row = conn.execute(
                "SELECT * FROM object_version WHERE bucket = ? AND key = ? AND version_id = ?",
                (bucket, key, NULL_VERSION),
            ).fetchone()
            if row is None:
                return
            self._drop_version(tx, row)
            self._journal(tx, "DELETE", row)
            if row["is_latest"]:
                self._promote_latest(conn, bucket, key)
            return
        self._install_version(tx, bucket, key, versioning=versioning, blob=None, delete_marker=True)

    def delete_objects(self, bucket: str, keys: Iterable[str]) -> None:
        validate_bucket(bucket)
        keys = [validate_key(k, bucket=bucket) for k in keys]
        for start in range(0, len(keys), 1000):  # one transaction per DeleteObjects-sized batch
            with self._write() as tx:
                if self._versioning(tx.conn, bucket) is None:
                    return
                for key in keys[start : start + 1000]:
                    self._delete_one(tx, bucket, key, None)

    def copy_object(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        src_version_id: str | None = None,
        annotation_directive: AnnotationDirective = "COPY",
    ) -> ObjectInfo:
        src_version_id = rules.validate_copy(
            src_bucket, src_key, dst_bucket, dst_key, src_version_id, annotation_directive
        )
        with self._write() as tx:
            source = self._resolve(tx.conn, src_bucket, src_key, src_version_id)
            if (src_bucket, src_key) == (dst_bucket, dst_key) and self._versioning(tx.conn, dst_bucket) != "Enabled":
                raise rules.self_copy_refused(src_bucket, src_key)  # a version id, but nothing to restore into
            annotations = []
            if annotation_directive == "COPY":
                annotations = tx.conn.execute(
                    "SELECT * FROM annotation_store WHERE object_id = ? ORDER BY name", (source["id"],)
                ).fetchall()
            versioning = self._versioning(tx.conn, dst_bucket, create=True)
            blob = self._link_blob(source["blob"])
            tx.new_blobs.append(blob)
            row = self._install_version(
                tx, dst_bucket, dst_key, versioning=versioning, blob=blob, size=source["size"], etag=source["etag"],
                content_type=source["content_type"], metadata=json.loads(source["metadata"]),
            )  # fmt: skip
            for annotation in annotations:  # R13.5: onto the new version; checksums preserved (R9.7)
                self._store_annotation(
                    tx, row, annotation["name"], annotation["payload"], annotation["etag"],
                    annotation["checksum_algorithm"], annotation["checksum"],
                )  # fmt: skip
        return self._info(row)

    # --- annotations -------------------------------------------------------------------------
    def _store_annotation(
        self,
        tx: _Transaction,
        version: sqlite3.Row,
        name: str,
        text: str,
        etag: str,
        checksum_algorithm: str | None,
        checksum: str | None,
    ) -> AnnotationInfo:
        """Create or overwrite one annotation and its annotation-table row, journaled (R1.4, R17)."""
        sequence = self._journal(tx, "CREATE_ANNOTATION", version, annotation=name)
        when = format_timestamp(_now())
        size = len(text.encode("utf-8"))
        tx.conn.execute(
            """INSERT INTO annotation_store (object_id, name, sequence_number, last_modified, size, etag,
                                             checksum_algorithm, checksum, payload)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (object_id, name) DO UPDATE SET sequence_number = excluded.sequence_number,
                 last_modified = excluded.last_modified, size = excluded.size, etag = excluded.etag,
                 checksum_algorithm = excluded.checksum_algorithm, checksum = excluded.checksum,
                 payload = excluded.payload""",
            (version["id"], name, sequence, when, size, etag, checksum_algorithm, checksum, text),
        )
        if version["blob"]:
            fields = {
                "name": name, "sequence_number": sequence, "last_modified": when, "size": size, "etag": etag,
                "checksum_algorithm": checksum_algorithm, "checksum": checksum, "payload": text,
            }  # fmt: skip
            sidecars.write_annotation(self._blob_path(version["blob"]), fields, self._durable)
        self._sync_annotation_row(tx.conn, version, name)
        return AnnotationInfo(
            name=name,
            size=size,
            etag=etag,
            last_modified=parse_timestamp(when),
            version_id=_public_version_id(version["version_id"]),
            checksum_algorithm=checksum_algorithm,
            checksum=checksum,
        )

    @staticmethod
    def _sync_annotation_row(conn: sqlite3.Connection, version: sqlite3.Row, name: str) -> None:
        """Refresh the R17.5 row of one annotation from the stored annotation (same mapping as reindex)."""
        conn.execute("DELETE FROM annotation WHERE object_join_key = ? AND name = ?", (version["join_key"], name))
        conn.execute(
            f"INSERT INTO annotation ({', '.join(ANNOTATION_COLUMNS)}) {_ANNOTATION_ROW_SELECT}"
            " WHERE a.object_id = ? AND a.name = ?",
            (version["id"], name),
        )

    @staticmethod
    def _check_object_etag(version: sqlite3.Row, expected: str | None, uri: str, name: str) -> None:
        """ObjectIfMatch (R14.1-R14.3): the targeted version's ETag must equal the caller's."""
        if expected is not None and version["etag"] != expected:
            raise PreconditionFailed(
                f"annotation {name!r} on {uri}: the object's ETag is {version['etag']}, not {expected} "
                "(ObjectIfMatch): the object changed since it was read (R14.1)",
                uri=uri,
            )

    def put_annotation(
        self,
        bucket: str,
        key: str,
        name: str,
        payload: bytes | str,
        *,
        version_id: str | None = None,
        if_match: str | None = None,
    ) -> AnnotationInfo:
        version_id = rules.validate_annotation_address(bucket, key, name, version_id)
        data = rules.payload_bytes(payload, bucket=bucket, key=key, name=name)
        uri = rules.object_uri(bucket, key)
        expected = rules.normalize_etag(if_match) if if_match is not None else None
        etag = rules.md5_etag(data)
        checksum = rules.checksum(rules.DEFAULT_CHECKSUM_ALGORITHM, data)
        with self._write() as tx:
            version = self._resolve(tx.conn, bucket, key, version_id)
            self._check_object_etag(version, expected, uri, name)
            exists = tx.conn.execute(
                "SELECT 1 FROM annotation_store WHERE object_id = ? AND name = ?", (version["id"], name)
            ).fetchone()
            if not exists:
                (count,) = tx.conn.execute(
                    "SELECT count(*) FROM annotation_store WHERE object_id = ?", (version["id"],)
                ).fetchone()
                if count >= rules.MAX_ANNOTATIONS_PER_VERSION:
                    raise rules.annotation_limit_error(bucket, key, name, version_id)
            return self._store_annotation(
                tx, version, name, data.decode("utf-8"), etag, rules.DEFAULT_CHECKSUM_ALGORITHM, checksum
            )

    @staticmethod
    def _annotation_info(row: sqlite3.Row, version: sqlite3.Row) -> AnnotationInfo:
        return AnnotationInfo(
            name=row["name"],
            size=row["size"],
            etag=row["etag"],
            last_modified=parse_timestamp(row["last_modified"]),
            version_id=_public_version_id(version["version_id"]),
            checksum_algorithm=row["checksum_algorithm"],
            checksum=row["checksum"],
        )

    def get_annotation(self, bucket: str, key: str, name: str, *, version_id: str | None = None) -> Annotation:
        version_id = rules.validate_annotation_address(bucket, key, name, version_id)
        uri = rules.object_uri(bucket, key)
        with self._read() as conn:
            version = self._resolve(conn, bucket, key, version_id)
            row = conn.execute(
                "SELECT * FROM annotation_store WHERE object_id = ? AND name = ?", (version["id"], name)
            ).fetchone()
        if row is None:
            of = f" (version {version_id})" if version_id else ""
            raise AnnotationNotFound(f"no annotation {name!r} on {uri}{of}", uri=uri)
        return Annotation(bucket, key, self._annotation_info(row, version), row["payload"].encode("utf-8"))

    def list_annotations_page(
        self,
        bucket: str,
        key: str,
        *,
        prefix: str | None = None,
        version_id: str | None = None,
        max_results: int = 1000,
        continuation_token: str | None = None,
    ) -> AnnotationPage:
        version_id = rules.validate_annotation_address(bucket, key, None, version_id)
        uri = rules.object_uri(bucket, key)
        rules.validate_page_size(max_results, where=uri)
        prefix = rules.validate_annotation_prefix(prefix, bucket=bucket, key=key) or ""
        with self._read() as conn:
            version = self._resolve(conn, bucket, key, version_id)
            after = ""
            if continuation_token is not None:  # checked after the object exists (R12.2)
                after = rules.decode_token(continuation_token, "annotations", where=uri)["l"]
            rows = conn.execute(
                """SELECT * FROM annotation_store WHERE object_id = ? AND name > ? AND name >= ?
                   AND substr(name, 1, ?) = ? ORDER BY name LIMIT ?""",
                (version["id"], after, prefix, len(prefix), prefix, max_results + 1),
            ).fetchall()
        more = len(rows) > max_results
        rows = rows[:max_results]
        token = rules.encode_token("annotations", rows[-1]["name"]) if more else None
        return AnnotationPage([self._annotation_info(r, version) for r in rows], token)

    def delete_annotation(
        self, bucket: str, key: str, name: str, *, version_id: str | None = None, if_match: str | None = None
    ) -> None:
        version_id = rules.validate_annotation_address(bucket, key, name, version_id)
        uri = rules.object_uri(bucket, key)
        expected = rules.normalize_etag(if_match) if if_match is not None else None
        with self._write() as tx:
            version = self._resolve(tx.conn, bucket, key, version_id)
            self._check_object_etag(version, expected, uri, name)
            gone = tx.conn.execute(
                "DELETE FROM annotation_store WHERE object_id = ? AND name = ? RETURNING name", (version["id"], name)
            ).fetchone()
            if gone is not None:  # deleting a missing name is a quiet success (R5.4)
                tx.conn.execute(
                    "DELETE FROM annotation WHERE object_join_key = ? AND name = ?", (version["join_key"], name)
                )
                self._journal(tx, "DELETE_ANNOTATION", version, annotation=name)
                if version["blob"]:
                    tx.garbage_annotations.append((version["blob"], name))

    # --- the annotation table ----------------------------------------------------------------
    def reindex(self) -> int:
        """Rebuild the ``annotation`` table from the stored annotations; returns the row count."""
        with self._write() as tx:
            tx.conn.execute("DELETE FROM annotation")
            tx.conn.execute(f"INSERT INTO annotation ({', '.join(ANNOTATION_COLUMNS)}) {_ANNOTATION_ROW_SELECT}")
            (count,) = tx.conn.execute("SELECT count(*) FROM annotation").fetchone()
        return count
