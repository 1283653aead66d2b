"""Whole-thread operations of :class:`~marginalia.checkpointers.S3Saver`: delete, copy, prune, delete runs."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from ..errors import InvalidInput, PreconditionFailed
from ..storage.base import ObjectInfo
from .keys import NEXT, RECORD, ROOT
from .records import Record
from .scan import Entry, Listing, Namespace

if TYPE_CHECKING:
    from .s3 import S3Saver

logger = logging.getLogger(__name__)

_DELETE_BATCH = 1000
_ROUNDS = 5
_CHASE = 10_000  # continuations followed while a run keeps advancing a chain being deleted


def delete_keys(saver: S3Saver, keys: Iterable[str]) -> None:
    keys = list(keys)
    batches = [keys[i : i + _DELETE_BATCH] for i in range(0, len(keys), _DELETE_BATCH)]
    saver.parallel(lambda batch: saver.store.delete_objects(saver.bucket, batch), batches)


def chain_ends(saver: S3Saver, nsv: Namespace) -> list[str]:
    """Ids of the namespace's live checkpoints that no continuation follows (reads it whole)."""
    entries = [*nsv.continuations(), *nsv.live_starts()]
    ids = saver.reader.ids(entries)
    continued = {e.group_id for e in entries if e.kind == NEXT}
    return sorted({ids[e.key] for e in entries if e.key in ids} - continued)


def tombstone(saver: S3Saver, thread_id: str, ns: str, checkpoint_id: str) -> None:
    """A 0-byte record in the ``n`` slot of ``checkpoint_id``, or of whatever now continues it."""
    for _ in range(_CHASE):
        key = saver.layout.next_key(thread_id, ns, checkpoint_id)
        try:
            saver.store.put_object(saver.bucket, key, b"", if_none_match=True)
            return
        except PreconditionFailed:
            got = saver.reader.get(key)
            if got is None:
                continue  # deleted meanwhile: claim it again
            if got[1].size == 0:
                return  # another delete got there first
            checkpoint_id = Record.decode(got[0], saver.where(key)).checkpoint_id  # the run went on: follow
    raise InvalidInput(f"thread {thread_id!r} kept advancing while being deleted; run delete_thread again")


def delete_thread(saver: S3Saver, thread_id: str) -> None:
    """Stop every chain of the thread with a tombstone (conditionally, following chains that advance
    meanwhile), then delete everything else. Readers stop at the newest tombstone, so a crash
    half-way leaves a thread that reads as deleted, and a run still writing it cannot bring it back
    (its next ``put`` meets the tombstone: ``ThreadDeleted``)."""
    prefix = saver.layout.thread_prefix(thread_id)
    saver.knowledge.forget_thread(thread_id)
    for _round in range(_ROUNDS):
        listing = Listing(saver.store, saver.layout, prefix)
        live = 0
        for nsv in listing.namespaces():
            ns = nsv.checkpoint_ns
            ends = chain_ends(saver, nsv)
            live += len(ends)
            for end in ends:
                tombstone(saver, thread_id, ns if ns is not None else _ns_of(saver, nsv), end)
        listed = listing.listed + list(saver.store.list_objects(saver.bucket, prefix))
        delete_keys(saver, {i.key: None for i in listed if not _is_tombstone(saver, i)})
        if not live:
            return
    logger.warning("thread %r kept receiving new chains while it was being deleted", thread_id)


def _is_tombstone(saver: S3Saver, info: ObjectInfo) -> bool:
    parsed = saver.layout.parse(info.key)
    return parsed is not None and parsed.kind == NEXT and info.size == 0


def _ns_of(saver: S3Saver, nsv: Namespace) -> str:
    """The namespace of a hashed namespace segment, from one of its records."""
    for entry in [*nsv.live_starts(), *nsv.continuations()]:
        got = saver.reader.get(entry.key)
        if got is not None and got[1].size:
            return Record.decode(got[0], saver.where(entry.key)).checkpoint_ns or ""
    return ""


def copy_thread(saver: S3Saver, source: str, target: str) -> None:
    """Server-side copy of every object of the thread: writes first, then records oldest first,
    so a reader of the target never sees a checkpoint without its pending writes."""
    src = saver.layout.thread_prefix(source)
    dst = saver.layout.thread_prefix(target)
    if src == dst:
        return
    writes: list[str] = []
    records: list[str] = []
    for info in saver.store.list_objects(saver.bucket, src):
        parsed = saver.layout.parse(info.key)
        if parsed is not None:
            (records if parsed.kind in (RECORD, ROOT, NEXT) else writes).append(info.key)
    records.sort(reverse=True)  # inverted ids: reverse key order = oldest first

    def copy(key: str) -> None:
        saver.store.copy_object(saver.bucket, key, saver.bucket, dst + key[len(src) :])

    saver.parallel(copy, writes)
    saver.parallel(copy, records)


def prune(saver: S3Saver, thread_ids: Sequence[str], strategy: str) -> None:
    """``keep_latest``: keep each namespace's latest checkpoint and its writes (and, for
    ``DeltaChannel`` threads, the ancestors back to each delta channel's last snapshot, so its
    state can still be rebuilt); ``delete``: remove every checkpoint (as ``delete_thread``)."""
    if strategy not in ("keep_latest", "delete"):
        raise InvalidInput(f"unknown prune strategy {strategy!r}: use 'keep_latest' or 'delete'")
    for thread_id in thread_ids:
        if strategy == "delete":
            delete_thread(saver, thread_id)
        else:
            _keep_latest(saver, thread_id)


def _keep_latest(saver: S3Saver, thread_id: str) -> None:
    from .history import ancestors

    infos = list(saver.store.list_objects(saver.bucket, saver.layout.thread_prefix(thread_id)))
    keep = {i.key for i in infos if _is_tombstone(saver, i)}
    parsed = [saver.layout.parse(i.key) for i in infos]
    for ns in sorted({p.checkpoint_ns for p in parsed if p is not None and p.checkpoint_ns is not None}):
        head = saver.find(thread_id, ns, None)
        if head is None:
            continue
        kept = [head]
        metadata = saver.reader.loads(head.record.metadata, head.record.where)
        counters = metadata.get("counters_since_delta_snapshot") or {}
        delta_channels = [ch for ch, c in counters.items() if c and any(c)]
        if delta_channels:
            kept.extend(loaded for loaded, _cp in ancestors(saver, thread_id, ns, head.record, delta_channels))
        for loaded in kept:
            keep.add(loaded.key)
            group = saver.layout.group_prefix(thread_id, ns, loaded.record.checkpoint_id) + "w/"
            keep.update(i.key for i in infos if i.key.startswith(group))
    delete_keys(saver, (i.key for i in infos if i.key not in keep))


def delete_for_runs(saver: S3Saver, run_ids: Sequence[str]) -> None:
    """Delete every checkpoint whose metadata ``run_id`` is in ``run_ids`` (all threads), with its
    writes. Run ids are in each record's header, so this reads records but deserializes nothing."""
    wanted = {str(r) for r in run_ids}
    if not wanted:
        return
    listing = Listing(saver.store, saver.layout, saver.layout.root)
    doomed: list[str] = []
    for nsv in listing.namespaces():
        entries: list[Entry] = [*nsv.continuations(), *nsv.starts]
        bodies = saver.parallel(lambda e: saver.reader.get(e.key), entries)
        for entry, got in zip(entries, bodies, strict=True):
            if got is None or got[1].size == 0:
                continue
            record = Record.decode(got[0], saver.where(entry.key))
            if record.run_id in wanted:
                doomed.append(entry.key)
                doomed.extend(i.key for i in nsv.writes_of(record.checkpoint_id))
    delete_keys(saver, doomed)
    saver.knowledge.forget_all()
