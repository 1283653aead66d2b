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

The store is split by concept: :mod:`.local_transactions` (connections and transactions),
:mod:`.local_blobs` (the blob files), :mod:`.local_versions` (buckets, versions, the journal),
:mod:`.local_annotations` (annotations and the annotation table); this module holds the class,
its buckets and its objects. Check and repair are :mod:`.repair`.

Semantics follow spec R11 (versioning and lifecycle), R13 (copy), R14 (ObjectIfMatch) and the shared
validator :mod:`marginalia.storage.rules`, so both backends raise the same errors. Version ids:
random hex in a versioning-enabled bucket; the ``null`` version is reported as ``None`` and can be
addressed explicitly as ``"null"``.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import sqlite3
import threading
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path

from ..errors import InvalidInput, ObjectNotFound, PreconditionFailed, StorageError, StoreUnusable
from ..uri import validate_bucket, validate_key
from . import catalogue, rules
from .base import AnnotationDirective, Body, ObjectInfo, ObjectPage, Store
from .local_annotations import ANNOTATION_COLUMNS, ANNOTATION_ROW_SELECT, LocalAnnotations
from .local_blobs import CHUNK_SIZE, ORPHAN_MAX_AGE_SECONDS, BlobFiles
from .local_transactions import Transaction
from .local_versions import NULL_VERSION, format_timestamp, now, parse_timestamp

__all__ = [
    "ANNOTATION_COLUMNS",
    "ANNOTATION_ROW_SELECT",
    "CHUNK_SIZE",
    "DEFAULT_CONTENT_TYPE",
    "NULL_VERSION",
    "ORPHAN_MAX_AGE_SECONDS",
    "LocalStore",
    "format_timestamp",
    "parse_timestamp",
]

DEFAULT_CONTENT_TYPE = "binary/octet-stream"  # what S3 stores when PutObject sends none

#: Stores of this process, closed at exit so each folds its WAL into the catalogue (see catalogue.checkpoint).
_OPEN_STORES: weakref.WeakSet[LocalStore] = weakref.WeakSet()


@atexit.register
def _close_open_stores() -> None:
    for store in list(_OPEN_STORES):
        with contextlib.suppress(Exception):
            store.close()


class LocalStore(LocalAnnotations, Store):
    """Buckets, versioned objects and S3 Annotations in a local directory (see module docstring).

    ``auto_create_buckets=True`` creates a missing bucket on first write (and treats a missing
    bucket as empty on reads) — handy for demos; by default a missing bucket is BucketNotFound.
    """

    kind = "local"

    def __init__(self, root: Path | str, *, auto_create_buckets: bool = False, durable: bool = True):
        self.root = Path(root).expanduser().resolve()
        self.auto_create_buckets = auto_create_buckets
        self._durable = durable
        self.blobs = BlobFiles(self.root, durable=durable)
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self.read_only: str | None = catalogue.read_only_reason(self.root)
        self.damaged: str | None = None
        if not self.read_only:
            try:
                self.blobs.root.mkdir(parents=True, exist_ok=True)
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

    # --- blobs -------------------------------------------------------------------------------
    def _write_blob(self, body: Body, uri: str) -> tuple[str, int, str]:
        """Stream ``body`` into a new immutable blob; return (name, size, quoted md5 ETag)."""
        self._check_writable()
        return self.blobs.write(body, uri)

    def gc(self, *, older_than: float = ORPHAN_MAX_AGE_SECONDS) -> int:
        """Remove blob files no version references (crash leftovers) older than ``older_than`` s.

        The age threshold protects blobs of writes still in flight. Returns how many were removed.
        """

        def referenced() -> set[str]:
            with self._read() as conn:
                return {row[0] for row in conn.execute("SELECT blob FROM object_version WHERE blob IS NOT NULL")}

        return self.blobs.remove_orphans(older_than, referenced)

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
                (bucket, "Enabled" if versioned else "Disabled", format_timestamp(now())),
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
                f = self.blobs.path(row["blob"]).open("rb")
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

    def _delete_one(self, tx: Transaction, bucket: str, key: str, version_id: str | None) -> None:
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
            blob = self.blobs.link(source["blob"])
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
