"""The catalogue of a local store as its methods see it: one SQLite connection a thread (a new one
after a fork), read snapshots that never wait for a writer, and ``BEGIN IMMEDIATE`` write
transactions (threads of this process queue on a lock; other processes on SQLite's) whose
garbage blobs are removed only after commit. Failures come out as one-line
:class:`~marginalia.errors.StoreUnusable` / :class:`~marginalia.errors.TransientError` errors.

:class:`CatalogueAccess` is the base of :class:`~marginalia.storage.local.LocalStore`, which sets
the attributes it declares.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import StoreUnusable, TransientError
from . import catalogue, sidecars
from .local_blobs import BlobFiles

__all__ = ["CatalogueAccess", "Transaction"]


@dataclass
class Transaction:
    """What a write transaction created and made garbage: blobs to remove after commit/rollback."""

    conn: sqlite3.Connection
    new_blobs: list[str] = field(default_factory=list)
    garbage_blobs: list[str] = field(default_factory=list)
    garbage_annotations: list[tuple[str, str]] = field(default_factory=list)  # (blob, name) sidecars

    def next_sequence(self) -> str:
        """The store-wide monotonic 20-digit sequence number (spec R17.4)."""
        (value,) = self.conn.execute(
            "UPDATE meta SET value = value + 1 WHERE name = 'sequence' RETURNING value"
        ).fetchone()
        return f"{value:020d}"


class CatalogueAccess:
    """Connections and transactions on the catalogue of the local store at ``root``."""

    root: Path
    blobs: BlobFiles
    _durable: bool
    _local: threading.local
    _connections: list[sqlite3.Connection]
    _connections_lock: threading.Lock
    _write_lock: threading.Lock
    #: Why writes are refused: a read-only filesystem or permission (reads still work), or None.
    read_only: str | None
    #: What the integrity check found wrong with the catalogue (reads work, writes refused), or None.
    damaged: str | None

    @property
    def catalog_path(self) -> Path:
        """The SQLite catalogue holding the ``annotation`` and ``journal`` tables."""
        return self.root / catalogue.CATALOG_NAME

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection (a new one after a fork: SQLite handles must not cross processes)."""
        pid = os.getpid()
        held = getattr(self._local, "conn", None)
        if held is not None and held[0] == pid:
            return held[1]
        conn = catalogue.connect(self.catalog_path, read_only=bool(self.read_only), durable=self._durable)
        self._local.conn = (pid, conn)
        with self._connections_lock:
            self._connections.append(conn)
        return conn

    def _open_catalogue(self) -> None:
        """Open without the write lock when the schema is current (see :mod:`.catalogue`)."""
        conn = self._conn()
        state = catalogue.schema_state(conn)
        if state == "missing" and catalogue.has_blobs(self.blobs.root):
            raise StoreUnusable(
                f"the local store {str(self.root)!r} holds object bodies but its catalogue "
                f"{catalogue.CATALOG_NAME} is missing or empty: refusing to start an empty one beside them; "
                f"rebuild it with `marginalia store repair {self.root}`"
            )
        if self.read_only:
            if state != "current":
                raise StoreUnusable(
                    f"the local store {str(self.root)!r} is read-only ({self.read_only}) and its catalogue "
                    f"{'does not exist' if state == 'missing' else 'needs an upgrade'}: open it where it can be written"
                )
            return
        if state == "current":
            self.damaged = catalogue.integrity_problem(conn)
            return
        for attempt in range(50):  # switching to WAL needs a moment without other writers
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                break
            except sqlite3.OperationalError:
                time.sleep(0.05 * (attempt + 1))
        with self._write() as tx:
            for statement in catalogue.schema_statements():
                tx.conn.execute(statement)

    def close(self) -> None:
        """Close every connection; the WAL is folded into the catalogue first (nothing left beside it)."""
        with self._connections_lock:
            conns, self._connections = self._connections, []
        mine = getattr(self._local, "conn", None)
        if mine is not None and mine[0] == os.getpid() and not self.read_only and mine[1] in conns:
            catalogue.checkpoint(mine[1])
        for conn in conns:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
        self._local = threading.local()

    def _check_writable(self) -> None:
        if self.read_only:
            raise StoreUnusable(
                f"the local store {str(self.root)!r} is read-only ({self.read_only}): writes are refused, reads work"
            )
        if self.damaged:
            raise StoreUnusable(
                f"the local store catalogue {str(self.catalog_path)!r} is damaged ({self.damaged}): writes are "
                f"refused; see `marginalia store check {self.root}` and `marginalia store repair {self.root}`"
            )

    @contextlib.contextmanager
    def _translated(self) -> Iterator[None]:
        """Catalogue failures (disk full, read-only, damaged) as one-line :class:`StoreUnusable` errors."""
        try:
            yield
        except sqlite3.Error as exc:
            error = catalogue.translate(exc, self.root)
            if error is None:
                raise
            raise error from None
        except OSError as exc:
            if catalogue.is_disk_full(exc):
                raise catalogue.disk_full(str(self.root)) from None
            raise

    @contextlib.contextmanager
    def _write(self) -> Iterator[Transaction]:
        """A ``BEGIN IMMEDIATE`` transaction; blobs made garbage are unlinked only after commit."""
        self._check_writable()
        conn = self._conn()
        # Threads of this process queue on a lock (fair, no polling); other processes are kept
        # out by BEGIN IMMEDIATE + busy_timeout.
        with self._write_lock, self._translated():
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:  # still locked after busy_timeout
                if catalogue.translate(exc, self.root) is not None:
                    raise
                raise TransientError(
                    f"the local store catalogue {str(self.catalog_path)!r} is busy ({exc}); retry"
                ) from None
            tx = Transaction(conn)
            try:
                yield tx
                conn.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                self.blobs.unlink(tx.new_blobs)
                raise
        self.blobs.unlink(tx.garbage_blobs)
        for blob, name in tx.garbage_annotations:
            sidecars.remove_annotation(self.blobs.path(blob), name)

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: one consistent snapshot for several SELECTs (never waits for a writer)."""
        conn = self._conn()
        with self._translated():
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("COMMIT")
