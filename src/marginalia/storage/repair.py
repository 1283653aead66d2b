"""Check and rebuild a local store's catalogue (``marginalia store check|repair``).

:func:`check` reads a store without opening it as a :class:`~.local.LocalStore` (which refuses a
lost catalogue) and lists what is wrong: a missing, emptied or damaged catalogue, object versions
whose blob is gone, blobs no version names. :func:`repair` rebuilds the catalogue from the
metadata kept beside each blob (:mod:`.sidecars`): the old catalogue is moved aside, never deleted,
and the new one is built in a temporary file and renamed into place. Run it while no other process
uses the store.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sqlite3
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import catalogue, sidecars


@dataclass
class StoreReport:
    """What :func:`check` found (``problems`` empty: healthy) or :func:`repair` did."""

    root: Path
    catalogue: str = "ok"  # ok | missing | empty | damaged: <why>
    blobs: int = 0
    versions: int = 0
    annotations: int = 0
    missing_blobs: list[str] = field(default_factory=list)  # named by the catalogue, absent on disk
    orphan_blobs: list[str] = field(default_factory=list)  # on disk, named by no version (gc removes them)
    unnamed_blobs: list[str] = field(default_factory=list)  # no metadata beside them: repair cannot name them
    moved_aside: Path | None = None

    @property
    def problems(self) -> list[str]:
        found = []
        if self.catalogue != "ok":
            found.append(f"catalogue {self.catalogue}")
        if self.missing_blobs:
            found.append(f"{len(self.missing_blobs)} object version(s) whose body is missing")
        return found


def _blob_names(root: Path) -> list[str]:
    blob_root = root / "blobs"
    if not blob_root.is_dir():
        return []
    return sorted(
        f"{p.parent.name}/{p.name}"
        for p in blob_root.glob("*/*")
        if catalogue.BLOB_NAME.match(f"{p.parent.name}/{p.name}")
    )


def check(root: Path | str) -> StoreReport:
    """Inspect the store at ``root`` (read only)."""
    root = Path(root).expanduser().resolve()
    report = StoreReport(root)
    blobs = _blob_names(root)
    report.blobs = len(blobs)
    report.unnamed_blobs = [b for b in blobs if sidecars.read_version(root / "blobs" / b) is None]
    path = root / catalogue.CATALOG_NAME
    if not path.exists():
        report.catalogue = "missing"
        return report
    if path.stat().st_size == 0:
        report.catalogue = "empty"
        return report
    try:
        conn = catalogue.connect(path, read_only=True, durable=True)
    except sqlite3.Error as exc:
        report.catalogue = f"damaged: {exc}"
        return report
    try:
        if catalogue.schema_state(conn) == "missing":
            report.catalogue = "empty"
            return report
        problem = catalogue.integrity_problem(conn)
        if problem:
            report.catalogue = f"damaged: {problem}"
        referenced = {row[0] for row in conn.execute("SELECT blob FROM object_version WHERE blob IS NOT NULL")}
        report.versions = conn.execute("SELECT count(*) FROM object_version").fetchone()[0]
        report.annotations = conn.execute("SELECT count(*) FROM annotation_store").fetchone()[0]
    except sqlite3.Error as exc:
        report.catalogue = f"damaged: {exc}"
        return report
    finally:
        conn.close()
    on_disk = set(blobs)
    report.missing_blobs = sorted(referenced - on_disk)
    report.orphan_blobs = sorted(on_disk - referenced)
    return report


def repair(root: Path | str) -> StoreReport:
    """Rebuild the catalogue from the blobs' metadata when :func:`check` finds it lost or damaged.

    Returns the report of what was rebuilt (``versions``, ``annotations``; ``unnamed_blobs`` are
    kept on disk, for a person to look at, until ``gc``). A healthy catalogue is left alone.
    """
    root = Path(root).expanduser().resolve()
    before = check(root)
    if not before.problems:
        return before
    path = root / catalogue.CATALOG_NAME
    building = root / f".{catalogue.CATALOG_NAME}.rebuild-{uuid.uuid4().hex[:8]}"
    report = StoreReport(root, catalogue="rebuilt", blobs=before.blobs)
    try:
        _rebuild(root, building, report)
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        if path.exists():
            report.moved_aside = root / f"{catalogue.CATALOG_NAME}.damaged-{stamp}"
            os.replace(path, report.moved_aside)
        for suffix in ("-wal", "-shm"):
            old = Path(f"{path}{suffix}")
            if old.exists():
                os.replace(old, f"{report.moved_aside or path}{suffix}.old")
        os.replace(building, path)
    finally:
        building.unlink(missing_ok=True)
    return report


def _rebuild(root: Path, target: Path, report: StoreReport) -> None:
    from .local_annotations import ANNOTATION_COLUMNS, ANNOTATION_ROW_SELECT
    from .local_versions import format_timestamp

    versions: dict[tuple[str, str, str], tuple[str, dict]] = {}
    for blob in _blob_names(root):
        data = sidecars.read_version(root / "blobs" / blob)
        if data is None:
            report.unnamed_blobs.append(blob)
            continue
        identity = (data["bucket"], data["key"], data["version_id"])
        kept = versions.get(identity)
        if kept is None or data["last_modified"] > kept[1]["last_modified"]:
            versions[identity] = (blob, data)  # a crash leftover of the same version loses to the newer one
    latest: dict[tuple[str, str], tuple[str, str]] = {}  # the newest version of each key is current
    for (bucket, key, version_id), (_, data) in versions.items():
        latest[(bucket, key)] = max(latest.get((bucket, key), ("", "")), (data["last_modified"], version_id))
    conn = sqlite3.connect(target, isolation_level=None)
    try:
        conn.execute("BEGIN")
        for statement in catalogue.schema_statements():
            conn.execute(statement)
        now = format_timestamp(dt.datetime.now(dt.UTC))
        buckets: dict[str, bool] = {}
        for bucket, _, version_id in versions:
            buckets[bucket] = buckets.get(bucket, False) or version_id != "null"
        for bucket, versioned in sorted(buckets.items()):
            conn.execute(
                "INSERT INTO bucket (name, versioning, created) VALUES (?, ?, ?)",
                (bucket, "Enabled" if versioned else "Disabled", now),
            )
        sequence = 0
        for (bucket, key, version_id), (blob, data) in sorted(versions.items()):
            is_latest = latest[(bucket, key)] == (data["last_modified"], version_id)
            cursor = conn.execute(
                """INSERT INTO object_version (bucket, key, version_id, is_latest, is_delete_marker, blob, size,
                       etag, last_modified, content_type, metadata, join_key)
                   VALUES (?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?)""",
                (
                    bucket, key, version_id, int(is_latest), blob, data["size"], data["etag"], data["last_modified"],
                    data["content_type"], json.dumps(data["metadata"] or {}, ensure_ascii=False), uuid.uuid4().hex,
                ),
            )  # fmt: skip
            report.versions += 1
            for note in sidecars.read_annotations(root / "blobs" / blob):
                conn.execute(
                    """INSERT OR REPLACE INTO annotation_store (object_id, name, sequence_number, last_modified, size,
                           etag, checksum_algorithm, checksum, payload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
                    (
                        cursor.lastrowid, note["name"], note["sequence_number"], note["last_modified"], note["size"],
                        note["etag"], note["checksum_algorithm"], note["checksum"], note["payload"],
                    ),
                )  # fmt: skip
                report.annotations += 1
                with contextlib.suppress(ValueError):
                    sequence = max(sequence, int(note["sequence_number"]))
        conn.execute("UPDATE meta SET value = ? WHERE name = 'sequence'", (sequence,))
        conn.execute(f"INSERT INTO annotation ({', '.join(ANNOTATION_COLUMNS)}) {ANNOTATION_ROW_SELECT}")
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
