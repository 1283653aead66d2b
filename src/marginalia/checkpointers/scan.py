"""Reading a thread's listing: ListObjectsV2 pages → checkpoint groups → record entries.

Keys sort newest checkpoint first (see :mod:`.keys`), so one LIST page shows a thread's newest
checkpoints together with their pending writes and any tombstone, and the scan can stop as soon
as it has what it needs. A checkpoint's record is either its own ``c`` object or the ``n`` object
in its *parent's* group (a continuation); the id of an ``n`` record is only known once it is read,
and the writes of that checkpoint sit in its own group, which the scan has already passed (it is
newer), so the scan remembers such record-less groups (``orphans``) to attach them later.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from ..storage.base import ObjectInfo, Store
from .keys import NEXT, RECORD, Layout


@dataclass
class Group:
    """All objects of one checkpoint id in one namespace, as listed."""

    ns_prefix: str
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    inverted: str
    record: ObjectInfo | None = None  # own record "c"
    next: ObjectInfo | None = None  # continuation record "n" (or 0-byte tombstone)
    writes: list[ObjectInfo] = field(default_factory=list)

    @property
    def is_tombstone(self) -> bool:
        return self.next is not None and self.next.size == 0


@dataclass
class Entry:
    """A checkpoint record found by the scan, not yet read."""

    thread_id: str
    checkpoint_ns: str
    ns_prefix: str
    key: str
    kind: str  # RECORD ("c": id known) or NEXT ("n": id known only after reading)
    group_id: str  # id of the group holding the record (the checkpoint itself, or its parent)
    writes: list[ObjectInfo] | None  # known for "c"; for "n" resolved from `orphans` after reading
    guess_writes: list[ObjectInfo] = field(default_factory=list)  # likely writes of an "n" record

    @property
    def known_id(self) -> str | None:
        return self.group_id if self.kind == RECORD else None


class Scan:
    """Iterate the record entries under ``prefix`` newest-first, one namespace after another.

    A tombstone (0-byte ``n``) ends its namespace: everything at or below it was deleted.
    ``orphans`` maps (ns prefix, checkpoint id) to the writes of groups that have no own record.
    """

    def __init__(
        self,
        store: Store,
        layout: Layout,
        prefix: str,
        *,
        start_after: str | None = None,
        first_page: int = 1000,
    ):
        self.store = store
        self.layout = layout
        self.prefix = prefix
        self.start_after = start_after
        self.first_page = first_page
        self.orphans: dict[tuple[str, str], list[ObjectInfo]] = {}
        self.pages = 0
        self.tombstoned: set[str] = set()  # ns prefixes that ended at a tombstone
        self.tombstones: list[Group] = []
        self.listed: list[ObjectInfo] = []  # every object of ours the scan has passed

    def groups(self) -> Iterator[Group]:
        token: str | None = None
        current: Group | None = None
        size = self.first_page
        while True:
            page = self.store.list_objects_page(
                self.layout.bucket,
                self.prefix,
                max_keys=size,
                continuation_token=token,
                start_after=self.start_after if token is None else None,
            )
            self.pages += 1
            for info in page.objects:
                parsed = self.layout.parse(info.key)
                if parsed is None:
                    continue
                self.listed.append(info)
                if current is None or (parsed.ns_prefix, parsed.group) != (current.ns_prefix, current.inverted):
                    if current is not None:
                        yield current
                    current = Group(
                        parsed.ns_prefix, parsed.thread_id, parsed.checkpoint_ns, parsed.checkpoint_id, parsed.group
                    )
                if parsed.kind == RECORD:
                    current.record = info
                elif parsed.kind == NEXT:
                    current.next = info
                else:
                    current.writes.append(info)
            if not page.next_token:
                break
            token = page.next_token
            size = 1000
        if current is not None:
            yield current

    def entries(self) -> Iterator[Entry]:
        last_orphan: dict[str, list[ObjectInfo]] = {}
        for group in self.groups():
            if group.ns_prefix in self.tombstoned:
                continue
            if group.is_tombstone:
                self.tombstoned.add(group.ns_prefix)
                self.tombstones.append(group)
                continue
            if group.next is not None:
                yield Entry(
                    group.thread_id,
                    group.checkpoint_ns,
                    group.ns_prefix,
                    group.next.key,
                    NEXT,
                    group.checkpoint_id,
                    None,
                    guess_writes=last_orphan.pop(group.ns_prefix, []),
                )
            if group.record is not None:
                yield Entry(
                    group.thread_id,
                    group.checkpoint_ns,
                    group.ns_prefix,
                    group.record.key,
                    RECORD,
                    group.checkpoint_id,
                    group.writes,
                )
            elif group.writes:
                self.orphans[(group.ns_prefix, group.checkpoint_id)] = group.writes
                last_orphan[group.ns_prefix] = group.writes

    def writes_of(self, entry: Entry, checkpoint_id: str) -> list[ObjectInfo]:
        if entry.kind == RECORD:
            return entry.writes or []
        return self.orphans.get((entry.ns_prefix, checkpoint_id), [])
