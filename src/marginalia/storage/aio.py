"""``AsyncStore``: async twins of every :class:`~marginalia.storage.base.Store` method.

Every twin runs the synchronous method in a worker thread (``asyncio.to_thread``), so sync and
async callers share one implementation and one set of rules; the Store methods are thread-safe by
contract. The twins are written out with the Store's own signatures, so type checkers see them;
``tests/storage/test_aio.py`` fails if a twin's parameters or return type drift from the Store's.
Listing methods become async iterators that fetch one page per thread hop; ``open_object`` yields
chunks without blocking the event loop. Backend-specific extras (e.g. ``LocalStore.reindex``) are
reachable as awaitables via attribute lookup (typed ``Any``).
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

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


class AsyncStore:
    """Wrap a :class:`Store` for asyncio code (LangGraph async nodes, the async checkpointer)."""

    def __init__(self, store: Store):
        self.store = store

    @property
    def kind(self) -> str:
        return self.store.kind

    # --- buckets ---------------------------------------------------------------------------
    async def create_bucket(self, bucket: str, *, versioned: bool = False, exist_ok: bool = True) -> None:
        return await asyncio.to_thread(self.store.create_bucket, bucket, versioned=versioned, exist_ok=exist_ok)

    async def bucket_exists(self, bucket: str) -> bool:
        return await asyncio.to_thread(self.store.bucket_exists, bucket)

    async def is_versioned(self, bucket: str) -> bool:
        return await asyncio.to_thread(self.store.is_versioned, bucket)

    # --- objects ---------------------------------------------------------------------------
    async def put_object(
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
        return await asyncio.to_thread(
            self.store.put_object,
            bucket,
            key,
            body,
            if_none_match=if_none_match,
            if_match=if_match,
            content_type=content_type,
            metadata=metadata,
        )

    async def get_object(self, bucket: str, key: str, *, version_id: str | None = None) -> tuple[bytes, ObjectInfo]:
        return await asyncio.to_thread(self.store.get_object, bucket, key, version_id=version_id)

    async def download(self, bucket: str, key: str, path: Path, *, version_id: str | None = None) -> ObjectInfo:
        return await asyncio.to_thread(self.store.download, bucket, key, path, version_id=version_id)

    async def head_object(self, bucket: str, key: str, *, version_id: str | None = None) -> ObjectInfo:
        return await asyncio.to_thread(self.store.head_object, bucket, key, version_id=version_id)

    async def list_objects_page(
        self,
        bucket: str,
        prefix: str = "",
        *,
        max_keys: int = 1000,
        continuation_token: str | None = None,
        start_after: str | None = None,
        delimiter: str | None = None,
    ) -> ObjectPage:
        return await asyncio.to_thread(
            self.store.list_objects_page,
            bucket,
            prefix,
            max_keys=max_keys,
            continuation_token=continuation_token,
            start_after=start_after,
            delimiter=delimiter,
        )

    async def delete_object(self, bucket: str, key: str, *, version_id: str | None = None) -> None:
        return await asyncio.to_thread(self.store.delete_object, bucket, key, version_id=version_id)

    async def delete_objects(self, bucket: str, keys: Iterable[str]) -> None:
        return await asyncio.to_thread(self.store.delete_objects, bucket, keys)

    async def copy_object(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        src_version_id: str | None = None,
        annotation_directive: AnnotationDirective = "COPY",
    ) -> ObjectInfo:
        return await asyncio.to_thread(
            self.store.copy_object,
            src_bucket,
            src_key,
            dst_bucket,
            dst_key,
            src_version_id=src_version_id,
            annotation_directive=annotation_directive,
        )

    # --- annotations -----------------------------------------------------------------------
    async def put_annotation(
        self,
        bucket: str,
        key: str,
        name: str,
        payload: bytes | str,
        *,
        version_id: str | None = None,
        if_match: str | None = None,
    ) -> AnnotationInfo:
        return await asyncio.to_thread(
            self.store.put_annotation, bucket, key, name, payload, version_id=version_id, if_match=if_match
        )

    async def put_json_annotation(
        self,
        bucket: str,
        key: str,
        name: str,
        obj: Any,
        *,
        version_id: str | None = None,
        if_match: str | None = None,
    ) -> AnnotationInfo:
        return await asyncio.to_thread(
            self.store.put_json_annotation, bucket, key, name, obj, version_id=version_id, if_match=if_match
        )

    async def get_annotation(self, bucket: str, key: str, name: str, *, version_id: str | None = None) -> Annotation:
        return await asyncio.to_thread(self.store.get_annotation, bucket, key, name, version_id=version_id)

    async def list_annotations_page(
        self,
        bucket: str,
        key: str,
        *,
        prefix: str | None = None,
        version_id: str | None = None,
        max_results: int = 1000,
        continuation_token: str | None = None,
    ) -> AnnotationPage:
        return await asyncio.to_thread(
            self.store.list_annotations_page,
            bucket,
            key,
            prefix=prefix,
            version_id=version_id,
            max_results=max_results,
            continuation_token=continuation_token,
        )

    async def delete_annotation(
        self, bucket: str, key: str, name: str, *, version_id: str | None = None, if_match: str | None = None
    ) -> None:
        return await asyncio.to_thread(
            self.store.delete_annotation, bucket, key, name, version_id=version_id, if_match=if_match
        )

    async def close(self) -> None:
        return await asyncio.to_thread(self.store.close)

    # --- streams and listings --------------------------------------------------------------
    async def open_object(
        self, bucket: str, key: str, *, version_id: str | None = None
    ) -> tuple[AsyncIterator[bytes], ObjectInfo]:
        """Stream an object: each chunk is read in a worker thread."""
        chunks, info = await asyncio.to_thread(self.store.open_object, bucket, key, version_id=version_id)
        return _aiter_in_thread(chunks), info

    async def list_objects(
        self, bucket: str, prefix: str = "", *, start_after: str | None = None
    ) -> AsyncIterator[ObjectInfo]:
        token = None
        while True:
            page = await asyncio.to_thread(
                self.store.list_objects_page, bucket, prefix, continuation_token=token, start_after=start_after
            )
            for info in page.objects:
                yield info
            if not page.next_token:
                return
            token = page.next_token

    async def list_annotations(
        self, bucket: str, key: str, *, prefix: str | None = None, version_id: str | None = None, page_size: int = 1000
    ) -> AsyncIterator[AnnotationInfo]:
        token = None
        while True:
            page = await asyncio.to_thread(
                self.store.list_annotations_page,
                bucket,
                key,
                prefix=prefix,
                version_id=version_id,
                max_results=page_size,
                continuation_token=token,
            )
            for info in page.annotations:
                yield info
            if not page.next_token:
                return
            token = page.next_token

    def __getattr__(self, name: str) -> Any:
        """Backend extras (``reindex``, ``gc``, ``set_versioning``...) as awaitable twins."""
        if name.startswith("_"):
            raise AttributeError(name)
        target = getattr(self.store, name)
        if not callable(target):
            return target

        @functools.wraps(target)
        async def twin(*args: Any, **kwargs: Any) -> Any:
            return await asyncio.to_thread(getattr(self.store, name), *args, **kwargs)

        return twin

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.store.close)


async def _aiter_in_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    while (chunk := await asyncio.to_thread(_next_or_none, chunks)) is not None:
        yield chunk


def _next_or_none(chunks: Iterator[bytes]) -> bytes | None:
    return next(chunks, None)
