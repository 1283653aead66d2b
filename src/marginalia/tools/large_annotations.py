"""JSON documents larger than one annotation (1 MiB), written as numbered parts plus an index.

A transcript of a long meeting or the minutes of a day-long workshop can exceed S3's 1 MiB
annotation payload (R7.1). Instead of truncating, :func:`put_json` splits the serialized
document into ``<name>.part-0001``, ``<name>.part-0002``, ... (each at most 1 MiB, cut on UTF-8
character boundaries so every part is valid UTF-8 as R7.2 requires) and then writes ``<name>``
itself as a small index::

    {"format": "marginalia.parts/v1", "parts": 3, "part_names": [...], "size": 2621440,
     "sha256": "...", "content_type": "application/json"}

The index is written LAST, so a reader following it never sees a set whose index is newer than
its parts; :func:`get_json` checks size and SHA-256 and, if a concurrent writer replaced parts
under it, reads once more before giving up with :class:`~marginalia.errors.ConflictRetry`.
Parts left over from an earlier, larger version are deleted after the index is in place.
A document that fits is written directly under ``<name>``, as any reader would expect.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from ..errors import AnnotationLimitExceeded, AnnotationNotFound, ConflictRetry, InvalidAnnotationName
from ..storage.base import AnnotationInfo
from ..storage.rules import MAX_ANNOTATIONS_PER_VERSION, MAX_PAYLOAD_BYTES, annotation_name_error

__all__ = ["INDEX_FORMAT", "get_json", "is_index", "part_name", "put_json", "split_utf8"]

INDEX_FORMAT = "marginalia.parts/v1"


def part_name(name: str, number: int) -> str:
    """Name of part ``number`` (1-based) of annotation ``name``."""
    return f"{name}.part-{number:04d}"


def _part_prefix(name: str) -> str:
    return f"{name}.part-"


def split_utf8(data: bytes, limit: int = MAX_PAYLOAD_BYTES) -> list[bytes]:
    """``data`` cut into pieces of at most ``limit`` bytes, never inside a UTF-8 character."""
    if limit < 4:
        raise ValueError("limit must leave room for a 4-byte UTF-8 character")
    pieces: list[bytes] = []
    start = 0
    while start < len(data):
        end = min(start + limit, len(data))
        if end < len(data):
            while end > start and (data[end] & 0xC0) == 0x80:  # a continuation byte: back up
                end -= 1
        pieces.append(data[start:end])
        start = end
    return pieces


def _encode(obj: Any) -> bytes:
    # The same encoding as Store.put_json_annotation (R7.6), so small documents are identical.
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")


def is_index(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("format") == INDEX_FORMAT and isinstance(doc.get("part_names"), list)


def put_json(
    store,
    bucket: str,
    key: str,
    name: str,
    obj: Any,
    *,
    if_match: str | None = None,
    version_id: str | None = None,
    part_limit: int = MAX_PAYLOAD_BYTES,
) -> list[AnnotationInfo]:
    """Write ``obj`` as annotation ``name``, split into parts when it exceeds 1 MiB.

    Returns the :class:`AnnotationInfo` of ``name`` first, then of each part written (so
    ``len(result) - 1`` parts). ``if_match`` (the object's ETag) conditions every write.
    ``part_limit`` (at most 1 MiB) is the size above which the document is split.
    Raises :class:`AnnotationLimitExceeded` or :class:`InvalidAnnotationName` before writing
    anything when the parts would not fit on the object version or their names are too long.
    """
    uri = f"s3://{bucket}/{key}"
    payload = _encode(obj)
    existing = {a.name for a in store.list_annotations(bucket, key, version_id=version_id)}
    stale_prefix = _part_prefix(name)
    kw = {"version_id": version_id, "if_match": if_match}

    part_limit = min(part_limit, MAX_PAYLOAD_BYTES)
    if len(payload) <= part_limit:
        if name not in existing and len(existing) >= MAX_ANNOTATIONS_PER_VERSION:
            raise _limit_error(uri, name, 1, existing)
        info = store.put_annotation(bucket, key, name, payload, **kw)
        _delete_stale(store, bucket, key, existing, stale_prefix, keep=set(), **kw)
        return [info]

    pieces = split_utf8(payload, part_limit)
    names = [part_name(name, i) for i in range(1, len(pieces) + 1)]
    for n in names:
        if (problem := annotation_name_error(n)) is not None:
            raise InvalidAnnotationName(
                f"cannot split annotation {name!r} on {uri} into parts: part name {n[:60]!r}... is invalid: {problem[1]}",
                uri=uri,
            )
    new_names = ({name, *names}) - existing
    if len(existing) + len(new_names) > MAX_ANNOTATIONS_PER_VERSION:
        raise _limit_error(uri, name, len(pieces) + 1, existing)

    index = {
        "format": INDEX_FORMAT,
        "parts": len(pieces),
        "part_names": names,
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "content_type": "application/json",
    }
    part_infos = [store.put_annotation(bucket, key, n, piece, **kw) for n, piece in zip(names, pieces, strict=False)]
    index_info = store.put_annotation(bucket, key, name, _encode(index), **kw)
    _delete_stale(store, bucket, key, existing, stale_prefix, keep=set(names), **kw)
    return [index_info, *part_infos]


def _limit_error(uri: str, name: str, needed: int, existing: set[str]) -> AnnotationLimitExceeded:
    return AnnotationLimitExceeded(
        f"cannot write annotation {name!r} on {uri}: it needs {needed} annotation(s) and the object version "
        f"already holds {len(existing)} of at most {MAX_ANNOTATIONS_PER_VERSION} (R8.1); nothing was written",
        uri=uri,
    )


def _delete_stale(store, bucket, key, existing: set[str], prefix: str, *, keep: set[str], version_id, if_match) -> None:
    for n in sorted(existing):
        if n.startswith(prefix) and n not in keep and n[len(prefix) :].isdigit():
            store.delete_annotation(bucket, key, n, version_id=version_id, if_match=if_match)


def get_json(store, bucket: str, key: str, name: str, *, version_id: str | None = None) -> Any:
    """Read annotation ``name`` as JSON, reassembling and verifying it if it was split.

    Raises :class:`AnnotationNotFound` if ``name`` (or one of its parts) is missing, and
    :class:`ConflictRetry` if the parts do not match the index even on a second read.
    """
    uri = f"s3://{bucket}/{key}"
    problem = ""
    for _attempt in range(2):
        doc = store.get_annotation(bucket, key, name, version_id=version_id).json()
        if not is_index(doc):
            return doc
        try:
            data = b"".join(
                store.get_annotation(bucket, key, n, version_id=version_id).payload for n in doc["part_names"]
            )
        except AnnotationNotFound as exc:
            problem = f"a part is missing ({exc})"
            continue
        if len(data) == doc.get("size") and hashlib.sha256(data).hexdigest() == doc.get("sha256"):
            return json.loads(data)
        problem = f"the {doc.get('parts')} parts are {len(data)} bytes and do not match the index's size/sha256"
    raise ConflictRetry(f"annotation {name!r} on {uri} could not be reassembled: {problem}; retry", uri=uri)
