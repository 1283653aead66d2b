"""The storage interface: objects and their S3 Annotations, the same on every backend.

Two implementations: :class:`marginalia.storage.local.LocalStore` (a directory that behaves like
a bucket; the embedded default) and :class:`marginalia.storage.s3.S3Store` (boto3). The shared
validator (:mod:`marginalia.storage.rules`) runs before either backend is called, so both raise
the same :mod:`marginalia.errors` exceptions for bad input (spec R20.2).

All methods are synchronous and thread-safe; async callers use ``asyncio.to_thread``
(see :mod:`marginalia.storage.aio`).
"""

from __future__ import annotations

import abc
import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal, Self

Body = bytes | bytearray | memoryview | BinaryIO | Path
AnnotationDirective = Literal["COPY", "EXCLUDE"]


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    bucket: str
    key: str
    etag: str  # quoted, as S3 returns it: '"<md5 hex>"'
    size: int
    last_modified: dt.datetime  # aware, UTC
    version_id: str | None = None  # None in an unversioned bucket
    content_type: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True, slots=True)
class ObjectPage:
    objects: list[ObjectInfo]
    next_token: str | None  # pass back as continuation_token; None when done
    common_prefixes: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class AnnotationInfo:
    """One entry of ListObjectAnnotations, or the metadata of a Put/Get."""

    name: str
    size: int
    etag: str  # the annotation's own ETag, quoted MD5 of the payload
    last_modified: dt.datetime
    version_id: str | None = None  # object version annotated
    checksum_algorithm: str | None = None  # e.g. "CRC32"
    checksum: str | None = None  # base64 value


@dataclass(frozen=True, slots=True)
class Annotation:
    """A payload and its metadata (GetObjectAnnotation)."""

    bucket: str
    key: str
    info: AnnotationInfo
    payload: bytes

    @property
    def name(self) -> str:
        return self.info.name

    def text(self) -> str:
        return self.payload.decode("utf-8")

    def json(self) -> Any:
        import json

        return json.loads(self.payload)


@dataclass(frozen=True, slots=True)
class AnnotationPage:
    annotations: list[AnnotationInfo]
    next_token: str | None


class Store(abc.ABC):
    """A set of buckets holding objects, each object version holding up to 1,000 annotations."""

    #: "local" or "s3"
    kind: str

    # --- buckets ---------------------------------------------------------------------------
    @abc.abstractmethod
    def create_bucket(self, bucket: str, *, versioned: bool = False, exist_ok: bool = True) -> None: ...

    @abc.abstractmethod
    def bucket_exists(self, bucket: str) -> bool: ...

    @abc.abstractmethod
    def is_versioned(self, bucket: str) -> bool: ...

    # --- objects ---------------------------------------------------------------------------
    @abc.abstractmethod
    def put_object(
        self,
        bucket: str,
        key: str,
        body: Body,
        *,
        if_none_match: bool = False,  # create only if absent (If-None-Match: *)
        if_match: str | None = None,  # overwrite only if the current ETag is this
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        """Write an object. ``body`` is bytes, a binary file object or a Path; files and
        streams are streamed (never read whole into memory). A new version starts with no
        annotations (R11.2). Conditional failures raise PreconditionFailed."""

    def get_object(self, bucket: str, key: str, *, version_id: str | None = None) -> tuple[bytes, ObjectInfo]:
        """Read a whole object into memory (for small objects); every backend streams the same way."""
        chunks, info = self.open_object(bucket, key, version_id=version_id)
        return b"".join(chunks), info

    @abc.abstractmethod
    def open_object(
        self, bucket: str, key: str, *, version_id: str | None = None
    ) -> tuple[Iterator[bytes], ObjectInfo]:
        """Stream an object as chunks."""

    def download(self, bucket: str, key: str, path: Path, *, version_id: str | None = None) -> ObjectInfo:
        """Stream an object to a local file (written to a temp file, then renamed)."""
        import os
        import tempfile

        chunks, info = self.open_object(bucket, key, version_id=version_id)
        path = Path(path)
        fd, tmp = tempfile.mkstemp(dir=path.parent or ".", prefix=f".{path.name}.", suffix=".part")
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return info

    @abc.abstractmethod
    def head_object(self, bucket: str, key: str, *, version_id: str | None = None) -> ObjectInfo: ...

    @abc.abstractmethod
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
        """One page of ListObjectsV2, keys in ascending UTF-8 byte order."""

    def list_objects(self, bucket: str, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        token = None
        while True:
            page = self.list_objects_page(bucket, prefix, continuation_token=token, start_after=start_after)
            yield from page.objects
            if not page.next_token:
                return
            token = page.next_token

    @abc.abstractmethod
    def delete_object(self, bucket: str, key: str, *, version_id: str | None = None) -> None:
        """Delete (idempotent). Unversioned: the object and its annotations go (R11.3).
        Versioned without version_id: a delete marker; annotations kept (R11.4)."""

    @abc.abstractmethod
    def delete_objects(self, bucket: str, keys: Iterable[str]) -> None:
        """Batch delete (DeleteObjects, up to 1,000 keys a request)."""

    @abc.abstractmethod
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
        """Server-side copy; annotations come along unless ``annotation_directive="EXCLUDE"``."""

    # --- annotations -----------------------------------------------------------------------
    @abc.abstractmethod
    def put_annotation(
        self,
        bucket: str,
        key: str,
        name: str,
        payload: bytes | str,
        *,
        version_id: str | None = None,
        if_match: str | None = None,  # the OBJECT's ETag (ObjectIfMatch), quoted or not
    ) -> AnnotationInfo: ...

    @abc.abstractmethod
    def get_annotation(self, bucket: str, key: str, name: str, *, version_id: str | None = None) -> Annotation: ...

    @abc.abstractmethod
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
        """One page of ListObjectAnnotations, names in ascending UTF-8 byte order."""

    def list_annotations(
        self, bucket: str, key: str, *, prefix: str | None = None, version_id: str | None = None, page_size: int = 1000
    ) -> Iterator[AnnotationInfo]:
        token = None
        while True:
            page = self.list_annotations_page(
                bucket, key, prefix=prefix, version_id=version_id, max_results=page_size, continuation_token=token
            )
            yield from page.annotations
            if not page.next_token:
                return
            token = page.next_token

    @abc.abstractmethod
    def delete_annotation(
        self, bucket: str, key: str, name: str, *, version_id: str | None = None, if_match: str | None = None
    ) -> None:
        """Idempotent: deleting a missing name succeeds (R5.4)."""

    # --- convenience -----------------------------------------------------------------------
    def put_json_annotation(
        self,
        bucket: str,
        key: str,
        name: str,
        obj: Any,
        *,
        version_id: str | None = None,
        if_match: str | None = None,
    ) -> AnnotationInfo:
        """Encode ``obj`` as compact UTF-8 JSON (R7.6) and put it; size checked after encoding."""
        import json

        payload = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8")
        return self.put_annotation(bucket, key, name, payload, version_id=version_id, if_match=if_match)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources (connections, file handles)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
