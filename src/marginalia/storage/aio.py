"""``AsyncStore``: async twins of every :class:`~marginalia.storage.base.Store` method.

Every twin is generated here from the method's name and runs the synchronous method in a worker
thread (``asyncio.to_thread``), so sync and async callers share one implementation and one set of
rules; the Store methods are thread-safe by contract. Listing methods become async iterators that
fetch one page per thread hop; ``open_object`` yields chunks without blocking the event loop.
Backend-specific extras (e.g. ``LocalStore.reindex``) are reachable the same way via attribute lookup.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from .base import AnnotationInfo, ObjectInfo, Store

#: Store methods that return a value (not an iterator): each gets an awaitable twin.
BLOCKING_METHODS = (
    "create_bucket",
    "bucket_exists",
    "is_versioned",
    "put_object",
    "get_object",
    "download",
    "head_object",
    "list_objects_page",
    "delete_object",
    "delete_objects",
    "copy_object",
    "put_annotation",
    "put_json_annotation",
    "get_annotation",
    "list_annotations_page",
    "delete_annotation",
    "close",
)


def _async_twin(name: str, sync: Callable[..., Any] | None = None) -> Callable[..., Any]:
    """An ``async def`` that runs ``self.store.<name>`` in a thread, with the sync method's docs."""

    async def twin(self: AsyncStore, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(getattr(self.store, name), *args, **kwargs)

    twin.__name__ = twin.__qualname__ = name
    template = sync if sync is not None else getattr(Store, name, None)
    if template is not None:
        twin.__doc__ = template.__doc__
        twin.__wrapped__ = template  # inspect.signature shows the real parameters
    return twin


class AsyncStore:
    """Wrap a :class:`Store` for asyncio code (LangGraph async nodes, the async checkpointer)."""

    def __init__(self, store: Store):
        self.store = store

    @property
    def kind(self) -> str:
        return self.store.kind

    for _name in BLOCKING_METHODS:
        locals()[_name] = _async_twin(_name)
    del _name

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
        return functools.partial(_async_twin(name, target), self)

    async def __aenter__(self) -> AsyncStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self.store.close)


async def _aiter_in_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    sentinel = object()
    while (chunk := await asyncio.to_thread(next, chunks, sentinel)) is not sentinel:
        yield chunk
