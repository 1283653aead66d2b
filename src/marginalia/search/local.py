"""Run search queries on the local store's SQLite catalogue.

Why SQLite and not a copy in another engine: the catalogue's ``annotation`` and ``journal`` tables
are written in the same transaction as every annotation and object change, so a query sees every
write that finished before it (read-your-writes, spec R17.10), from any process, and — readers in
WAL mode seeing a snapshot — never a torn state. ``benchmarks/search.py`` compares it with DuckDB.

Read-only three times over: :func:`marginalia.search.sql.parse` accepts only a SELECT; the
connection is opened ``mode=ro`` with ``query_only``; and an authorizer lets the prepared statement
do nothing but read (and call the registered functions).

Bounded: every query has its own connection (taken from a small pool) and its own deadline, which
SQLite's progress handler checks between steps of the statement; the functions it calls are linear
in their input (RE2 for regular expressions), so no query escapes the limit, and a slow query does
not hold up the others (the MCP server answers other calls while one runs).
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from ..errors import QueryError
from . import functions
from . import sql as sqlmod
from .result import SearchResult

DEFAULT_TIMEOUT = 30.0
#: Translations kept per searcher: parsing, the read-only check and the rewrite cost 2-10 ms, the
#: same order as the query itself; the SQL depends on the query text and bucket only (the clock is
#: read by SQLite when the statement runs), so a kept translation is never stale.
TRANSLATIONS_KEPT = 256
#: Bytes of the catalogue read through a memory map rather than read() calls into SQLite's cache.
MMAP_BYTES = 1 << 30
#: Connections kept open between queries (more are opened while more queries run at once).
IDLE_CONNECTIONS = 4

_ALLOWED_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, sqlite3.SQLITE_RECURSIVE}


def _authorize(action, arg1, arg2, db_name, trigger):
    if (
        action == sqlite3.SQLITE_UPDATE
        and arg1 == "sqlite_master"
        and arg2 in ("type", "name", "tbl_name", "rootpage", "sql")
    ):
        # SQLite checks this while declaring the json_each virtual table; nothing is written
        # (the parser refused every UPDATE, and the connection is read-only and query_only).
        return sqlite3.SQLITE_OK
    if action not in _ALLOWED_ACTIONS:
        return sqlite3.SQLITE_DENY
    if action == sqlite3.SQLITE_FUNCTION:
        name = (arg2 or "").lower()
        if name in sqlmod._FORBIDDEN_FUNCTIONS or name.startswith("sqlite_"):
            return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK


class _Connection:
    """A read-only catalogue connection and the deadline of the query it runs."""

    def __init__(self, conn: sqlite3.Connection):
        self.sqlite = conn
        self.deadline = 0.0
        conn.set_progress_handler(self._expired, 20_000)

    def _expired(self) -> int:
        return 1 if time.monotonic() > self.deadline else 0


class LocalSearch:
    """Search over a local store's catalogue (``LocalStore.catalog_path``)."""

    engine = "sqlite"

    def __init__(self, catalog, *, timeout: float = DEFAULT_TIMEOUT):
        path = Path(getattr(catalog, "catalog_path", catalog))
        if not path.is_file():
            raise QueryError(f"no local catalogue at {str(path)!r}: write something with the local store first")
        self.catalog_path = path
        self.timeout = timeout
        self._lock = threading.Lock()
        self._translations: OrderedDict[tuple[str, str | None], str] = OrderedDict()
        self._idle: list[_Connection] = [_Connection(self._open(path))]  # opened now: a bad file fails here
        self._closed = False

    def _open(self, path: Path) -> sqlite3.Connection:
        uri = f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro"
        conn = sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA busy_timeout = 10000")
        conn.execute("PRAGMA query_only = ON")
        conn.execute("PRAGMA case_sensitive_like = ON")  # Trino's LIKE is case-sensitive
        # Reads only: map the file (no copy per page) and keep a bigger page cache between queries;
        # in WAL mode SQLite drops cached pages that a writer changed, so results stay current.
        conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
        conn.execute("PRAGMA cache_size = -65536")  # KiB
        functions.register(conn)
        conn.set_authorizer(_authorize)
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[_Connection]:
        """A connection of the pool for one query (a new one when all are in use)."""
        with self._lock:
            if self._closed:
                raise QueryError("the search backend is closed")
            conn = self._idle.pop() if self._idle else None
        conn = conn or _Connection(self._open(self.catalog_path))
        try:
            yield conn
        finally:
            with self._lock:
                keep = not self._closed and len(self._idle) < IDLE_CONNECTIONS
                if keep:
                    self._idle.append(conn)
            if not keep:
                conn.sqlite.close()

    def translate(self, query: str | sqlmod.Query, *, bucket: str | None = None) -> str:
        """The SQLite statement for an Athena-dialect query (kept for the next run of the same text)."""
        text = query if isinstance(query, str) else query.text
        with self._lock:
            statement = self._translations.get((text, bucket))
            if statement is not None:
                self._translations.move_to_end((text, bucket))
                return statement
        parsed = sqlmod.parse(query) if isinstance(query, str) else query
        statement = sqlmod.to_sqlite(parsed, bucket=bucket)
        with self._lock:
            self._translations[(text, bucket)] = statement
            while len(self._translations) > TRANSLATIONS_KEPT:
                self._translations.popitem(last=False)
        return statement

    def run(self, query: str | sqlmod.Query, *, bucket: str | None = None, limit: int | None = None) -> SearchResult:
        """Run one read-only Athena-dialect query; at most ``limit`` rows (``truncated`` says if more)."""
        statement = self.translate(query, bucket=bucket)
        with self._connection() as conn:
            conn.deadline = time.monotonic() + self.timeout
            functions.last_error()  # forget an earlier failure
            try:
                cursor = conn.sqlite.execute(statement)
                columns = [d[0] for d in cursor.description or ()]
                rows = cursor.fetchmany(limit + 1) if limit is not None else cursor.fetchall()
                cursor.close()
            except sqlite3.Error as exc:
                raise self._error(exc) from None
        truncated = limit is not None and len(rows) > limit
        return SearchResult(
            columns=columns,
            rows=rows[:limit] if truncated else rows,
            engine=self.engine,
            sql=statement,
            truncated=truncated,
        )

    def _error(self, exc: sqlite3.Error) -> QueryError:
        message = str(exc)
        detail = functions.last_error()
        if detail:
            return QueryError(f"query failed: {detail}")
        if message == "interrupted":
            return QueryError(f"query took longer than {self.timeout:g} s and was stopped")
        if "not authorized" in message or "readonly" in message or "read-only" in message:
            return QueryError(f"only read-only queries are allowed ({message})")
        return QueryError(f"query failed on the local engine: {message}")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.sqlite.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
