"""What ``langgraph dev`` (LangGraph Studio's API server) loads from ``langgraph.json``.

* **Graphs** — one factory per agent (``minutes``, ``pdf_summary``, ``ppt_outline``, ``search``).
  Each returns the agent's module-level ``graph`` (compiled WITHOUT a checkpointer, as the server
  requires), bound for the run's thread to the same trace id and Langfuse callbacks as a CLI or
  API run (:mod:`marginalia.tracing`), so a thread started in Studio and one started from the
  command line look the same in checkpoints, provenance and Langfuse. The server calls a
  factory with the run's config; without a thread (schema requests) the plain graph is returned.
* **Checkpointer** — :func:`checkpointer`, the ``"checkpointer": {"path": ...}`` entry: the
  server keeps its threads in :class:`~marginalia.checkpointers.S3Saver` under
  ``MARGINALIA_STATE`` through ``MARGINALIA_STORE``, i.e. in the same place as every other run.

Nodes read the store and engine from the run's context (JSON from the server) or, when none is
given, from ``MARGINALIA_STORE``/``MARGINALIA_ENGINE`` (see :func:`marginalia.runtime.rails`).
"""

from __future__ import annotations

from typing import Any

from marginalia import tracing  # absolute: the server loads this file by path, outside the package

__all__ = ["checkpointer", "minutes", "pdf_summary", "ppt_outline", "search", "traced"]


def traced(graph: Any, config: dict | None, agent: str) -> Any:
    """``graph`` bound to the trace of the run's thread (unchanged when the config has no thread)."""
    thread_id = ((config or {}).get("configurable") or {}).get("thread_id")
    if not thread_id:
        return graph
    thread_id = str(thread_id)
    bound = {
        "metadata": {"trace_id": tracing.trace_id_for(thread_id), "agent": agent, "graph_module": graph_module(agent)},
        "run_name": agent,
    }
    callbacks = tracing.callbacks_for(thread_id, agent)
    if callbacks:
        bound["callbacks"] = callbacks
    return graph.with_config(bound)


def graph_module(agent: str) -> str:
    return f"marginalia.graph.{agent}"


def minutes(config: dict) -> Any:
    """The meeting-minutes agent."""
    from marginalia.graph.minutes import graph

    return traced(graph, config, "minutes")


def pdf_summary(config: dict) -> Any:
    """The PDF summariser."""
    from marginalia.graph.pdf_summary import graph

    return traced(graph, config, "pdf_summary")


def ppt_outline(config: dict) -> Any:
    """The PPT outliner."""
    from marginalia.graph.ppt_outline import graph

    return traced(graph, config, "ppt_outline")


def search(config: dict) -> Any:
    """Questions about the annotations, answered through SQL."""
    from marginalia.graph.search import graph

    return traced(graph, config, "search")


# The server's persistence: S3Saver on MARGINALIA_STATE (one factory, shared with the Python side).
from marginalia.checkpointers.server import checkpointer  # noqa: E402
