"""Reading a thread's listing: ListObjectsV2 pages → namespaces → chain starts and groups.

Keys sort newest checkpoint first (see :mod:`.keys`). Each namespace lists its *starts* first
(forks and the root slot: where chains begin), then one *group* per checkpoint id, newest first:
its continuation record ``n`` (the record of its child, or a 0-byte tombstone) and its pending
writes. A tombstone ends the namespace: everything at or below it was deleted, and so were starts
older than it. Pages are read lazily, so a reader that needs the newest checkpoint stops after one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..storage.base import ObjectInfo, Store
from .keys import NEXT, RECORD, Layout, ParsedKey, invert_id


@dataclass
class Group:
    """The objects of one checkpoint id in one namespace, as listed (not its own record)."""

    checkpoint_id: str
    inverted: str
    next: ObjectInfo | None = None  # the child's record, or a 0-byte tombstone
    writes: list[ObjectInfo] = field(default_factory=list)

    @property
    def is_tombstone(self) -> bool:
        return self.next is not None and self.next.size == 0


@dataclass
class Entry:
    """A checkpoint record found by the scan, not yet read."""

    info: ObjectInfo
    kind: str  # RECORD (a fork start: id known), ROOT (root slot) or NEXT (continuation of group_id)
    group_id: str  # RECORD: its id; NEXT: its parent's id; ROOT: the generation's tombstone ("" first)

    @property
    def key(self) -> str:
        return self.info.key

    @property
    def known_id(self) -> str | None:
        return self.group_id if self.kind == RECORD else None


class Listing:
    """Lazy ListObjectsV2 pages of ``prefix`` as parsed keys, with one key of look-ahead."""

    def __init__(self, store: Store, layout: Layout, prefix: str, *, start_after: str | None = None, first_page=1000):
        self.store, self.layout, self.prefix = store, layout, prefix
        self.start_after = start_after
        self.size = first_page
        self.token: str | None = None
        self.done = False
        self.pages = 0
        self.buffer: list[tuple[ObjectInfo, ParsedKey]] = []
        self.listed: list[ObjectInfo] = []  # every object of ours passed so far

    def _fill(self) -> None:
        while not self.buffer and not self.done:
            page = self.store.list_objects_page(
                self.layout.bucket,
                self.prefix,
                max_keys=self.size,
                continuation_token=self.token,
                start_after=self.start_after if self.token is None else None,
            )
            self.pages += 1
            for info in page.objects:
                parsed = self.layout.parse(info.key)
                if parsed is not None:
                    self.buffer.append((info, parsed))
                    self.listed.append(info)
            self.buffer.reverse()
            self.token = page.next_token
            self.done = not page.next_token
            self.size = 1000

    def peek(self) -> tuple[ObjectInfo, ParsedKey] | None:
        self._fill()
        return self.buffer[-1] if self.buffer else None

    def pop(self) -> tuple[ObjectInfo, ParsedKey]:
        self._fill()
        return self.buffer.pop()

    def namespaces(self) -> Iterator[Namespace]:
        while (head := self.peek()) is not None:
            ns = Namespace(self, head[1].ns_prefix, head[1].thread_id, head[1].checkpoint_ns)
            yield ns
            ns.drain()


class Namespace:
    """One namespace of a listing: its starts (read at once; they come first), then its groups lazily."""

    def __init__(
        self,
        listing: Listing,
        ns_prefix: str,
        thread_id: str | None,
        checkpoint_ns: str | None,
        *,
        starts: list[Entry] | None = None,
    ):
        self.listing = listing
        self.ns_prefix = ns_prefix
        self.thread_id = thread_id
        self.checkpoint_ns = checkpoint_ns
        self.starts: list[Entry] = list(starts or [])
        self.tombstone: str | None = None  # id of the tombstone that ended the namespace, once reached
        self.ended = False
        self.writes: dict[str, list[ObjectInfo]] = {}
        self._seen: list[Group] = []
        self._position: str | None = None  # inverted id of the last group passed
        while (head := self._own()) is not None and head[1].start:
            info, parsed = listing.pop()
            self.starts.append(Entry(info, parsed.kind, parsed.checkpoint_id))

    def _own(self) -> tuple[ObjectInfo, ParsedKey] | None:
        head = self.listing.peek()
        return head if head is not None and head[1].ns_prefix == self.ns_prefix else None

    def _next_group(self) -> Group | None:
        if self.ended:
            return None
        head = self._own()
        while head is not None and head[1].start:  # a start listed late (only with start_after)
            self.listing.pop()
            head = self._own()
        if head is None:
            self.ended = True
            return None
        group = Group(head[1].checkpoint_id, head[1].group)
        while (head := self._own()) is not None and not head[1].start and head[1].group == group.inverted:
            info, parsed = self.listing.pop()
            if parsed.kind == NEXT:
                group.next = info
            else:
                group.writes.append(info)
        self._position = group.inverted
        if group.is_tombstone:
            self.tombstone = group.checkpoint_id
            self.ended = True
            self.drain()
            return None
        if group.writes:
            self.writes[group.checkpoint_id] = group.writes
        self._seen.append(group)
        return group

    def groups(self) -> Iterator[Group]:
        """Groups newest first, down to (not including) the first tombstone; may be iterated again."""
        i = 0
        while True:
            if i < len(self._seen):
                yield self._seen[i]
                i += 1
                continue
            if self._next_group() is None:
                return

    def continuations(self) -> Iterator[Entry]:
        for group in self.groups():
            if group.next is not None:
                yield Entry(group.next, NEXT, group.checkpoint_id)

    def writes_of(self, checkpoint_id: str) -> list[ObjectInfo]:
        """The pending writes of a checkpoint, listing on until its group's position is passed."""
        target = invert_id(checkpoint_id)
        while not self.ended and (self._position is None or self._position <= target):
            if self._next_group() is None:
                break
        return self.writes.get(checkpoint_id, [])

    def drain(self) -> None:
        while self._own() is not None:
            self.listing.pop()
        self.ended = True

    def live_starts(self) -> list[Entry]:
        """Starts that may be live: the newest root slot (older ones belong to deleted generations),
        and forks newer than its generation's tombstone; once the namespace is read to its end, also
        none at or below the tombstone that ended it."""
        roots = [e for e in self.starts if e.kind != RECORD]
        floor = roots[0].group_id if roots else ""
        if self.tombstone is not None:
            floor = max(floor, self.tombstone)
        live = [e for e in self.starts if e.kind == RECORD and e.group_id > floor]
        if roots and (roots[0].group_id or "") >= (self.tombstone or ""):
            live.append(roots[0])
        return live
