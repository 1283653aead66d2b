"""The store the settings name: :func:`open_store` (``MARGINALIA_STORE``, or a spec given).

Every ``MARGINALIA_*`` variable is declared and read in :mod:`marginalia.settings`; the names
below are re-exported from there for the callers that import them from here.
"""

from __future__ import annotations

from . import storage
from .settings import DEFAULT_LOCAL_STATE, Settings, current, default_store
from .storage.base import Store

__all__ = ["DEFAULT_LOCAL_STATE", "Settings", "current", "default_store", "open_store"]


def open_store(spec: str | None = None) -> Store:
    """The :class:`~marginalia.storage.base.Store` named by ``spec`` or ``MARGINALIA_STORE``."""
    return storage.open_store(spec or current().store)
