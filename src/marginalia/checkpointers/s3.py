"""``S3Saver``: a LangGraph checkpointer that stores threads as plain objects in a bucket.

Costs (S3 bills by request): ``put`` is one PUT, ``put_writes`` one PUT, and neither lists or
HEADs anything; ``get_tuple`` of a thread's latest checkpoint is one 1-page LIST plus one GET of
the record (its pending writes are fetched in parallel with it), whatever the history length,
because keys sort newest-first (:mod:`.keys`); ``list`` reads N checkpoints with N/1000 LIST pages.

Correctness:

* **Atomic.** A checkpoint (values, versions, metadata, parent) is one object, written in one PUT:
  a crash leaves the previous checkpoint or the new one, never a torn one.
* **Two writers cannot silently overwrite each other.** When this saver continues the checkpoint it
  knows as the thread's head (what the last ``get_tuple`` returned or the last ``put`` wrote, which
  is how LangGraph's loop always runs), the new record goes into the parent's one ``n`` slot with
  ``If-None-Match: *``. A second process advancing the same head loses that race and gets
  :class:`~marginalia.errors.ThreadBusy`. Forks (time travel) and new threads write their own key.
* **Deleted threads stay deleted.** ``delete_thread`` first puts a 0-byte tombstone into the ``n``
  slot of each namespace's head, then batch-deletes everything else. A run still in flight that
  continues that head hits the tombstone (:class:`~marginalia.errors.ThreadDeleted`) and readers
  stop at it, so a late write cannot resurrect the thread; a new run on the same thread id starts
  a fresh chain above it.
* **Pending writes** (one object per ``put_writes`` call): regular writes are first-writer-wins per
  (task, idx) with ``If-None-Match`` (a retry is idempotent; an accumulated list is merged with
  ``If-Match``); a call carrying special writes (ERROR, INTERRUPT, RESUME, ...) gets a time-stamped
  key and the latest one wins for each special channel.

Sync and async share one core: every ``a*`` method runs its sync twin in a worker thread
(``asyncio.to_thread``), so the event loop is never blocked; inside, independent GETs, copies and
deletes run in parallel on a small thread pool.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    BaseCheckpointSaver,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    PendingWrite,
    get_checkpoint_id,
    get_checkpoint_metadata,
    writes_sort_key,
)
from langgraph.checkpoint.serde.base import SerializerProtocol

from ..errors import CheckpointError, InvalidInput, ObjectNotFound, PreconditionFailed, ThreadBusy, ThreadDeleted
from ..storage.base import ObjectInfo, Store
from ..uri import S3URI, parse_uri
from .keys import NEXT, RECORD, REGULAR, SPECIAL, Layout, invert_id, write_stamp
from .records import Record, StoredWrite, WritesObject
from .scan import Entry, Scan
from .serde import CheckpointKeyError, build_serde, with_inner

logger = logging.getLogger(__name__)

SUBDIR = "checkpoints"  # from_uri puts checkpoints under <prefix>/checkpoints/
_HEADS_MAX = 10_000
_DELETE_BATCH = 1000


@dataclass(frozen=True, slots=True)
class _Head:
    checkpoint_id: str
    key: str


@dataclass
class _Loaded:
    entry: Entry
    record: Record
    writes: list[WritesObject]


class S3Saver(BaseCheckpointSaver[str]):
    """Checkpoints in ``s3://bucket/prefix/`` through a :class:`~marginalia.storage.base.Store`.

    ``store`` is any Store (``LocalStore`` for the embedded default, ``S3Store`` for AWS), so the
    same saver is durable with or without an AWS account. ``serde`` is LangGraph's serializer (or
    yours); ``encryption_key`` / ``compress`` add AES-GCM and zstd around it (default: from
    ``MARGINALIA_CHECKPOINT_KEY`` / ``MARGINALIA_CHECKPOINT_COMPRESS``; ``""`` forces off).
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
    ) -> None:
        super().__init__(serde=build_serde(serde, key=encryption_key, compress=compress))
        prefix = prefix.strip("/")
        self.store = store
        self.bucket = bucket
        self.prefix = prefix
        self.layout = Layout(bucket, f"{prefix}/" if prefix else "")
        self.max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._heads: OrderedDict[tuple[str, str], _Head] = OrderedDict()
        self._heads_lock = threading.Lock()

    # --- construction ----------------------------------------------------------------------
    @classmethod
    def from_uri(cls, uri: str | S3URI, *, store: Store | None = None, **kwargs: Any) -> S3Saver:
        """``S3Saver.from_uri("s3://bucket/prefix")``: checkpoints under ``prefix/checkpoints/``.

        ``store`` defaults to :func:`marginalia.config.open_store` (``MARGINALIA_STORE``). On the
        local store the bucket is created if missing (it is a directory); on S3 it must exist.
        """
        from ..config import open_store

        parsed = parse_uri(uri, require_key=False)
        store = store if store is not None else open_store()
        if getattr(store, "kind", None) == "local":
            store.create_bucket(parsed.bucket, exist_ok=True)
        prefix = "/".join(p for p in (parsed.key.strip("/"), SUBDIR) if p)
        return cls(store, parsed.bucket, prefix, **kwargs)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.layout.root}"

    def __repr__(self) -> str:
        return f"S3Saver({self.uri!r}, store={getattr(self.store, 'kind', type(self.store).__name__)})"

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None

    def __enter__(self) -> S3Saver:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    async def __aenter__(self) -> S3Saver:
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await asyncio.to_thread(self.close)

    def with_allowlist(self, extra_allowlist):  # type: ignore[override]
        """Like the base class, but reaching the JSON+msgpack serializer inside our stack."""
        import copy

        from langgraph.checkpoint.base import _with_msgpack_allowlist

        clone = copy.copy(self)
        clone.serde = with_inner(self.serde, lambda inner: _with_msgpack_allowlist(inner, extra_allowlist))
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

    # --- helpers ---------------------------------------------------------------------------
    def _executor(self) -> ThreadPoolExecutor:
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self.max_workers, thread_name_prefix="s3saver")
            return self._pool

    def _parallel(self, fn, items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1:
            return [fn(item) for item in items]
        return list(self._executor().map(fn, items))

    def _get(self, key: str) -> tuple[bytes, ObjectInfo] | None:
        try:
            return self.store.get_object(self.bucket, key)
        except ObjectNotFound:
            return None

    def _where(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def _loads(self, typed: tuple[str, bytes], where: str) -> Any:
        """Deserialize one stored payload; a key problem names the object it was read from."""
        try:
            return self.serde.loads_typed(typed)
        except CheckpointKeyError as exc:
            raise exc.at(where or f"s3://{self.bucket}/{self.prefix}") from None

    def _remember_head(self, thread_id: str, ns: str, head: _Head | None) -> None:
        with self._heads_lock:
            if head is None:
                self._heads.pop((thread_id, ns), None)
                return
            self._heads[(thread_id, ns)] = head
            self._heads.move_to_end((thread_id, ns))
            while len(self._heads) > _HEADS_MAX:
                self._heads.popitem(last=False)

    def _known_head(self, thread_id: str, ns: str) -> _Head | None:
        with self._heads_lock:
            return self._heads.get((thread_id, ns))

    def _forget_thread(self, thread_id: str) -> None:
        with self._heads_lock:
            for k in [k for k in self._heads if k[0] == thread_id]:
                del self._heads[k]

    @staticmethod
    def _ids(config: RunnableConfig) -> tuple[str, str]:
        conf = config.get("configurable") or {}
        thread_id = conf.get("thread_id")
        if thread_id is None or thread_id == "":
            raise InvalidInput("checkpointer config needs configurable.thread_id")
        return str(thread_id), str(conf.get("checkpoint_ns") or "")

    # --- loading ---------------------------------------------------------------------------
    def _load(self, scan: Scan, entries: list[Entry], expect: Mapping[int, str] | None = None) -> list[_Loaded | None]:
        """Read the records of ``entries`` and their writes, all in parallel.

        Writes of continuation records are known only once the record says its id: the scan's
        guess (the newest record-less group before it) is fetched alongside and checked after.
        ``expect`` maps entry index → the checkpoint id the caller wants, used as a better guess.
        """
        expect = expect or {}
        wanted: dict[str, None] = {}
        guesses: list[list[ObjectInfo]] = []
        for i, entry in enumerate(entries):
            wanted[entry.key] = None
            if entry.kind == RECORD:
                guess = entry.writes or []
            elif i in expect:
                guess = scan.orphans.get((entry.ns_prefix, expect[i]), [])
            else:
                guess = entry.guess_writes
            guesses.append(guess)
            for info in guess:
                wanted[info.key] = None
        bodies = dict(zip(wanted, self._parallel(self._get, list(wanted))))
        results: list[_Loaded | None] = []
        missing: dict[str, None] = {}
        pending: list[tuple[int, Record, list[ObjectInfo]]] = []
        for i, entry in enumerate(entries):
            got = bodies.get(entry.key)
            if got is None or got[1].size == 0:
                results.append(None)
                continue
            record = Record.decode(got[0], self._where(entry.key))
            writes = scan.writes_of(entry, record.checkpoint_id)
            for info in writes:
                if bodies.get(info.key) is None:
                    missing[info.key] = None
            pending.append((i, record, writes))
            results.append(None)
        if missing:
            bodies.update(zip(missing, self._parallel(self._get, list(missing))))
        for i, record, writes in pending:
            objs = []
            for info in writes:
                got = bodies.get(info.key)
                if got is not None:
                    objs.append((info, WritesObject.decode(got[0], self._where(info.key))))
            results[i] = _Loaded(entries[i], record, self._merge_writes(objs))
        return results

    @staticmethod
    def _merge_writes(objs: list[tuple[ObjectInfo, WritesObject]]) -> list[WritesObject]:
        """Apply first-writer-wins for regular writes and last-writer-wins for special ones."""

        def order(item: tuple[ObjectInfo, WritesObject]) -> tuple[int, str]:
            kind = item[0].key.rsplit("/", 1)[-1]
            return (0 if kind == REGULAR else 1, kind)

        regular: dict[tuple[str, int], tuple[str, StoredWrite]] = {}
        special: dict[tuple[str, int], tuple[str, StoredWrite]] = {}
        where: dict[str, str] = {}
        for _info, obj in sorted(objs, key=order):
            where.setdefault(obj.task_id, obj.where)
            for w in obj.writes:
                slot = (obj.task_id, w.idx)
                if w.idx >= 0:
                    regular.setdefault(slot, (obj.task_path, w))
                else:
                    special[slot] = (obj.task_path, w)
        merged: dict[str, list[tuple[str, StoredWrite]]] = {}
        for (task_id, _idx), (path, w) in [*regular.items(), *special.items()]:
            merged.setdefault(task_id, []).append((path, w))
        return [
            WritesObject(task_id, items[0][0], tuple(w for _, w in items), where[task_id])
            for task_id, items in merged.items()
        ]

    def _pending(self, writes: list[WritesObject]) -> list[PendingWrite]:
        rows = [(obj.task_path, obj.task_id, w, obj.where) for obj in writes for w in obj.writes]
        rows.sort(key=lambda r: writes_sort_key(r[0], r[1], r[2].idx))
        return [(task_id, w.channel, self._loads(w.value, where)) for _path, task_id, w, where in rows]

    def _tuple(self, loaded: _Loaded, checkpoint: Checkpoint | None = None) -> CheckpointTuple:
        entry, record = loaded.entry, loaded.record
        thread_id, ns = entry.thread_id, entry.checkpoint_ns
        if checkpoint is None:
            checkpoint = self._loads(record.checkpoint, record.where)
        metadata = self._loads(record.metadata, record.where)
        config: RunnableConfig = {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": record.checkpoint_id}
        }
        parent = (
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": record.parent_id}}
            if record.parent_id
            else None
        )
        return CheckpointTuple(config, checkpoint, metadata, parent, self._pending(loaded.writes))

    # --- get_tuple -------------------------------------------------------------------------
    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        thread_id, ns = self._ids(config)
        checkpoint_id = get_checkpoint_id(config)
        loaded = self._find(thread_id, ns, checkpoint_id)
        return self._tuple(loaded) if loaded is not None else None

    def _find(self, thread_id: str, ns: str, checkpoint_id: str | None) -> _Loaded | None:
        ns_prefix = self.layout.ns_prefix(thread_id, ns)
        if checkpoint_id is None:
            scan = Scan(self.store, self.layout, ns_prefix, first_page=100)
            entry = next(iter(scan.entries()), None)
            if entry is None:
                self._remember_head(thread_id, ns, None)
                return None
            loaded = self._load(scan, [entry])[0]
            if loaded is None:  # deleted between LIST and GET
                return None
            self._remember_head(thread_id, ns, _Head(loaded.record.checkpoint_id, entry.key))
            return loaded
        # A known id: its record is its own "c", or the "n" of an older group (its parent's).
        scan = Scan(self.store, self.layout, ns_prefix, start_after=ns_prefix + invert_id(checkpoint_id), first_page=50)
        tried = 0
        for entry in scan.entries():
            if entry.kind == RECORD and entry.group_id != checkpoint_id:
                continue
            loaded = self._load(scan, [entry], expect={0: checkpoint_id})[0]
            if loaded is not None and loaded.record.checkpoint_id == checkpoint_id:
                head = self._known_head(thread_id, ns)
                if head is not None and head.checkpoint_id != checkpoint_id:
                    # Reading an older checkpoint by id: whatever is written next from it is a fork
                    # until a read of the latest says where the head is again.
                    self._remember_head(thread_id, ns, None)
                return loaded
            tried += 1
            if entry.kind == RECORD or tried >= 2:
                return None
        return None

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
        start_after = None
        conf = (config or {}).get("configurable") or {}
        if config is None or conf.get("thread_id") in (None, ""):
            prefix = self.layout.root
        elif conf.get("checkpoint_ns") is None:
            prefix = self.layout.thread_prefix(str(conf["thread_id"]))
        else:
            prefix = self.layout.ns_prefix(str(conf["thread_id"]), str(conf["checkpoint_ns"]))
        only_id = conf.get("checkpoint_id") if config else None
        before_id = get_checkpoint_id(before) if before else None
        if before_id and prefix.endswith("/") and config and conf.get("checkpoint_ns") is not None:
            start_after = prefix + invert_id(before_id) + "0"  # skip the groups >= before
        scan = Scan(self.store, self.layout, prefix, start_after=start_after)
        remaining = limit
        batch: list[Entry] = []
        batch_size = 8 if limit is None else min(max(limit, 1), 32)

        def accept(loaded: _Loaded) -> CheckpointTuple | None:
            cid = loaded.record.checkpoint_id
            if only_id and cid != only_id:
                return None
            if before_id and cid >= before_id:
                return None
            tup = self._tuple(loaded)
            if filter and not all(tup.metadata.get(k) == v for k, v in filter.items()):
                return None
            return tup

        def flush() -> Iterator[CheckpointTuple]:
            nonlocal remaining
            for loaded in self._load(scan, batch):
                if loaded is None:
                    continue
                tup = accept(loaded)
                if tup is None:
                    continue
                yield tup
                if remaining is not None:
                    remaining -= 1
                    if remaining <= 0:
                        return
            batch.clear()

        for entry in scan.entries():
            known = entry.known_id
            if known is not None and ((only_id and known != only_id) or (before_id and known >= before_id)):
                continue
            batch.append(entry)
            if len(batch) >= batch_size:
                yield from flush()
                if remaining is not None and remaining <= 0:
                    return
                batch_size = min(batch_size * 2, 64)
        if batch:
            yield from flush()

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
        )
        body = record.encode()
        head = self._known_head(thread_id, ns)
        if head is not None and head.checkpoint_id == checkpoint_id:
            key = head.key  # the same checkpoint saved again: replace it where it is
            self.store.put_object(self.bucket, key, body, content_type="application/octet-stream")
        elif parent_id and head is not None and head.checkpoint_id == parent_id:
            key = self.layout.next_key(thread_id, ns, parent_id)
            try:
                self.store.put_object(
                    self.bucket, key, body, if_none_match=True, content_type="application/octet-stream"
                )
            except PreconditionFailed:
                self._lost_race(thread_id, ns, parent_id, checkpoint_id, key, body)
        else:
            key = self.layout.record_key(thread_id, ns, checkpoint_id)
            self.store.put_object(self.bucket, key, body, content_type="application/octet-stream")
        self._remember_head(thread_id, ns, _Head(checkpoint_id, key))
        logger.debug("put checkpoint %s of thread %r ns %r (%d bytes)", checkpoint_id, thread_id, ns, len(body))
        return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": checkpoint_id}}

    def _lost_race(self, thread_id: str, ns: str, parent_id: str, checkpoint_id: str, key: str, body: bytes) -> None:
        """The parent's continuation slot is taken: our own retry, a tombstone or another writer."""
        got = self._get(key)
        where = f"thread {thread_id!r}" + (f" (namespace {ns!r})" if ns else "")
        if got is not None and got[1].size == 0:
            self._forget_thread(thread_id)
            raise ThreadDeleted(
                f"{where} was deleted while this run was writing it: checkpoint {checkpoint_id} was not saved "
                f"(tombstone s3://{self.bucket}/{key})",
                uri=self._where(key),
            )
        if got is not None:
            other = Record.decode(got[0], self._where(key))
            if other.checkpoint_id == checkpoint_id:  # a retry of our own PUT: replace it
                self.store.put_object(self.bucket, key, body, if_match=got[1].etag)
                return
            self._remember_head(thread_id, ns, None)
            raise ThreadBusy(
                f"{where} was advanced by another writer: checkpoint {parent_id} already continues to "
                f"{other.checkpoint_id}, so this run's checkpoint {checkpoint_id} was not saved. "
                "Only one run may advance a thread at a time; reload the thread and retry.",
                uri=self._where(key),
            )
        # The slot was freed again (deleted run): try once more, still exclusively.
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
            got = self._get(key)
            if got is None:
                try:
                    self.store.put_object(self.bucket, key, obj.encode(), if_none_match=True)
                    return
                except PreconditionFailed:
                    continue
            existing = WritesObject.decode(got[0], self._where(key))
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
        raise ThreadBusy(f"pending writes {self._where(key)} keep changing under concurrent writers; not saved")

    # --- deleting, copying, pruning --------------------------------------------------------
    def _all_keys(self, prefix: str) -> list[ObjectInfo]:
        return list(self.store.list_objects(self.bucket, prefix))

    def _delete_keys(self, keys: Iterable[str]) -> None:
        keys = list(keys)
        batches = [keys[i : i + _DELETE_BATCH] for i in range(0, len(keys), _DELETE_BATCH)]
        self._parallel(lambda batch: self.store.delete_objects(self.bucket, batch), batches)

    def delete_thread(self, thread_id: str) -> None:
        """Remove every checkpoint and write of the thread, leaving one 0-byte tombstone per namespace.

        The tombstones go first (in the ``n`` slot of each namespace's head): a crash half-way leaves
        a thread that reads as deleted, and a run still writing it cannot bring it back. A second
        listing checks that no write slipped in meanwhile (up to three rounds).
        """
        thread_id = str(thread_id)
        prefix = self.layout.thread_prefix(thread_id)
        self._forget_thread(thread_id)
        for _round in range(3):
            scan = Scan(self.store, self.layout, prefix)
            heads: dict[str, Entry] = {}
            for entry in scan.entries():
                heads.setdefault(entry.ns_prefix, entry)
            if not heads:
                floors = {g.next.key for g in scan.tombstones if g.next is not None}
                self._delete_keys(i.key for i in scan.listed if i.key not in floors)
                return
            unknown = [e for e in heads.values() if e.known_id is None]
            bodies = dict(zip((e.key for e in unknown), self._parallel(lambda e: self._get(e.key), unknown)))
            tombstones: set[str] = set()
            for entry in heads.values():
                head_id = entry.known_id
                if head_id is None:
                    got = bodies.get(entry.key)
                    if got is None or got[1].size == 0:
                        continue
                    head_id = Record.decode(got[0], self._where(entry.key)).checkpoint_id
                tombstones.add(self.layout.next_key(entry.thread_id, entry.checkpoint_ns, head_id))
            self._parallel(lambda k: self.store.put_object(self.bucket, k, b""), sorted(tombstones))
            self._delete_keys(i.key for i in scan.listed if i.key not in tombstones)
        logger.warning("thread %r kept receiving writes while it was being deleted", thread_id)

    def copy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        """Server-side copy of every object of the thread: writes first, then records oldest first,
        so a reader of the target never sees a checkpoint without its pending writes."""
        src = self.layout.thread_prefix(str(source_thread_id))
        dst = self.layout.thread_prefix(str(target_thread_id))
        if src == dst:
            return
        writes: list[str] = []
        records: list[str] = []
        for info in self._all_keys(src):
            parsed = self.layout.parse(info.key)
            if parsed is not None:
                (records if parsed.kind in (RECORD, NEXT) else writes).append(info.key)
        records.sort(reverse=True)  # inverted ids: reverse key order = oldest first

        def copy(key: str) -> None:
            self.store.copy_object(self.bucket, key, self.bucket, dst + key[len(src) :])

        self._parallel(copy, writes)
        self._parallel(copy, records)

    def prune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        """``keep_latest``: keep each namespace's latest checkpoint and its writes (and, for
        ``DeltaChannel`` threads, the ancestors back to each delta channel's last snapshot, so its
        state can still be rebuilt); ``delete``: remove every checkpoint (as ``delete_thread``)."""
        if strategy not in ("keep_latest", "delete"):
            raise InvalidInput(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")
        for thread_id in thread_ids:
            if strategy == "delete":
                self.delete_thread(str(thread_id))
            else:
                self._keep_latest(str(thread_id))

    def _keep_latest(self, thread_id: str) -> None:
        infos = self._all_keys(self.layout.thread_prefix(thread_id))
        parsed = [(i, self.layout.parse(i.key)) for i in infos]
        keep = {i.key for i, p in parsed if p is not None and p.kind == NEXT and i.size == 0}  # tombstones
        for ns in sorted({p.checkpoint_ns for _, p in parsed if p is not None}):
            head = self._find(thread_id, ns, None)
            if head is None:
                continue
            kept = [head]
            metadata = self._loads(head.record.metadata, head.record.where)
            counters = metadata.get("counters_since_delta_snapshot") or {}
            delta_channels = [ch for ch, c in counters.items() if c and any(c)]
            if delta_channels:
                kept.extend(loaded for loaded, _cp in self._ancestors(thread_id, ns, head.record, delta_channels))
            for loaded in kept:
                keep.add(loaded.entry.key)
                group = self.layout.group_prefix(thread_id, ns, loaded.record.checkpoint_id) + "w/"
                keep.update(i.key for i in infos if i.key.startswith(group))
        self._delete_keys(i.key for i in infos if i.key not in keep)

    def delete_for_runs(self, run_ids: Sequence[str]) -> None:
        """Delete every checkpoint whose metadata ``run_id`` is in ``run_ids`` (all threads), with its
        writes. Run ids are in each record's header, so this reads records but deserializes nothing."""
        wanted = {str(r) for r in run_ids}
        if not wanted:
            return
        scan = Scan(self.store, self.layout, self.layout.root)
        entries = list(scan.entries())
        bodies = self._parallel(lambda e: self._get(e.key), entries)
        doomed: list[str] = []
        for entry, got in zip(entries, bodies):
            if got is None or got[1].size == 0:
                continue
            record = Record.decode(got[0], self._where(entry.key))
            if record.run_id in wanted:
                doomed.append(entry.key)
                doomed.extend(i.key for i in scan.writes_of(entry, record.checkpoint_id))
        self._delete_keys(doomed)
        with self._heads_lock:
            self._heads.clear()

    # --- DeltaChannel support --------------------------------------------------------------
    def _ancestors(
        self, thread_id: str, ns: str, start: Record, channels: Sequence[str]
    ) -> Iterator[tuple[_Loaded, Checkpoint]]:
        """The parent chain of ``start`` (excluded), nearest first, until every channel in
        ``channels`` has a stored value or the chain ends. One scan of the namespace listing from
        the start's position; records and writes are read in parallel windows sized by the
        start's ``counters_since_delta_snapshot`` (how many super-steps back the snapshot is)."""
        remaining = set(channels)
        counters = self._loads(start.metadata, start.where).get("counters_since_delta_snapshot") or {}
        depth = max((int(counters[ch][1]) for ch in channels if ch in counters and counters[ch]), default=8)
        size = max(1, min(depth + 1, 32))
        expected = start.parent_id
        if not expected:
            return
        ns_prefix = self.layout.ns_prefix(thread_id, ns)
        scan = Scan(self.store, self.layout, ns_prefix, start_after=ns_prefix + invert_id(start.checkpoint_id) + "0")
        entries = scan.entries()
        found: dict[str, _Loaded] = {}
        exhausted = False
        while expected and remaining:
            if expected not in found:
                if exhausted:
                    return
                window: list[Entry] = []
                while len(window) < size:
                    entry = next(entries, None)
                    if entry is None:
                        exhausted = True
                        break
                    known = entry.known_id
                    if known is not None and known > expected:
                        continue  # an own record newer than the one sought: another branch
                    window.append(entry)
                for loaded in self._load(scan, window):
                    if loaded is not None:
                        found.setdefault(loaded.record.checkpoint_id, loaded)
                size = 8
                continue
            loaded = found.pop(expected)
            checkpoint = self._loads(loaded.record.checkpoint, loaded.record.where)
            yield loaded, checkpoint
            values = checkpoint.get("channel_values") or {}
            remaining -= {ch for ch in remaining if ch in values}
            expected = loaded.record.parent_id

    def get_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        """Writes and seed per delta channel along the parent chain (see the base class contract),
        from one listing scan with records and writes read in parallel windows, not one
        ``get_tuple`` (LIST + GETs) per ancestor."""
        if not channels:
            return {}
        thread_id, ns = self._ids(config)
        target = self._find(thread_id, ns, get_checkpoint_id(config))
        collected: dict[str, list[PendingWrite]] = {c: [] for c in channels}
        seeds: dict[str, Any] = {}
        remaining = set(channels)
        if target is not None:
            for loaded, cp in self._ancestors(thread_id, ns, target.record, channels):
                values = cp.get("channel_values") or {}
                seeded_here = {ch for ch in remaining if ch in values}
                for task_id, ch, value in reversed(self._pending_for(loaded.writes, remaining)):
                    collected[ch].append((task_id, ch, value))
                for ch in seeded_here:
                    seeds[ch] = values[ch]
                remaining -= seeded_here
        result: dict[str, DeltaChannelHistory] = {}
        for ch in channels:
            entry: DeltaChannelHistory = {"writes": list(reversed(collected[ch]))}
            if ch in seeds:
                entry["seed"] = seeds[ch]
            result[ch] = entry
        return result

    def _pending_for(self, writes: list[WritesObject], channels: set[str]) -> list[PendingWrite]:
        rows = [
            (obj.task_path, obj.task_id, w, obj.where) for obj in writes for w in obj.writes if w.channel in channels
        ]
        rows.sort(key=lambda r: writes_sort_key(r[0], r[1], r[2].idx))
        return [(task_id, w.channel, self._loads(w.value, where)) for _path, task_id, w, where in rows]

    # --- async twins: the sync core in a worker thread -------------------------------------
    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return await asyncio.to_thread(self.get_tuple, config)

    async def alist(
        self,
        config: RunnableConfig | None,
        *,
        filter: dict[str, Any] | None = None,
        before: RunnableConfig | None = None,
        limit: int | None = None,
    ) -> AsyncIterator[CheckpointTuple]:
        iterator = self.list(config, filter=filter, before=before, limit=limit)
        done = object()
        while True:
            item = await asyncio.to_thread(next, iterator, done)
            if item is done:
                return
            yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        return await asyncio.to_thread(self.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        await asyncio.to_thread(self.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id: str) -> None:
        await asyncio.to_thread(self.delete_thread, thread_id)

    async def acopy_thread(self, source_thread_id: str, target_thread_id: str) -> None:
        await asyncio.to_thread(self.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids: Sequence[str], *, strategy: str = "keep_latest") -> None:
        await asyncio.to_thread(self.prune, thread_ids, strategy=strategy)

    async def adelete_for_runs(self, run_ids: Sequence[str]) -> None:
        await asyncio.to_thread(self.delete_for_runs, run_ids)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        return await asyncio.to_thread(self.get_delta_channel_history, config=config, channels=channels)


__all__ = ["S3Saver", "CheckpointError"]
