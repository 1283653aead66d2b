"""``DeltaChannel`` support: the parent chain of a checkpoint, read in parallel windows."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import Checkpoint, DeltaChannelHistory, PendingWrite, get_checkpoint_id

from .keys import invert_id
from .reading import Loaded
from .records import Record
from .scan import Entry, Listing, Namespace

if TYPE_CHECKING:
    from .s3 import S3Saver


def ancestors(
    saver: S3Saver, thread_id: str, ns: str, start: Record, channels: Sequence[str]
) -> Iterator[tuple[Loaded, Checkpoint]]:
    """The parent chain of ``start`` (excluded), nearest first, until every channel in ``channels``
    has a stored value or the chain ends. One scan of the namespace listing from the start's
    position; records and writes are read in parallel windows sized by the start's
    ``counters_since_delta_snapshot`` (how many super-steps back the snapshot is). Chain starts
    (a fork or the root) are listed only when the walk reaches one."""
    reader = saver.reader
    remaining = set(channels)
    counters = reader.loads(start.metadata, start.where).get("counters_since_delta_snapshot") or {}
    depth = max((int(counters[ch][1]) for ch in channels if ch in counters and counters[ch]), default=8)
    size = max(1, min(depth + 1, 32))
    expected = start.parent_id
    if not expected:
        return
    ns_prefix = saver.layout.ns_prefix(thread_id, ns)
    listing = Listing(
        saver.store, saver.layout, ns_prefix, start_after=ns_prefix + invert_id(start.checkpoint_id) + "0"
    )
    nsv = Namespace(listing, ns_prefix, thread_id, ns)
    entries = nsv.continuations()
    found: dict[str, Loaded] = {}
    exhausted = starts_read = False
    while expected and remaining:
        if expected not in found:
            if exhausted:
                if starts_read:
                    return
                starts_read = True
                window = _starts(saver, thread_id, ns)
            else:
                window = []
                while len(window) < size:
                    entry = next(entries, None)
                    if entry is None:
                        exhausted = True
                        break
                    if entry.group_id < expected:
                        window.append(entry)
            for loaded in reader.load(nsv, window):
                if loaded is not None:
                    found.setdefault(loaded.record.checkpoint_id, loaded)
            size = 8
            continue
        loaded = found.pop(expected)
        checkpoint = reader.loads(loaded.record.checkpoint, loaded.record.where)
        yield loaded, checkpoint
        values = checkpoint.get("channel_values") or {}
        remaining -= {ch for ch in remaining if ch in values}
        expected = loaded.record.parent_id


def _starts(saver: S3Saver, thread_id: str, ns: str) -> list[Entry]:
    listing = Listing(saver.store, saver.layout, saver.layout.starts_prefix(thread_id, ns))
    out = []
    while listing.peek() is not None:
        info, parsed = listing.pop()
        out.append(Entry(info, parsed.kind, parsed.checkpoint_id))
    return out


def delta_channel_history(
    saver: S3Saver, config: RunnableConfig, channels: Sequence[str]
) -> Mapping[str, DeltaChannelHistory]:
    """Writes and seed per delta channel along the parent chain (see the base class contract),
    from one listing scan with records and writes read in parallel windows, not one
    ``get_tuple`` (LIST + GETs) per ancestor."""
    if not channels:
        return {}
    thread_id, ns = saver._ids(config)
    target = saver.find(thread_id, ns, get_checkpoint_id(config))
    collected: dict[str, list[PendingWrite]] = {c: [] for c in channels}
    seeds: dict[str, Any] = {}
    remaining = set(channels)
    if target is not None:
        for loaded, cp in ancestors(saver, thread_id, ns, target.record, channels):
            values = cp.get("channel_values") or {}
            seeded_here = {ch for ch in remaining if ch in values}
            for task_id, ch, value in reversed(saver.reader.pending(loaded.writes, remaining)):
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


__all__ = ["ancestors", "delta_channel_history"]
