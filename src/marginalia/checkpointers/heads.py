"""What one saver instance knows, kept in memory: each thread's head, and the ids of records read.

* **Heads.** The checkpoint this process last read as a namespace's latest or last wrote there. A
  ``put`` whose parent is that head continues the chain in the parent's ``n`` slot (If-None-Match:
  a second writer loses); a namespace read as empty remembers the root slot to claim instead.
* **Record ids.** A continuation's checkpoint id is known only once its record is read; records
  never change in place (their slot is written once), so ``(key, ETag) → (id, parent)`` is cached
  and a forked namespace is ordered again without reading its records twice.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

_HEADS_MAX = 10_000
_IDS_MAX = 200_000


@dataclass(frozen=True, slots=True)
class Head:
    checkpoint_id: str  # "" = the namespace was read as empty: a root claims ``key``
    key: str


class Knowledge:
    """Thread-safe LRU maps of heads and of record ids."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._heads: OrderedDict[tuple[str, str], Head] = OrderedDict()
        self._ids: OrderedDict[tuple[str, str], tuple[str, str | None]] = OrderedDict()

    def head(self, thread_id: str, ns: str) -> Head | None:
        with self._lock:
            return self._heads.get((thread_id, ns))

    def remember(self, thread_id: str, ns: str, head: Head | None) -> None:
        with self._lock:
            if head is None:
                self._heads.pop((thread_id, ns), None)
                return
            self._heads[(thread_id, ns)] = head
            self._heads.move_to_end((thread_id, ns))
            while len(self._heads) > _HEADS_MAX:
                self._heads.popitem(last=False)

    def forget_thread(self, thread_id: str) -> None:
        with self._lock:
            for k in [k for k in self._heads if k[0] == thread_id]:
                del self._heads[k]

    def forget_all(self) -> None:
        with self._lock:
            self._heads.clear()

    def record_id(self, key: str, etag: str) -> tuple[str, str | None] | None:
        with self._lock:
            return self._ids.get((key, etag))

    def remember_id(self, key: str, etag: str, checkpoint_id: str, parent_id: str | None) -> None:
        with self._lock:
            self._ids[(key, etag)] = (checkpoint_id, parent_id)
            while len(self._ids) > _IDS_MAX:
                self._ids.popitem(last=False)
