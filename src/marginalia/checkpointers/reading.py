"""Reading checkpoints: records and their pending writes, in checkpoint-id order, with few requests.

A namespace with one chain start is one chain, so its continuation records sort as their ids do
and the newest continuation is the latest checkpoint (one LIST page and one GET, its writes fetched
beside it). A namespace with several starts (forks) is ordered by reading its records' ids (cached
per saver, since a record never changes once written).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import Checkpoint, CheckpointTuple, PendingWrite, writes_sort_key

from ..errors import ObjectNotFound
from ..storage.base import ObjectInfo
from .keys import NEXT, RECORD, REGULAR, invert_id
from .records import Record, StoredWrite, WritesObject
from .scan import Entry, Listing, Namespace
from .serde import CheckpointKeyError

if TYPE_CHECKING:
    from .s3 import S3Saver


@dataclass
class Loaded:
    entry: Entry
    record: Record
    writes: list[WritesObject]
    thread_id: str
    checkpoint_ns: str

    @property
    def key(self) -> str:
        return self.entry.key


def metadata_matches(metadata: Mapping[str, Any], filter: Mapping[str, Any] | None) -> bool:
    return not filter or all(metadata.get(k) == v for k, v in filter.items())


def merge_writes(objs: list[tuple[ObjectInfo, WritesObject]]) -> list[WritesObject]:
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


class Reader:
    """The read paths of one saver: latest, by id, listing; records and writes fetched in parallel."""

    def __init__(self, saver: S3Saver):
        self.saver = saver

    # --- objects ---------------------------------------------------------------------------
    def get(self, key: str) -> tuple[bytes, ObjectInfo] | None:
        try:
            return self.saver.store.get_object(self.saver.bucket, key)
        except ObjectNotFound:
            return None

    def loads(self, typed: tuple[str, bytes], where: str) -> Any:
        """Deserialize one stored payload; a key problem names the object it was read from."""
        try:
            return self.saver.serde.loads_typed(typed)
        except CheckpointKeyError as exc:
            raise exc.at(where or self.saver.uri) from None

    def load(
        self,
        nsv: Namespace,
        entries: Sequence[Entry],
        guesses: Sequence[Sequence[ObjectInfo]] | None = None,
        *,
        with_writes: bool = True,
    ) -> list[Loaded | None]:
        """Read the records of ``entries`` and their writes, in parallel.

        A continuation's writes are known only once its record says its id: ``guesses`` (or the
        cached id) let them be fetched beside the record; what was missed is fetched after."""
        wanted: dict[str, None] = {}
        for i, entry in enumerate(entries):
            wanted[entry.key] = None
            if not with_writes:
                continue
            known = entry.known_id or self._cached_id(entry)
            guess = nsv.writes_of(known) if known else (guesses[i] if guesses else [])
            for info in guess:
                wanted[info.key] = None
        bodies = dict(zip(wanted, self.saver.parallel(self.get, builtins_list(wanted)), strict=True))
        records: list[Record | None] = []
        for entry in entries:
            got = bodies.get(entry.key)
            if got is None or got[1].size == 0:
                records.append(None)
                continue
            record = Record.decode(got[0], self.saver.where(entry.key))
            self.saver.knowledge.remember_id(entry.key, got[1].etag, record.checkpoint_id, record.parent_id)
            records.append(record)
        loaded = [
            Loaded(entry, record, [], *self._names(nsv, record)) if record is not None else None
            for entry, record in zip(entries, records, strict=True)
        ]
        if with_writes:
            self.attach_writes(nsv, [x for x in loaded if x is not None], bodies)
        return loaded

    def attach_writes(
        self, nsv: Namespace, loaded: Sequence[Loaded], bodies: dict[str, tuple[bytes, ObjectInfo] | None] | None = None
    ) -> None:
        bodies = bodies if bodies is not None else {}
        lists = [nsv.writes_of(x.record.checkpoint_id) for x in loaded]
        missing = list({i.key: None for infos in lists for i in infos if i.key not in bodies})
        bodies.update(zip(missing, self.saver.parallel(self.get, missing), strict=True))
        for x, infos in zip(loaded, lists, strict=True):
            objs = []
            for info in infos:
                got = bodies.get(info.key)
                if got is not None:
                    objs.append((info, WritesObject.decode(got[0], self.saver.where(info.key))))
            x.writes = merge_writes(objs)

    def _names(self, nsv: Namespace, record: Record) -> tuple[str, str]:
        thread = nsv.thread_id if nsv.thread_id is not None else record.thread_id
        ns = nsv.checkpoint_ns if nsv.checkpoint_ns is not None else record.checkpoint_ns
        return str(thread), str(ns or "")

    def _cached_id(self, entry: Entry) -> str | None:
        got = self.saver.knowledge.record_id(entry.key, entry.info.etag)
        return got[0] if got else None

    def ids(self, entries: Sequence[Entry]) -> dict[str, str]:
        """key → checkpoint id of each entry (cached, else read in parallel); deleted ones left out."""
        out: dict[str, str] = {}
        unknown: list[Entry] = []
        for entry in entries:
            known = entry.known_id or self._cached_id(entry)
            if known:
                out[entry.key] = known
            else:
                unknown.append(entry)
        for entry, got in zip(unknown, self.saver.parallel(lambda e: self.get(e.key), unknown), strict=True):
            if got is not None and got[1].size:
                record = Record.decode(got[0], self.saver.where(entry.key))
                self.saver.knowledge.remember_id(entry.key, got[1].etag, record.checkpoint_id, record.parent_id)
                out[entry.key] = record.checkpoint_id
        return out

    # --- tuples ----------------------------------------------------------------------------
    def pending(self, writes: list[WritesObject], channels: set[str] | None = None) -> list[PendingWrite]:
        rows = [
            (obj.task_path, obj.task_id, w, obj.where)
            for obj in writes
            for w in obj.writes
            if channels is None or w.channel in channels
        ]
        rows.sort(key=lambda r: writes_sort_key(r[0], r[1], r[2].idx))
        return [(task_id, w.channel, self.loads(w.value, where)) for _path, task_id, w, where in rows]

    def tuple(self, loaded: Loaded, checkpoint: Checkpoint | None = None) -> CheckpointTuple:
        record = loaded.record
        thread_id, ns = loaded.thread_id, loaded.checkpoint_ns
        if checkpoint is None:
            checkpoint = self.loads(record.checkpoint, record.where)
        metadata = self.loads(record.metadata, record.where)
        config: RunnableConfig = {
            "configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": record.checkpoint_id}
        }
        parent: RunnableConfig | None = (
            {"configurable": {"thread_id": thread_id, "checkpoint_ns": ns, "checkpoint_id": record.parent_id}}
            if record.parent_id
            else None
        )
        return CheckpointTuple(config, checkpoint, metadata, parent, self.pending(loaded.writes))

    # --- latest ----------------------------------------------------------------------------
    def latest(self, nsv: Namespace) -> Loaded | None:
        """The highest checkpoint id among the namespace's live records."""
        if len(nsv.live_starts()) <= 1:
            # One chain: its newest continuation is its end (guess: the writes of the newest
            # record-less group above it, which in one chain are the end's own).
            above: list[ObjectInfo] = []
            for group in nsv.groups():
                if group.next is None:
                    above = group.writes or above
                    continue
                entry = Entry(group.next, NEXT, group.checkpoint_id)
                loaded = self.load(nsv, [entry], [above])[0]
                if loaded is not None:
                    return loaded
            starts = nsv.live_starts()
            if len(starts) <= 1:
                if not starts:
                    return None
                return self.load(nsv, starts, [[]])[0]
        return self._newest_of_all(nsv)

    def _newest_of_all(self, nsv: Namespace) -> Loaded | None:
        entries = [*nsv.continuations(), *nsv.live_starts()]
        ids = self.ids(entries)
        if not ids:
            return None
        best = max((e for e in entries if e.key in ids), key=lambda e: ids[e.key])
        return self.load(nsv, [best])[0]

    # --- by id -----------------------------------------------------------------------------
    def _from(self, thread_id: str, ns: str, checkpoint_id: str, first_page: int) -> Namespace:
        """The namespace's starts, and its groups from ``checkpoint_id`` down: two LISTs side by side."""
        layout, store = self.saver.layout, self.saver.store
        ns_prefix = layout.ns_prefix(thread_id, ns)
        starts = Listing(store, layout, layout.starts_prefix(thread_id, ns))
        below = Listing(
            store, layout, ns_prefix, start_after=ns_prefix + invert_id(checkpoint_id), first_page=first_page
        )
        self.saver.parallel(lambda listing: listing.peek(), [starts, below])
        start_entries = []
        while starts.peek() is not None:
            info, parsed = starts.pop()
            start_entries.append(Entry(info, parsed.kind, parsed.checkpoint_id))
        return Namespace(below, ns_prefix, thread_id, ns, starts=start_entries)

    def by_id(self, thread_id: str, ns: str, checkpoint_id: str) -> Loaded | None:
        """A checkpoint's record: a chain start of its own, or its parent's continuation (the nearest
        continuation below it in one chain, further down after forks), or the root."""
        nsv = self._from(thread_id, ns, checkpoint_id, 50)
        own = nsv.writes_of(checkpoint_id)
        fork = [e for e in nsv.starts if e.kind == RECORD and e.group_id == checkpoint_id]
        if fork:
            return self.load(nsv, fork)[0]
        window: list[Entry] = []
        size = 1
        for entry in nsv.continuations():
            if entry.group_id >= checkpoint_id:
                continue
            cached = self._cached_id(entry)
            if cached is not None and cached != checkpoint_id:
                continue
            window.append(entry)
            if len(window) >= size:
                found = self._pick(nsv, window, own, checkpoint_id)
                if found is not None:
                    return found
                window, size = [], 8
        roots = [e for e in nsv.starts if e.kind != RECORD]
        return self._pick(nsv, window + roots, own, checkpoint_id)

    def _pick(self, nsv: Namespace, window: list[Entry], own: list[ObjectInfo], checkpoint_id: str) -> Loaded | None:
        if not window:
            return None
        one = len(window) == 1  # the likely one: its writes are fetched beside it
        for loaded in self.load(nsv, window, [own] * len(window), with_writes=one):
            if loaded is not None and loaded.record.checkpoint_id == checkpoint_id:
                if not one:
                    self.attach_writes(nsv, [loaded])
                return loaded
        return None

    # --- list ------------------------------------------------------------------------------
    def listing(
        self, conf: Mapping[str, Any], filter: Mapping[str, Any] | None, before_id: str | None, limit: int | None
    ) -> Iterator[CheckpointTuple]:
        layout = self.saver.layout
        thread, ns = conf.get("thread_id"), conf.get("checkpoint_ns")
        if thread in (None, ""):
            prefix = layout.root
        elif ns is None:
            prefix = layout.thread_prefix(str(thread))
        else:
            prefix = layout.ns_prefix(str(thread), str(ns))
        first_page = 1000 if limit is None else min(1000, 8 + 4 * limit)
        if before_id and thread not in (None, "") and ns is not None:
            # Groups at or above `before` hold only newer records (a continuation is newer than the
            # group it sits in): list the starts, and the groups from `before` down, side by side.
            namespaces: Iterator[Namespace] = iter([self._from(str(thread), str(ns), before_id, first_page)])
        else:
            namespaces = Listing(self.saver.store, layout, prefix, first_page=first_page).namespaces()
        remaining = limit
        for nsv in namespaces:
            for tup in self._namespace(nsv, filter, before_id, remaining):
                yield tup
                if remaining is not None:
                    remaining -= 1
                    if remaining <= 0:
                        return

    def _namespace(
        self, nsv: Namespace, filter: Mapping[str, Any] | None, before_id: str | None, limit: int | None
    ) -> Iterator[CheckpointTuple]:
        if len(nsv.live_starts()) <= 1:
            ordered: Iterator[Entry] = self._one_chain(nsv)
        else:
            entries = [*nsv.continuations(), *nsv.live_starts()]
            ids = self.ids(entries)
            ordered = iter(sorted((e for e in entries if e.key in ids), key=lambda e: ids[e.key], reverse=True))
        batch: list[Entry] = []
        # With a limit, each batch is what is still wanted (+2 for the record of `before` and its
        # child, which a listing from `before` meets first); without, batches grow to 64.
        left = limit
        size = 8 if limit is None else min(limit + (2 if before_id else 0), 64)
        for entry in ordered:
            known = entry.known_id or self._cached_id(entry)
            if before_id and known is not None and known >= before_id:
                continue
            batch.append(entry)
            if len(batch) >= size:
                for tup in self._emit(nsv, batch, filter, before_id):
                    yield tup
                    left = None if left is None else left - 1
                batch = []
                size = min(size * 2, 64) if left is None else min(max(left, 1), 64)
        if batch:
            yield from self._emit(nsv, batch, filter, before_id)

    def _one_chain(self, nsv: Namespace) -> Iterator[Entry]:
        yield from nsv.continuations()
        yield from nsv.live_starts()

    def _emit(
        self, nsv: Namespace, batch: list[Entry], filter: Mapping[str, Any] | None, before_id: str | None
    ) -> Iterator[CheckpointTuple]:
        loaded = [
            x
            for x in self.load(nsv, batch, with_writes=not filter)
            if x is not None and not (before_id and x.record.checkpoint_id >= before_id)
        ]
        if filter:  # metadata first: only the matches' writes are fetched
            loaded = [x for x in loaded if metadata_matches(self.loads(x.record.metadata, x.record.where), filter)]
            self.attach_writes(nsv, loaded)
        for x in loaded:
            yield self.tuple(x)


def builtins_list(items: Mapping[str, None]) -> list[str]:
    return list(items)
