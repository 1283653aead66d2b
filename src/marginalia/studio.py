"""What ``langgraph dev`` (LangGraph Studio's API server) loads from ``langgraph.json``.

* **Graphs** — one factory per registered agent (:mod:`marginalia.agents`: ``minutes``,
  ``pdf_summary``, ``ppt_outline``), made by :func:`factory`, and ``search``. Each returns the agent's module-level ``graph`` (compiled WITHOUT a checkpointer, as the server
  requires), bound for the run's thread to the same trace id and Langfuse callbacks as a CLI or
  API run (:mod:`marginalia.tracing`), so a thread started in Studio and one started from the
  command line look the same in checkpoints, provenance and Langfuse. The server calls a
  factory with the run's config; without a thread (schema requests) the plain graph is returned.
* **Archives** — :class:`ArchiveWhenFinished`, bound to every served run, writes a thread's
  self-contained archive when a run ends it, as a CLI or API run does.
* **Checkpointer** — :func:`checkpointer`, the ``"checkpointer": {"path": ...}`` entry: the
  server keeps its threads in :class:`~marginalia.checkpointers.S3Saver` under
  ``MARGINALIA_STATE`` through ``MARGINALIA_STORE``, i.e. in the same place as every other run.

Nodes read the store and engine from the run's context (JSON from the server) or, when none is
given, from ``MARGINALIA_STORE``/``MARGINALIA_ENGINE`` (see :func:`marginalia.context.rails`).
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler

from marginalia import tracing  # absolute: the server loads this file by path, outside the package

logger = logging.getLogger("marginalia.studio")

__all__ = ["AGENTS", "ArchiveWhenFinished", "checkpointer", "factory", "search", "traced"]


def traced(graph: Any, config: dict | None, agent: str, module: str) -> Any:
    """``graph`` bound to the trace of the run's thread (unchanged when the config has no thread)."""
    thread_id = ((config or {}).get("configurable") or {}).get("thread_id")
    if not thread_id:
        return graph
    thread_id = str(thread_id)
    bound = {
        "metadata": {"trace_id": tracing.trace_id_for(thread_id), "agent": agent, "graph_module": module},
        "run_name": agent,
    }
    bound["callbacks"] = [*tracing.callbacks_for(thread_id, agent), ArchiveWhenFinished(thread_id, agent)]
    return graph.with_config(bound)


class ArchiveWhenFinished(BaseCallbackHandler):
    """Writes a server thread's self-contained archive when a run of it ends the thread.

    The CLI and the Python API archive a thread at its end (:func:`marginalia.runtime.drive`);
    runs on the API server do not go through them, so this handler, bound to every served run,
    does the same: when the graph's root run ends (LangGraph calls ``on_chain_end`` after the
    run's last checkpoint is saved) and the thread is finished — nothing next, no interrupt
    waiting for a reviewer — :func:`marginalia.archive.archive_thread` writes
    ``<MARGINALIA_STATE>/archives/<thread>.json``, in a background thread so the server answers
    at once. A run that stops at an interrupt or fails writes nothing; an archive that could
    not be written is logged, and ``marginalia archive THREAD`` writes it later.
    """

    def __init__(self, thread_id: str, agent: str):
        self.thread_id, self.agent = thread_id, agent

    def on_chain_end(self, outputs: Any, *, run_id: Any, parent_run_id: Any = None, **kwargs: Any) -> None:
        if parent_run_id is None:
            threading.Thread(target=self._archive_if_finished, name=f"archive-{self.thread_id}", daemon=True).start()

    def _archive_if_finished(self) -> None:
        from marginalia.agents import get_agent
        from marginalia.archive import archive_thread
        from marginalia.errors import MarginaliaError
        from marginalia.runtime import position

        try:
            saver = _archive_saver()
            graph = get_agent(self.agent).build(checkpointer=saver)
            where, _ = position(graph, saver, {"configurable": {"thread_id": self.thread_id}})
            if where == "finished":  # not waiting for a reviewer, not stopped mid-graph
                archive_thread(saver.store, saver, self.thread_id)
        except MarginaliaError as exc:
            logger.warning("thread %s finished but was not archived: %s", self.thread_id, exc)
        except Exception:  # a background thread: say what went wrong, never take the server down
            logger.exception("thread %s finished but was not archived", self.thread_id)


_SAVER_LOCK = threading.Lock()
_SAVER: Any = None


def _archive_saver() -> Any:
    """One saver per server process for reading finished threads (the same place the server's is)."""
    global _SAVER
    with _SAVER_LOCK:
        if _SAVER is None:
            from marginalia.checkpointers.server import saver_from_env

            _SAVER = saver_from_env()
        return _SAVER


def factory(agent: str) -> Callable[[dict], Any]:
    """The ``langgraph.json`` factory of registered agent ``agent``: its graph, traced per thread."""

    def make(config: dict) -> Any:
        from marginalia.agents import get_agent

        module = get_agent(agent).module
        return traced(importlib.import_module(module).graph, config, agent, module)

    make.__name__ = make.__qualname__ = agent
    make.__doc__ = f"The {agent} agent (a registered agent, see marginalia.agents)."
    return make


def search(config: dict) -> Any:
    """Questions about the annotations, answered through SQL."""
    from marginalia.graph.search import graph

    return traced(graph, config, "search", "marginalia.graph.search")


def _export_agents() -> list[str]:
    """``studio.<agent>`` for every registered agent: the names ``langgraph.json`` points at (the
    server reads this module's variables, so they are made here, at import)."""
    from marginalia.agents import all_agents

    names = [spec.name for spec in all_agents() if spec.studio]
    globals().update({name: factory(name) for name in names})
    return names


AGENTS = _export_agents()


# The server's persistence: S3Saver on MARGINALIA_STATE (one factory, shared with the Python side).
from marginalia.checkpointers.server import checkpointer  # noqa: E402
