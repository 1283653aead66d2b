"""Metadata beside each blob, enough to rebuild a lost or damaged catalogue (``marginalia store repair``).

For a blob ``blobs/ab/<hex>`` the local store keeps::

    blobs/ab/<hex>.meta                 the object version: bucket, key, version id, ETag, size, dates, type
    blobs/ab/<hex>.ann/<sha256(name)>   one file per annotation: name, payload, ETag, checksum, sequence

They are written (atomically: temp file + rename) in the same write transaction as the catalogue
rows, and removed with the blob. What they cannot give back: delete markers (a versioned object
deleted "softly" comes back as its last version) and the R17.9 journal (it restarts empty).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

META_SUFFIX = ".meta"
ANNOTATIONS_SUFFIX = ".ann"
VERSION_FIELDS = ("bucket", "key", "version_id", "size", "etag", "last_modified", "content_type", "metadata")
ANNOTATION_FIELDS = (
    "name", "sequence_number", "last_modified", "size", "etag", "checksum_algorithm", "checksum", "payload",
)  # fmt: skip


def _write_json(path: Path, data: dict[str, Any], durable: bool) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_version(blob_path: Path, row: Any, durable: bool) -> None:
    """Record the object version stored in ``blob_path`` (a catalogue row of ``object_version``)."""
    data = {name: row[name] for name in VERSION_FIELDS}
    data["metadata"] = json.loads(data["metadata"])
    _write_json(blob_path.with_name(blob_path.name + META_SUFFIX), data, durable)


def annotation_path(blob_path: Path, name: str) -> Path:
    return blob_path.with_name(blob_path.name + ANNOTATIONS_SUFFIX) / hashlib.sha256(name.encode()).hexdigest()


def write_annotation(blob_path: Path, fields: dict[str, Any], durable: bool) -> None:
    path = annotation_path(blob_path, fields["name"])
    path.parent.mkdir(exist_ok=True)
    _write_json(path, {name: fields[name] for name in ANNOTATION_FIELDS}, durable)


def remove_annotation(blob_path: Path, name: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        annotation_path(blob_path, name).unlink()


def remove_all(blob_path: Path) -> None:
    """Remove what describes a blob that is gone (its version record and its annotations)."""
    with contextlib.suppress(FileNotFoundError):
        blob_path.with_name(blob_path.name + META_SUFFIX).unlink()
    shutil.rmtree(blob_path.with_name(blob_path.name + ANNOTATIONS_SUFFIX), ignore_errors=True)


def read_version(blob_path: Path) -> dict[str, Any] | None:
    """The recorded version of a blob, or None (no record, or an unreadable one)."""
    try:
        data = json.loads(blob_path.with_name(blob_path.name + META_SUFFIX).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and all(k in data for k in VERSION_FIELDS) else None


def read_annotations(blob_path: Path) -> Iterator[dict[str, Any]]:
    folder = blob_path.with_name(blob_path.name + ANNOTATIONS_SUFFIX)
    if not folder.is_dir():
        return
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".tmp-"):
            continue
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and all(k in data for k in ANNOTATION_FIELDS):
            yield data
