"""Ingest: head the object an agent works on and remember which version it read.

The ETag kept here (``source.etag``) is what every later write is conditioned on
(``ObjectIfMatch``): results are only ever attached to the bytes they were made from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..context import rails
from ..uri import parse_uri

if TYPE_CHECKING:
    from .review import ReviewState


def source_of(info) -> dict:
    """The small, JSON-ready description of an object version that state keeps."""
    return {
        "uri": info.uri,
        "bucket": info.bucket,
        "key": info.key,
        "etag": info.etag,
        "version_id": info.version_id,
        "size": info.size,
        "content_type": info.content_type,
        "last_modified": info.last_modified.isoformat(),
    }


def ingest(state: ReviewState, runtime: Any) -> dict:
    """Head ``state["object_uri"]`` (ObjectNotFound names it when missing)."""
    uri = parse_uri(state["object_uri"])
    info = rails(runtime).store.head_object(uri.bucket, uri.key)
    return {"source": source_of(info)}
