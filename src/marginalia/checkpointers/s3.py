"""``S3Saver``: a LangGraph checkpointer that stores threads as plain objects in a bucket.

Costs (S3 bills by request): ``put`` is one PUT, ``put_writes`` one PUT, and neither lists or
HEADs anything; ``get_tuple`` of a thread's latest checkpoint is one 1-page LIST plus one GET of
the record (its pending writes are fetched in parallel with it), whatever the history length,
because keys sort newest-first (:mod:`.keys`); ``list`` reads N checkpoints with N/1000 LIST pages.
A *forked* namespace (several chain starts: time travel, or writers that did not read the thread)
is read whole to order it by checkpoint id; record ids are cached (:mod:`.heads`).

Correctness, with any number of writers (processes) on one thread:

* **Atomic.** A checkpoint (values, versions, metadata, parent) is one object, written in one PUT.
* **Two writers cannot silently overwrite or fork each other.** When this saver continues the
  checkpoint it knows as the head (what the last ``get_tuple`` returned or the last ``put`` wrote,
  which is how LangGraph's loop runs), the record goes into the parent's one ``n`` slot with
  ``If-None-Match: *``; when it read the namespace as empty, the root goes into the namespace's
  root slot the same way. The second writer gets :class:`~marginalia.errors.ThreadBusy`.
  Forks (time travel) write a chain start of their own.
* **Order.** Latest and ``list`` follow checkpoint ids, whatever the interleaving of writers.
* **Deleted threads stay deleted.** ``delete_thread`` puts a 0-byte tombstone, conditionally, into
  the ``n`` slot of every chain end (following a chain that advanced meanwhile), then deletes the
  rest. A run in flight hits the tombstone (:class:`~marginalia.errors.ThreadDeleted`).
* **Pending writes** (one object per ``put_writes`` call): regular writes are first-writer-wins per
  (task, idx) with ``If-None-Match``; special writes (ERROR, INTERRUPT, RESUME, ...) get a
  time-stamped key and the latest one wins for each special channel.

Sync and async share one core: every ``a*`` method runs its sync twin in a worker thread of the
saver's own (:meth:`S3Saver.off_loop`), never the event loop's default executor: ``graph.astream``
runs the step's sync nodes there, so a chunk's ``aput_writes`` queued behind the chunks not yet
started, and a crash lost every finished chunk of a fan-out (issue 17).
"""

from __future__ import annotations

import asyncio
import builtins
import contextvars
import functools
import logging
import random
import threading
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from ..errors import CheckpointError, InvalidInput, PreconditionFailed, ThreadBusy, ThreadDeleted
from ..settings import current
from ..storage.base import Store
from ..uri import S3URI, parse_uri
from . import history, maintenance
from .heads import Head, Knowledge
from .keys import REGULAR, SPECIAL, Layout, invert_id, write_stamp
from .reading import Loaded, Reader, metadata_matches
from .records import Record, StoredWrite, WritesObject
from .scan import Listing, Namespace
from .serde import build_serde, with_inner, with_msgpack_allowlist

logger = logging.getLogger(__name__)

SUBDIR = "checkpoints"  # from_uri puts checkpoints under <prefix>/checkpoints/
_T = TypeVar("_T")
_R = TypeVar("_R")


class S3Saver(BaseCheckpointSaver[str]):
    """Checkpoints in ``s3://bucket/prefix/`` through a :class:`~marginalia.storage.base.Store`.

    ``store`` is any Store (``LocalStore`` for the embedded default, ``S3Store`` for AWS), so the
    same saver is durable with or without an AWS account. ``serde`` is LangGraph's serializer (or
    yours); ``encryption_key`` / ``compress`` add AES-GCM and zstd around it (default: from
    ``MARGINALIA_CHECKPOINT_KEY`` / ``MARGINALIA_CHECKPOINT_COMPRESS``; ``""`` forces off).
    Use it as a context manager (``with S3Saver.from_uri("s3://b/p") as saver:``) to close its pool.
    """

    def __init__(
        self,
        store: Store,
        bucket: str,
        prefix: str = "",
        *,
        serde: SerializerProtocol | None = None,
        encryption_key: str | bytes | None = None,
        compress: str | None = None,
        max_workers: int = 8,
        async_workers: int = 32,
    ) -> None:
        super().__init__(serde=build_serde(serde, key=encryption_key, compress=compress))
        prefix = prefix.strip("/")
        self.store = store
        self.bucket = bucket
        self.prefix = prefix
        self.layout = Layout(bucket, f"{prefix}/" if prefix else "")
        self.max_workers = max_workers
        self.async_workers = async_workers
        self._pool: ThreadPoolExecutor | None = None
        self._async_pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self.knowledge = Knowledge()
        self.reader = Reader(self)
        self._owns_store = False

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def from_uri(cls, uri: str | S3URI, *, store: Store | str | None = None, **kwargs: Any) -> S3Saver:
        """``S3Saver.from_uri("s3://bucket/prefix")``: checkpoints under ``prefix/checkpoints/``.

        ``store`` is a Store, or a spec (``"local:DIR"``, ``"s3"``) opened here and closed with the
        saver; without one, ``MARGINALIA_STORE`` names it (an error if neither is given). On the
        local store the bucket is created if missing (it is a directory); on S3 it must exist::

            with S3Saver.from_uri("s3://bucket/prefix", store="local:/tmp/buckets") as saver:
                graph = builder.compile(checkpointer=saver)
        """
        from ..errors import ConfigurationError
        from ..storage import open_store

        parsed = uri if isinstance(uri, S3URI) else parse_uri(uri, require_key=False)
        if store is None:
            settings = current()
            store = settings.store if "store" in settings.model_fields_set else None
            if not store:
                raise ConfigurationError(
                    f"S3Saver.from_uri({str(uri)!r}): give store= (a Store, 'local:DIR' or 's3') or set MARGINALIA_STORE"
                )
        owned = not isinstance(store, Store)
        opened = store if isinstance(store, Store) else open_store(store)
        if getattr(opened, "kind", None) == "local":
            opened.create_bucket(parsed.bucket, exist_ok=True)
        prefix = "/".join(p for p in (parsed.key.strip("/"), SUBDIR) if p)
        saver = cls(opened, parsed.bucket, prefix, **kwargs)
        saver._owns_store = owned
        return saver

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.layout.root}"

    def __repr__(self) -> str:
        return f"S3Saver({self.uri!r}, store={getattr(self.store, 'kind', type(self.store).__name__)})"

    def close(self) -> None:
        """Stop the saver's thread pools; close the store too if :meth:`from_uri` opened it."""
        with self._pool_lock:
            pools, self._pool, self._async_pool = (self._pool, self._async_pool), None, None
        for pool in pools:
            if pool is not None:
                pool.shutdown(wait=True)
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> S3Saver:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> S3Saver:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.to_thread(self.close)  # not off_loop: close() shuts that pool down

    def with_allowlist(self, extra_allowlist: Collection[tuple[str, ...]]) -> S3Saver:
        """Like the base class, but reaching the JSON+msgpack serializer inside our stack."""
        import copy

        clone = copy.copy(self)
        clone.serde = with_inner(self.serde, lambda inner: with_msgpack_allowlist(inner, extra_allowlist))
        return clone

    def get_next_version(self, current: str | None, channel: None) -> str:
        """Zero-padded, so versions compare as strings too (as InMemorySaver/SqliteSaver do)."""
        if current is None:
            current_v = 0
        elif isinstance(current, int):
            current_v = current
        else:
            current_v = int(str(current).split(".")[0])
        return f"{current_v + 1:032}.{random.random():016}"

    # --- helpers shared by the modules of the saver -----------------------------------------
    def parallel(self, fn: Callable[[_T], _R], items: Sequence[_T]) -> builtins.list[_R]:
        """``fn`` over ``items`` on the saver's small thread pool (in order; inline for one item)."""
        if len(items) <= 1:
            return [fn(item) for item in items]
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="s3saver")
            pool = self._pool
        return builtins.list(pool.map(fn, items))

    async def off_loop(self, fn: Callable[..., _R], /, *args: Any, **kwargs: Any) -> _R:
        """``fn(*args, **kwargs)`` in a thread of the saver's own pool for the async twins (with the
        caller's context variables, like ``asyncio.to_thread``).

        Not the loop's default executor: LangGraph's ``astream`` runs a step's sync nodes there (one
        task per chunk of a fan-out), and a save queued behind them waited until every chunk had
        started, so a crash lost the chunks already finished. The pool is separate from
        :meth:`parallel`'s, which a save may use from inside this one. It is as wide as a burst of
        finished chunks (``async_workers``, 32): with 8, fast chunks on a loaded machine queued
        their saves here behind other saves, not yet handed to the store (the sync path hands each
        to the store at once, where the local store writes them one at a time).
        """
        with self._pool_lock:
            if self._async_pool is None:
                self._async_pool = ThreadPoolExecutor(max_workers=self.async_workers, thread_name_prefix="s3saver-io")
            pool = self._async_pool
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(pool, call)

    def where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    @staticmethod
    def _ids(config: RunnableConfig) -> tuple[str, str]:
        conf = config.get("configurable") or {}
        thread_id = conf.get("thread_id")
        if thread_id is None or thread_id == "":
            raise InvalidInput("checkpointer config needs configurable.thread_id")
        return str(thread_id), str(conf.get("checkpoint_ns") or "")

    def _describe(self, thread_id: str, ns: str) -> str:
        return f"thread {thread_id!r}" + (f" (namespace {ns!r})" if ns else "")

    # --- get_tuple -------------------------------------------------------------------------
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, ns = self._ids(config)
        loaded = self.find(thread_id, ns, get_checkpoint_id(config))
        return self.reader.tuple(loaded) if loaded is not None else None

    def find(self, thread_id: str, ns: str, checkpoint_id: str | None) -> Loaded | None:
        """The namespace's latest checkpoint, or the one with ``checkpoint_id``; and remember the head."""
        if checkpoint_id is None:
            return self._latest(thread_id, ns)
        loaded = self.reader.by_id(thread_id, ns, checkpoint_id)
        head = self.knowledge.head(thread_id, ns)
        if loaded is not None and head is not None and head.checkpoint_id != checkpoint_id:
            # Reading an older checkpoint by id: whatever is written next from it is a fork until a
            # read of the latest says where the head is again.
            self.knowledge.remember(thread_id, ns, None)
        return loaded

    def _latest(self, thread_id: str, ns: str) -> Loaded | None:
        listing = Listing(self.store, self.layout, self.layout.ns_prefix(thread_id, ns), first_page=100)
        nsv = Namespace(listing, self.layout.ns_prefix(thread_id, ns), thread_id, ns)
        loaded = self.reader.latest(nsv)
        if loaded is None:
            root = self.layout.root_key(thread_id, ns, nsv.tombstone)
            self.knowledge.remember(thread_id, ns, Head("", root))
            return None
        self.knowledge.remember(thread_id, ns, Head(loaded.record.checkpoint_id, loaded.key))
        return loaded

    # --- list ------------------------------------------------------------------------------
    def list(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> Iterator[CheckpointTuple]:
        """Checkpoints newest first (per thread and namespace), LangGraph's ``list`` contract."""
        if limit is not None and limit <= 0:
            return
        conf = (config or {}).get("configurable") or {}
        only_id = conf.get("checkpoint_id") if config else None
        before_id = get_checkpoint_id(before) if before else None
        if config is not None and only_id:  # one checkpoint by id: a lookup, not a listing
            if conf.get("checkpoint_ns") is not None:
                found = self.get_tuple(config)
                matches = [found] if found is not None else []
            else:
                everywhere = self.list({"configurable": {"thread_id": conf["thread_id"]}})
                matches = [t for t in everywhere if t.config["configurable"]["checkpoint_id"] == only_id]
            for tup in matches[:limit]:
                if (not before_id or only_id < before_id) and metadata_matches(tup.metadata, filter):
                    yield tup
            return
        yield from self.reader.listing(conf, filter, before_id, limit)

    # --- put -------------------------------------------------------------------------------
    def put(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        thread_id, ns = self._ids(config)
        parent_id = config["configurable"].get("checkpoint_id")
        checkpoint_id = checkpoint["id"]
        md = get_checkpoint_metadata(config, metadata)
        record = Record(
            checkpoint_id,
            parent_id,
            md.get("run_id") if isinstance(md.get("run_id"), str) else None,
            self.serde.dumps_typed(checkpoint),
            self.serde.dumps_typed(md),
            thread_id,
            ns,
        )
        body = record.encode()
        head = self.knowledge.head(thread_id, ns)
        if head is not None and head.checkpoint_id == checkpoint_id:
            key = head.key  # the same checkpoint saved again: replace it where it is
            self.store.put_object(self.bucket, key, body, content_type="application/octet-stream")
        elif head is not None and (head.checkpoint_id == parent_id or (not parent_id and head.checkpoint_id == "")):
            # Continuing the head this saver knows (or starting the namespace it read as empty):
            # claim the one slot, exclusively.
            key = head.key if not parent_id else self.layout.next_key(thread_id, ns, parent_id)
            try:
                self.store.put_object(
                    self.bucket, key, body, if_none_match=True, content_type="application/octet-stream"
                )
            except PreconditionFailed:
                self._lost_race(thread_id, ns, parent_id, checkpoint_id, key, body)
        else:
            key = self.layout.start_key(thread_id, ns, checkpoint_id)
            self.store.put_object(self.bucket, key, body, content_type="application/octet-stream")
        self.knowledge.remember(thread_id, ns, Head(checkpoint_id, key))
        logger.debug("put checkpoint %s of thread %r ns %r (%d bytes)", checkpoint_id, thread_id, ns, len(body))
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}

    def _lost_race(
        self, thread_id: str, ns: str, parent_id: str | None, checkpoint_id: str, key: str, body: bytes
    ) -> None:
        """The slot is taken: our own retry, a tombstone or another writer."""
        got = self.reader.get(key)
        where = self._describe(thread_id, ns)
        if got is not None and got[1].size == 0:
            self.knowledge.forget_thread(thread_id)
            raise ThreadDeleted(
                f"{where} was deleted while this run was writing it: checkpoint {checkpoint_id} was not saved "
                f"(tombstone {self.where(key)})",
                uri=self.where(key),
            )
        if got is not None:
            other = Record.decode(got[0], self.where(key))
            if other.checkpoint_id == checkpoint_id:  # a retry of our own PUT: replace it
                self.store.put_object(self.bucket, key, body, if_match=got[1].etag)
                return
            self.knowledge.remember(thread_id, ns, None)
            if not parent_id:
                raise ThreadBusy(
                    f"{where} was started by another writer at the same time (its first checkpoint is "
                    f"{other.checkpoint_id}), so this run's checkpoint {checkpoint_id} was not saved. "
                    "Only one run may advance a thread at a time; reload the thread and retry.",
                    uri=self.where(key),
                )
            raise ThreadBusy(
                f"{where} was advanced by another writer: checkpoint {parent_id} already continues to "
                f"{other.checkpoint_id}, so this run's checkpoint {checkpoint_id} was not saved. "
                "Only one run may advance a thread at a time; reload the thread and retry.",
                uri=self.where(key),
            )
        # The slot was freed again (a deleted run or thread): try once more, still exclusively.
        try:
            self.store.put_object(self.bucket, key, body, if_none_match=True)
        except PreconditionFailed:
            raise ThreadBusy(
                f"{where} is being advanced by another writer; checkpoint {checkpoint_id} was not saved"
            ) from None

    # --- put_writes ------------------------------------------------------------------------
    def put_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        if not writes:
            return
        thread_id, ns = self._ids(config)
        checkpoint_id = config["configurable"].get("checkpoint_id")
        if not checkpoint_id:
            raise InvalidInput(f"put_writes for thread {thread_id!r} needs configurable.checkpoint_id")
        stored = tuple(
            StoredWrite(WRITES_IDX_MAP.get(channel, idx), channel, self.serde.dumps_typed(value))
            for idx, (channel, value) in enumerate(writes)
        )
        obj = WritesObject(str(task_id), task_path or "", stored)
        if any(w.idx < 0 for w in stored):
            key = self.layout.writes_key(thread_id, ns, checkpoint_id, str(task_id), SPECIAL + write_stamp())
            self.store.put_object(self.bucket, key, obj.encode())
            return
        key = self.layout.writes_key(thread_id, ns, checkpoint_id, str(task_id), REGULAR)
        try:
            self.store.put_object(self.bucket, key, obj.encode(), if_none_match=True)
        except PreconditionFailed:
            self._merge_regular(key, obj)

    def _merge_regular(self, key: str, obj: WritesObject) -> None:
        """First writer wins per (task, idx): add only the indexes not stored yet (If-Match loop)."""
        for _ in range(8):
            got = self.reader.get(key)
            if got is None:
                try:
                    self.store.put_object(self.bucket, key, obj.encode(), if_none_match=True)
                    return
                except PreconditionFailed:
                    continue
            existing = WritesObject.decode(got[0], self.where(key))
            have = {w.idx for w in existing.writes}
            extra = tuple(w for w in obj.writes if w.idx not in have)
            if not extra:
                return  # a retry: idempotent
            merged = WritesObject(existing.task_id, existing.task_path, existing.writes + extra)
            try:
                self.store.put_object(self.bucket, key, merged.encode(), if_match=got[1].etag)
                return
            except PreconditionFailed:
                continue
        raise ThreadBusy(f"pending writes {self.where(key)} keep changing under concurrent writers; not saved")

    # --- maintenance and DeltaChannel history (their own modules) ---------------------------
    def delete_thread(self, thread_id: str) -> None:
        maintenance.delete_thread(self, str(thread_id))

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        maintenance.copy_thread(self, str(source_thread_id), str(target_thread_id))

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        maintenance.prune(self, [str(t) for t in thread_ids], strategy)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        maintenance.delete_for_runs(self, run_ids)

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return history.delta_channel_history(self, config, channels)

    # --- async twins: the sync core in a thread of the saver's own (off_loop) ----------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await self.off_loop(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        iterator = self.list(config, filter=filter, before=before, limit=limit)
        while (item := await self.off_loop(_next_or_none, iterator)) is not None:
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await self.off_loop(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await self.off_loop(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await self.off_loop(self.delete_thread, thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await self.off_loop(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await self.off_loop(self.prune, thread_ids, strategy=strategy)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await self.off_loop(self.delete_for_runs, run_ids)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await self.off_loop(self.get_delta_channel_history, config=config, channels=channels)


def _next_or_none(iterator: Iterator[CheckpointTuple]) -> CheckpointTuple | None:
    return next(iterator, None)


__all__ = ["S3Saver", "CheckpointError", "invert_id"]
