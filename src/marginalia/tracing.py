"""Trace identity of an agent run (minimal for now; Langfuse export is added on top later).

A thread may run in several processes (start, exit at the approval interrupt, resume elsewhere).
Deriving the trace id from the thread id, with Langfuse's own deterministic
``create_trace_id(seed=...)``, keeps all of those runs in ONE trace without storing anything:
any process can recompute it. It needs no Langfuse client, keys or network.
"""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1024)
def trace_id_for(thread_id: str) -> str:
    """The 32-hex trace id of ``thread_id`` (the same in every process, for every resume)."""
    from langfuse import Langfuse

    return Langfuse.create_trace_id(seed=thread_id)


def callbacks_for(thread_id: str, agent: str) -> list:
    """LangChain callbacks to attach to a run of ``agent`` on ``thread_id``.

    Empty for now: the tracing engineer returns a Langfuse ``CallbackHandler`` bound to
    :func:`trace_id_for` here, and every agent run picks it up through :mod:`marginalia.runtime`.
    """
    return []
