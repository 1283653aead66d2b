"""Buckets and object versions in a local store's catalogue: a bucket's versioning state, the
version a request targets (R11.6, R11.7), installing a new current version or delete marker
(R11.2, R11.3, R11.8), dropping one with its annotations, and the R17.9 journal record of each
event. Timestamps are ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC (Timestamp NTZ, spec R17.5)."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import uuid
from typing import Literal, overload

from ..errors import BucketNotFound, MethodNotAllowed, ObjectNotFound
from . import rules, sidecars
from .base import ObjectInfo
from .local_transactions import CatalogueAccess, Transaction

__all__ = ["NULL_VERSION", "VersionRows", "format_timestamp", "parse_timestamp", "public_version_id"]

NULL_VERSION = "null"
_TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S.%f"


def format_timestamp(when: dt.datetime) -> str:
    """UTC ``YYYY-MM-DD HH:MM:SS.ffffff`` without zone (Timestamp NTZ, spec R17.5)."""
    return when.astimezone(dt.UTC).strftime(_TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, _TIMESTAMP_FORMAT).replace(tzinfo=dt.UTC)


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def public_version_id(stored: str) -> str | None:
    """The version id callers see: the stored ``null`` version is ``None``, as on S3Store."""
    return None if stored == NULL_VERSION else stored


class VersionRows(CatalogueAccess):
    """Bucket and object-version rows of the catalogue (``auto_create_buckets``: see LocalStore)."""

    auto_create_buckets: bool

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
                    (bucket, format_timestamp(now())),
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
            version_id=public_version_id(row["version_id"]),
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

    def _drop_version(self, tx: Transaction, row: sqlite3.Row) -> None:
        """Remove a version (or delete marker) with all its annotations (R11.3, R11.5)."""
        tx.conn.execute("DELETE FROM annotation_store WHERE object_id = ?", (row["id"],))
        tx.conn.execute("DELETE FROM annotation WHERE object_join_key = ?", (row["join_key"],))
        tx.conn.execute("DELETE FROM object_version WHERE id = ?", (row["id"],))
        if row["blob"]:
            tx.garbage_blobs.append(row["blob"])

    def _install_version(
        self,
        tx: Transaction,
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
        when = format_timestamp(now())
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
            sidecars.write_version(self.blobs.path(blob), row, self._durable)
        self._journal(tx, "DELETE" if delete_marker else "CREATE", row)
        return row

    def _promote_latest(self, conn: sqlite3.Connection, bucket: str, key: str) -> None:
        conn.execute(
            """UPDATE object_version SET is_latest = 1 WHERE id =
               (SELECT max(id) FROM object_version WHERE bucket = ? AND key = ?)""",
            (bucket, key),
        )

    def _journal(self, tx: Transaction, record_type: str, row: sqlite3.Row, annotation: str | None = None) -> str:
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
                row["bucket"], row["key"], sequence, record_type, format_timestamp(now()),
                public_version_id(row["version_id"]),
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
