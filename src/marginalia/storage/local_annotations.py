"""S3 Annotations in a local store: each stored with its object version, written with its
``annotation``-table row (spec R17.5, exactly 12 columns) and journal record in one transaction,
mirrored beside the blob (:mod:`.sidecars`) so ``marginalia store repair`` can rebuild it.
ObjectIfMatch (R14) and the 1,000-a-version limit are checked inside the write transaction."""

from __future__ import annotations

import sqlite3

from ..errors import AnnotationNotFound, PreconditionFailed
from . import rules, sidecars
from .base import Annotation, AnnotationInfo, AnnotationPage
from .local_transactions import Transaction
from .local_versions import VersionRows, format_timestamp, now, parse_timestamp, public_version_id

__all__ = ["ANNOTATION_COLUMNS", "ANNOTATION_ROW_SELECT", "LocalAnnotations"]

# The column list of the R17.5 annotation table, and how each column is derived from the stored
# annotation (a) and its object version (o). One mapping used by every write and by reindex().
ANNOTATION_COLUMNS = (
    "bucket", "object_key", "object_version_id", "object_join_key", "name", "sequence_number",
    "last_modified_date", "size", "e_tag", "checksum_algorithm", "replication_status", "text_value",
)  # fmt: skip
ANNOTATION_ROW_SELECT = """
    SELECT o.bucket, o.key, NULLIF(o.version_id, 'null'), o.join_key, a.name, a.sequence_number,
           a.last_modified, a.size, a.etag, a.checksum_algorithm, NULL, a.payload
    FROM annotation_store a JOIN object_version o ON o.id = a.object_id
"""


class LocalAnnotations(VersionRows):
    """The annotation methods of :class:`~marginalia.storage.local.LocalStore`."""

    # --- annotations -------------------------------------------------------------------------
    def _store_annotation(
        self,
        tx: Transaction,
        version: sqlite3.Row,
        name: str,
        text: str,
        etag: str,
        checksum_algorithm: str | None,
        checksum: str | None,
    ) -> AnnotationInfo:
        """Create or overwrite one annotation and its annotation-table row, journaled (R1.4, R17)."""
        sequence = self._journal(tx, "CREATE_ANNOTATION", version, annotation=name)
        when = format_timestamp(now())
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
            sidecars.write_annotation(self.blobs.path(version["blob"]), fields, self._durable)
        self._sync_annotation_row(tx.conn, version, name)
        return AnnotationInfo(
            name=name,
            size=size,
            etag=etag,
            last_modified=parse_timestamp(when),
            version_id=public_version_id(version["version_id"]),
            checksum_algorithm=checksum_algorithm,
            checksum=checksum,
        )

    @staticmethod
    def _sync_annotation_row(conn: sqlite3.Connection, version: sqlite3.Row, name: str) -> None:
        """Refresh the R17.5 row of one annotation from the stored annotation (same mapping as reindex)."""
        conn.execute("DELETE FROM annotation WHERE object_join_key = ? AND name = ?", (version["join_key"], name))
        conn.execute(
            f"INSERT INTO annotation ({', '.join(ANNOTATION_COLUMNS)}) {ANNOTATION_ROW_SELECT}"
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
            version_id=public_version_id(version["version_id"]),
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
            tx.conn.execute(f"INSERT INTO annotation ({', '.join(ANNOTATION_COLUMNS)}) {ANNOTATION_ROW_SELECT}")
            (count,) = tx.conn.execute("SELECT count(*) FROM annotation").fetchone()
        return count
