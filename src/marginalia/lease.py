"""Thread leases: at most one worker runs a thread at a time, on any backend, across machines.

The checkpointer already refuses a second writer (conditional writes raise
:class:`~marginalia.errors.ThreadBusy` when another worker advanced the thread first), but by then
the loser may have repeated side effects (an annotation write, a model call). A lease stops the
second worker *before* it runs anything.

A lease is one small JSON object ``<MARGINALIA_STATE>/leases/<thread_id>.json``::

    {"thread_id": ..., "holder": "<host>:<pid>:<random>", "expires_at": <unix seconds>, ...}

* **acquire** — ``PUT`` with ``If-None-Match: *``: exactly one worker creates it. A worker that
  finds a lease that is *expired*, *released*, or held by a process of this host that no longer
  exists (it crashed) takes it over with ``If-Match`` on the ETag it read, so two workers taking
  over the same stale lease cannot both win.
* **renew** — ``PUT`` with ``If-Match`` on the lease's own last ETag (a background thread does this
  every ``ttl / 3`` seconds while the lease is held, so long model calls keep it);
* **release** — ``PUT`` with ``If-Match`` of a released record (``expires_at = 0``), which the next
  worker takes over at once. (A conditional DELETE is not in every S3 API, a conditional PUT is.)

Whoever loses any of these races gets :class:`~marginalia.errors.ThreadBusy`: "thread X is being
run elsewhere". The runtime calls :func:`thread_lease` around preparing *and* driving a run.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from .errors import ObjectNotFound, PreconditionFailed, ThreadBusy
from .settings import current
from .storage.base import (
    Annotation,
    AnnotationDirective,
    AnnotationInfo,
    AnnotationPage,
    Body,
    ObjectInfo,
    ObjectPage,
    Store,
)
from .threads import validate_thread_id
from .uri import S3URI

__all__ = [
    "Lease",
    "LeaseRecord",
    "LeasedStore",
    "break_lease",
    "busy_error",
    "current_holder",
    "holder_id",
    "lease_key",
    "thread_lease",
]


def default_ttl() -> float:
    """Seconds a lease lives without renewal (``MARGINALIA_LEASE_TTL``, read at each lease, not at
    import). A crashed worker's thread is free again after this."""
    return current().lease_ttl


def holder_id() -> str:
    """Who holds a lease: host, process and a random part (two leases of one process differ)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def lease_key(state: S3URI, thread_id: str) -> str:
    return "/".join(p for p in (state.key.strip("/"), "leases", f"{validate_thread_id(thread_id)}.json") if p)


@dataclass(frozen=True)
class LeaseRecord:
    thread_id: str
    holder: str
    expires_at: float  # unix seconds; 0 = released
    acquired_at: float

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at <= (time.time() if now is None else now)

    def local_pid(self) -> int | None:
        """The holder's process id when it runs on this host, else None."""
        host, _, rest = self.holder.partition(":")
        pid = rest.partition(":")[0]
        return int(pid) if host == socket.gethostname() and pid.isdigit() else None

    def holder_alive_here(self) -> bool:
        """True when the holder is a process of this host that still exists."""
        pid = self.local_pid()
        if pid is None:
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except OSError:  # exists, owned by someone else
            return True
        return True

    def holder_gone(self) -> bool:
        """True when the holder was a process of this host that no longer exists (it crashed).

        Its lease need not run out: a worker restarted on the same machine after a crash (or a
        SIGKILL) takes the thread over at once. Holders on other hosts are only trusted to expire.
        """
        pid = self.local_pid()
        return pid is not None and pid != os.getpid() and not self.holder_alive_here()

    def describe(self, now: float | None = None) -> str:
        """``held by H until HH:MM:SS UTC (in 95 s; leases last N s without renewal)``."""
        now = time.time() if now is None else now
        until = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(self.expires_at))
        left = self.expires_at - now
        when = f"in {left:.0f} s" if left > 0 else f"{-left:.0f} s ago"
        return f"held by {self.holder} until {until} ({when})"

    def encode(self) -> bytes:
        return json.dumps(self.__dict__, sort_keys=True).encode("utf-8")

    @classmethod
    def decode(cls, data: bytes) -> LeaseRecord | None:
        """None for an unreadable record (torn by a crash of some other tool): treated as expired."""
        try:
            raw = json.loads(data)
            return cls(str(raw["thread_id"]), str(raw["holder"]), float(raw["expires_at"]), float(raw["acquired_at"]))
        except (ValueError, KeyError, TypeError):
            return None


def read_lease(store: Store, bucket: str, key: str) -> LeaseRecord | None:
    """The lease record stored at ``key`` (None when absent or unreadable)."""
    try:
        data, _ = store.get_object(bucket, key)
    except ObjectNotFound:
        return None
    return LeaseRecord.decode(data)


def busy_error(thread_id: str, uri: str, holder: LeaseRecord | None, ttl: float | None = None) -> ThreadBusy:
    """ "being run elsewhere": who holds the lease, until when, and how to break it."""
    held = holder.describe() if holder is not None else "held by another worker"
    ttl = default_ttl() if ttl is None else ttl
    return ThreadBusy(
        f"thread {thread_id} is being run elsewhere (lease {uri} {held}; leases last {ttl:.0f} s without "
        f"renewal): wait for that run, or if it is dead break the lease with  marginalia threads unlock {thread_id}",
        uri=uri,
    )


def current_holder(store: Store, state: S3URI, thread_id: str) -> LeaseRecord | None:
    """The live lease of ``thread_id`` (a worker is running it now), or None.

    A lease that expired, was released, or whose holder process on this host is gone means no
    worker runs the thread: a thread the index still calls ``running`` was interrupted.
    """
    record = read_lease(store, state.bucket, lease_key(state, thread_id))
    if record is None or record.expired() or record.holder_gone():
        return None
    return record


class Lease:
    """The lease of one thread by one holder. Use :func:`thread_lease` (a context manager)."""

    def __init__(
        self, store: Store, state: S3URI, thread_id: str, *, ttl: float | None = None, holder: str | None = None
    ):
        self.store = store
        self.bucket = state.bucket
        self.key = lease_key(state, thread_id)
        self.thread_id = thread_id
        self.ttl = float(default_ttl() if ttl is None else ttl)
        self.holder = holder or holder_id()
        self.etag: str | None = None
        self.acquired_at = 0.0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost: ThreadBusy | None = None  # set when a renewal found the lease taken
        self.expires_at = 0.0  # the expiry we last wrote

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def _record(self, expires_at: float) -> bytes:
        return LeaseRecord(self.thread_id, self.holder, expires_at, self.acquired_at).encode()

    def _busy(self, other: LeaseRecord | None) -> ThreadBusy:
        if other is None:  # lost a race: name whoever holds it now
            other = read_lease(self.store, self.bucket, self.key)
        return busy_error(self.thread_id, self.uri, other, self.ttl)

    def acquire(self) -> Lease:
        """Create the lease, or take over an expired/released one; ThreadBusy otherwise."""
        self.acquired_at = time.time()
        self.expires_at = self.acquired_at + self.ttl
        body = self._record(self.expires_at)
        try:
            self.etag = self.store.put_object(
                self.bucket, self.key, body, if_none_match=True, content_type="application/json"
            ).etag
            return self
        except PreconditionFailed:
            pass
        try:
            data, info = self.store.get_object(self.bucket, self.key)
        except ObjectNotFound:  # released and removed between our two requests: try once more
            return self._create_or_busy(body)
        current = LeaseRecord.decode(data)
        if current is not None and not current.expired() and not current.holder_gone():
            raise self._busy(current)
        try:  # take over: only if nobody rewrote it since we read it
            self.etag = self.store.put_object(
                self.bucket, self.key, body, if_match=info.etag, content_type="application/json"
            ).etag
        except (PreconditionFailed, ObjectNotFound):
            raise self._busy(None) from None
        return self

    def _create_or_busy(self, body: bytes) -> Lease:
        try:
            self.etag = self.store.put_object(
                self.bucket, self.key, body, if_none_match=True, content_type="application/json"
            ).etag
        except PreconditionFailed:
            raise self._busy(None) from None
        return self

    def renew(self) -> None:
        """Push the expiry ``ttl`` ahead; ThreadBusy if someone took the lease meanwhile."""
        with self._lock:
            if self.etag is None:
                raise self.lost or self._busy(None)
            expires_at = time.time() + self.ttl
            try:
                self.etag = self.store.put_object(
                    self.bucket,
                    self.key,
                    self._record(expires_at),
                    if_match=self.etag,
                    content_type="application/json",
                ).etag
            except (PreconditionFailed, ObjectNotFound):
                self.etag = None
                self.lost = self._busy(None)
                raise self.lost from None
            self.expires_at = expires_at

    def ensure(self) -> None:
        """Raise :class:`ThreadBusy` unless this worker still holds the lease: call it before writing.

        No request while the lease is fresh; once the expiry we wrote has passed (the process was
        frozen, the renewer starved), renew now, which fails if another worker took the thread over.
        """
        if self.lost is not None:
            raise self.lost
        if time.time() >= self.expires_at - self.ttl / 6:
            self.renew()

    def release(self) -> None:
        """Mark the lease released (If-Match), so the next worker takes it at once. Idempotent."""
        self._stop.set()
        if self._renewer is not None and self._renewer is not threading.current_thread():
            self._renewer.join(timeout=5)
        with self._lock:
            if self.etag is None:
                return
            try:
                self.store.put_object(
                    self.bucket, self.key, self._record(0.0), if_match=self.etag, content_type="application/json"
                )
            except (PreconditionFailed, ObjectNotFound):
                pass  # taken over after expiry: nothing of ours to release
            self.etag = None

    def start_renewing(self) -> None:
        """Renew every ``ttl / 3`` seconds in a daemon thread until :meth:`release`."""

        def loop() -> None:
            while not self._stop.wait(self.ttl / 3):
                try:
                    self.renew()
                except ThreadBusy as exc:
                    self.lost = exc
                    return
                except Exception:  # a transient storage error: try again at the next tick
                    continue

        self._renewer = threading.Thread(target=loop, name=f"lease-{self.thread_id}", daemon=True)
        self._renewer.start()


def break_lease(store: Store, state: S3URI, thread_id: str) -> LeaseRecord | None:
    """Release the lease of a dead run (``marginalia threads unlock``); returns the record broken.

    Refused with :class:`ThreadBusy` while the holder is a live process of this host (stop it
    first); a holder on another host cannot be checked from here, so the caller's word is taken.
    None when there was nothing to break (no lease, already released or expired).
    """
    key = lease_key(state, thread_id)
    uri = f"s3://{state.bucket}/{key}"
    try:
        data, info = store.get_object(state.bucket, key)
    except ObjectNotFound:
        return None
    record = LeaseRecord.decode(data)
    if record is not None and record.expires_at == 0:
        return None
    if record is not None and record.holder_alive_here() and not record.expired():
        raise ThreadBusy(
            f"thread {thread_id} is being run by process {record.local_pid()} on this host, which is alive "
            f"(lease {uri} {record.describe()}): stop that process first, or let it finish",
            uri=uri,
        )
    released = LeaseRecord(thread_id, record.holder if record else "unknown", 0.0, record.acquired_at if record else 0)
    try:
        store.put_object(state.bucket, key, released.encode(), if_match=info.etag, content_type="application/json")
    except (PreconditionFailed, ObjectNotFound):
        raise busy_error(thread_id, uri, read_lease(store, state.bucket, key)) from None
    return record


class LeasedStore(Store):
    """A run's view of a store: every write first checks that this worker still holds the thread's
    lease (:meth:`Lease.ensure`: no request while the lease is fresh), so a worker that lost the
    thread to another — its renewer saw it, or it was frozen past the expiry — stops before it writes.
    Reads pass straight through; the lease itself is written through the inner store."""

    def __init__(self, inner: Store, lease: Lease):
        self.inner, self.lease = inner, lease
        self.kind = inner.kind

    def __getattr__(self, attr: str) -> Any:  # backend extras (e.g. S3Store.client, LocalStore.root)
        return getattr(self.inner, attr)

    # --- writes: the lease first --------------------------------------------------------------
    def create_bucket(self, bucket: str, *, versioned: bool = False, exist_ok: bool = True) -> None:
        self.lease.ensure()
        self.inner.create_bucket(bucket, versioned=versioned, exist_ok=exist_ok)

    def put_object(
        self,
        bucket: str,
        key: str,
        body: Body,
        *,
        if_none_match: bool = False,
        if_match: str | None = None,
        content_type: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> ObjectInfo:
        self.lease.ensure()
        return self.inner.put_object(
            bucket,
            key,
            body,
            if_none_match=if_none_match,
            if_match=if_match,
            content_type=content_type,
            metadata=metadata,
        )

    def delete_object(self, bucket: str, key: str, *, version_id: str | None = None) -> None:
        self.lease.ensure()
        self.inner.delete_object(bucket, key, version_id=version_id)

    def delete_objects(self, bucket: str, keys: Iterable[str]) -> None:
        self.lease.ensure()
        self.inner.delete_objects(bucket, keys)

    def copy_object(
        self,
        src_bucket: str,
        src_key: str,
        dst_bucket: str,
        dst_key: str,
        *,
        src_version_id: str | None = None,
        annotation_directive: AnnotationDirective = "COPY",
    ) -> ObjectInfo:
        self.lease.ensure()
        return self.inner.copy_object(
            src_bucket,
            src_key,
            dst_bucket,
            dst_key,
            src_version_id=src_version_id,
            annotation_directive=annotation_directive,
        )

    def put_annotation(
        self,
        bucket: str,
        key: str,
        name: str,
        payload: bytes | str,
        *,
        version_id: str | None = None,
        if_match: str | None = None,
    ) -> AnnotationInfo:
        self.lease.ensure()
        return self.inner.put_annotation(bucket, key, name, payload, version_id=version_id, if_match=if_match)

    def delete_annotation(
        self, bucket: str, key: str, name: str, *, version_id: str | None = None, if_match: str | None = None
    ) -> None:
        self.lease.ensure()
        self.inner.delete_annotation(bucket, key, name, version_id=version_id, if_match=if_match)

    # --- reads: straight through ---------------------------------------------------------------
    def bucket_exists(self, bucket: str) -> bool:
        return self.inner.bucket_exists(bucket)

    def is_versioned(self, bucket: str) -> bool:
        return self.inner.is_versioned(bucket)

    def open_object(
        self, bucket: str, key: str, *, version_id: str | None = None
    ) -> tuple[Iterator[bytes], ObjectInfo]:
        return self.inner.open_object(bucket, key, version_id=version_id)

    def head_object(self, bucket: str, key: str, *, version_id: str | None = None) -> ObjectInfo:
        return self.inner.head_object(bucket, key, version_id=version_id)

    def list_objects_page(
        self,
        bucket: str,
        prefix: str = "",
        *,
        max_keys: int = 1000,
        continuation_token: str | None = None,
        start_after: str | None = None,
        delimiter: str | None = None,
    ) -> ObjectPage:
        return self.inner.list_objects_page(
            bucket,
            prefix,
            max_keys=max_keys,
            continuation_token=continuation_token,
            start_after=start_after,
            delimiter=delimiter,
        )

    def get_annotation(self, bucket: str, key: str, name: str, *, version_id: str | None = None) -> Annotation:
        return self.inner.get_annotation(bucket, key, name, version_id=version_id)

    def list_annotations_page(
        self,
        bucket: str,
        key: str,
        *,
        prefix: str | None = None,
        version_id: str | None = None,
        max_results: int = 1000,
        continuation_token: str | None = None,
    ) -> AnnotationPage:
        return self.inner.list_annotations_page(
            bucket,
            key,
            prefix=prefix,
            version_id=version_id,
            max_results=max_results,
            continuation_token=continuation_token,
        )


@contextmanager
def thread_lease(store: Store, state: S3URI, thread_id: str, *, ttl: float | None = None) -> Iterator[Lease]:
    """Hold the lease of ``thread_id`` for the body of the ``with`` (renewed in the background).

    Raises :class:`~marginalia.errors.ThreadBusy` at entry when another worker holds it. The
    runtime takes it in ``start``/``resume``/``start_or_continue`` and the :class:`~marginalia.runtime.Run`
    holds it until ``drive``/``adrive`` return (``marginalia batch`` runs through those).
    """
    lease = Lease(store, state, thread_id, ttl=ttl).acquire()
    lease.start_renewing()
    try:
        yield lease
    finally:
        lease.release()
