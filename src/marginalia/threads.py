"""A small index of agent threads, so ``marginalia threads [--pending]`` is one listing.

Checkpoints tell everything about a thread but reading them means one GET per checkpoint and
deserialising channel values. The index keeps one small JSON object per thread under
``MARGINALIA_STATE/threads/<thread_id>.json``, rewritten at the three moments that change what a
person needs to know: when a run starts, when it stops at an approval interrupt, and when it ends
(done, rejected or failed). It is advisory: the checkpoint stays the source of truth for resuming.

Updates are compare-and-swap: :meth:`ThreadIndex.update` reads the record and its ETag and writes
with ``If-Match``, reading again when another worker wrote in between, so two writers never lose
each other's change; and a finished thread (done or rejected) never goes back to ``failed`` — a
worker that lost the thread to another (a lease takeover) cannot undo the winner's result.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Literal, get_args

from .errors import ConflictRetry, InvalidInput, ObjectNotFound, PreconditionFailed
from .storage.base import Store
from .uri import S3URI

Status = Literal["running", "waiting", "done", "failed", "interrupted", "rejected", "expired"]
STATUSES: tuple[Status, ...] = get_args(Status)
PENDING: tuple[Status, ...] = ("waiting",)
#: A thread that reached its end: an update never turns its record into "failed".
FINISHED: tuple[Status, ...] = ("done", "rejected")
_CAS_ATTEMPTS = 20

_THREAD_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def validate_thread_id(thread_id: str) -> str:
    """Thread ids become S3 keys: letters, digits, ``. _ : -``, at most 128 characters."""
    if not isinstance(thread_id, str) or not _THREAD_ID_RE.match(thread_id):
        raise InvalidInput(
            f"invalid thread id {thread_id!r}: use 1-128 letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit"
        )
    return thread_id


def as_status(value: str | None, *, default: Status) -> Status:
    """``value`` when it names a :data:`Status` (text read back from elsewhere), else ``default``."""
    for status in STATUSES:
        if value == status:
            return status
    return default


def utcnow() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


@dataclass
class ThreadRecord:
    thread_id: str
    agent: str
    object_uri: str
    status: Status
    updated_at: str = field(default_factory=utcnow)
    created_at: str = field(default_factory=utcnow)
    trace_id: str | None = None
    error: str | None = None
    graph_module: str | None = None  # module whose import registers the agent (resume in a new process)
    engine: str | None = None  # engine spec the thread was started with ("offline", "bedrock:<id>")
    #: The run failed on input that will not change by retrying (bad file, unsupported object):
    #: ``resume`` would fail the same way, so the thread is not offered for it.
    permanent: bool = False

    @property
    def resumable(self) -> bool:
        return self.status == "failed" and not self.permanent

    @property
    def age(self) -> dt.timedelta:
        return dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(self.updated_at)

    @classmethod
    def from_json(cls, data: dict) -> ThreadRecord:
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        return cls(**known)


def _encode(record: ThreadRecord) -> bytes:
    return json.dumps(asdict(record), ensure_ascii=False, sort_keys=True).encode("utf-8")


class ThreadIndex:
    """The ``threads/`` folder of the state location, read and written through a :class:`Store`."""

    def __init__(self, store: Store, state: S3URI):
        self.store = store
        self.state = state  # the state location the index lives in (archives and leases go beside it)
        self.bucket = state.bucket
        self.prefix = "/".join(p for p in (state.key.strip("/"), "threads") if p) + "/"

    def _key(self, thread_id: str) -> str:
        return f"{self.prefix}{validate_thread_id(thread_id)}.json"

    def put(self, record: ThreadRecord) -> ThreadRecord:
        """Write ``record`` whole (a new thread, or one re-created under its lease)."""
        self.store.put_object(
            self.bucket, self._key(record.thread_id), _encode(record), content_type="application/json"
        )
        return record

    def _read(self, thread_id: str) -> tuple[ThreadRecord, str] | None:
        try:
            data, info = self.store.get_object(self.bucket, self._key(thread_id))
        except ObjectNotFound:
            return None
        return ThreadRecord.from_json(json.loads(data)), info.etag

    def get(self, thread_id: str) -> ThreadRecord | None:
        found = self._read(thread_id)
        return found[0] if found else None

    def update(self, thread_id: str, **changes) -> ThreadRecord | None:
        """Rewrite the record with ``changes`` and a fresh ``updated_at``, conditionally (If-Match on
        the ETag read); None if unknown. A finished record is returned unchanged when ``changes``
        would turn it into ``failed`` or ``interrupted``."""
        for _attempt in range(_CAS_ATTEMPTS):
            found = self._read(thread_id)
            if found is None:
                return None
            record, etag = found
            if record.status in FINISHED and changes.get("status") in ("failed", "interrupted"):
                return record
            for name, value in changes.items():
                setattr(record, name, value)
            record.updated_at = utcnow()
            try:
                self.store.put_object(
                    self.bucket, self._key(thread_id), _encode(record), if_match=etag, content_type="application/json"
                )
            except (PreconditionFailed, ObjectNotFound):
                continue  # another worker wrote (or deleted) it since we read it: read again
            return record
        raise ConflictRetry(f"thread record {self.bucket}/{self._key(thread_id)} kept changing under the update; retry")

    def __iter__(self) -> Iterator[ThreadRecord]:
        if not self.store.bucket_exists(self.bucket):
            return
        for info in self.store.list_objects(self.bucket, self.prefix):
            if not info.key.endswith(".json"):
                continue
            try:
                data, _ = self.store.get_object(self.bucket, info.key)
            except ObjectNotFound:  # deleted between list and get
                continue
            yield ThreadRecord.from_json(json.loads(data))

    def list(self, *, pending: bool = False) -> list[ThreadRecord]:
        """Threads, most recently updated first; ``pending`` keeps those waiting for approval."""
        records = [r for r in self if not pending or r.status in PENDING]
        return sorted(records, key=lambda r: r.updated_at, reverse=True)
