"""The ``checkpointer`` entry for ``langgraph.json``: LangGraph's server persists through S3Saver.

    {"checkpointer": {"path": "marginalia.checkpointers.server:checkpointer"}}

The server enters :func:`checkpointer` (an async context manager factory) once and uses the saver
it yields for every thread. Where it writes comes from the environment, like the rest of
Marginalia: ``MARGINALIA_STORE`` (``local:<dir>`` by default, or ``s3``), ``MARGINALIA_STATE``
(``s3://bucket/prefix``; checkpoints go under ``<prefix>/checkpoints/``), and the optional
``MARGINALIA_CHECKPOINT_KEY`` / ``MARGINALIA_CHECKPOINT_COMPRESS``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from ..config import open_store
from ..settings import Settings, current
from .s3 import S3Saver


def saver_from_env(env: Mapping[str, str] | None = None) -> S3Saver:
    """An :class:`S3Saver` configured from ``MARGINALIA_*`` (see the module docstring)."""
    settings = Settings.from_env(env) if env is not None else current()
    store = open_store(settings.store)
    state = settings.state_uri()
    if store.kind == "local":  # the embedded default: the state bucket is created on first use
        store.create_bucket(state.bucket, exist_ok=True)
    return S3Saver.from_uri(state, store=store)


@asynccontextmanager
async def checkpointer() -> AsyncIterator[S3Saver]:
    """Yield the configured saver; close it (and its store) when the server shuts down."""
    saver = await asyncio.to_thread(saver_from_env)
    try:
        yield saver
    finally:
        await asyncio.to_thread(saver.close)
        await asyncio.to_thread(saver.store.close)
