"""Search across annotations with SQL — locally on the SQLite catalogue, on AWS with Athena.

One query language (Athena's Trino SQL) for both engines; the backend follows ``MARGINALIA_STORE``
(``local:<dir>`` → :class:`~marginalia.search.local.LocalSearch`, ``s3`` →
:class:`~marginalia.search.athena.AthenaSearch`)::

    from marginalia.search import open_search, find, missing
    backend = open_search()
    backend.run("SELECT object_key FROM annotation_table WHERE name = 'summary'", bucket="docs")
    find(backend, name="meeting_minutes", contains="EKS", where=["date>=2026-06-09"], bucket="docs")
    missing(backend, "summary", suffix=".pdf", bucket="docs")
"""

from __future__ import annotations

from typing import Protocol

from ..config import open_store
from ..settings import Settings, current
from . import friendly
from .result import SearchResult

__all__ = ["SearchBackend", "SearchResult", "open_search", "find", "missing"]


class SearchBackend(Protocol):
    engine: str

    def run(self, query: str, *, bucket: str | None = None, limit: int | None = None) -> SearchResult: ...

    def translate(self, query: str, *, bucket: str | None = None) -> str: ...


def open_search(store=None, *, settings: Settings | None = None, athena_client=None) -> SearchBackend:
    """The search backend for ``store`` (or for ``MARGINALIA_STORE`` when no store is given)."""
    from .local import LocalSearch

    if store is not None:
        if getattr(store, "kind", None) == "local":
            return LocalSearch(store)
        from .athena import AthenaSearch

        return AthenaSearch(client=athena_client)
    settings = settings or current()
    if settings.is_local:
        return LocalSearch(open_store(settings.store))
    from .athena import AthenaSearch

    return AthenaSearch(client=athena_client)


def find(backend: SearchBackend, *, bucket: str | None = None, limit: int | None = None, **form) -> SearchResult:
    """``name=, contains=, where=[...], prefix=, suffix=`` compiled by :func:`friendly.find_sql`."""
    return backend.run(friendly.find_sql(**form), bucket=bucket, limit=limit)


def missing(
    backend: SearchBackend, name: str, *, bucket: str | None = None, limit: int | None = None, **form
) -> SearchResult:
    """``has=, prefix=, suffix=`` compiled by :func:`friendly.missing_sql`."""
    return backend.run(friendly.missing_sql(name, **form), bucket=bucket, limit=limit)
