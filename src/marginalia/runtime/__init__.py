"""The run driver: start, resume and drive an agent's thread (above the graphs, below the API).

Agents are declared in :mod:`marginalia.agents` (one :class:`~marginalia.agents.AgentSpec` each);
nodes get their store and engine from :mod:`marginalia.context`. This module gives every agent
the same behaviour, so the minutes agent, the PDF summariser and the PPT outliner differ only in
their specs:

* **Persistence** — checkpoints go to the S3 checkpointer at ``MARGINALIA_STATE``; the small
  :class:`~marginalia.threads.ThreadIndex` beside them records every thread's status.
* **Runs** — :func:`start`, :func:`resume` and :func:`start_or_continue` prepare a :class:`Run`;
  :func:`drive` (sync) and :func:`adrive` (async) are the only difference between the twins: one
  iterates ``graph.stream``, the other ``graph.astream``, and both feed the same
  :meth:`Run.observe` and :meth:`Run.finish`.
* **One worker a thread** — preparing a run takes the thread's lease
  (:func:`marginalia.lease.thread_lease`) before the thread index or the graph is touched; the
  :class:`Run` holds it until :func:`drive`/:func:`adrive` return (or preparing fails), so a
  second worker on the same thread gets :class:`~marginalia.errors.ThreadBusy` before it runs
  anything.
* **Continuing** — a thread whose process died, or whose node failed, goes on from its last
  checkpoint with input ``None`` (LangGraph replays the saved writes of the nodes that
  completed; they do not run again): :func:`resume` without a review, or
  :func:`start_or_continue` (what ``marginalia batch`` runs for each object).
* **Bad input writes nothing** — :func:`start` heads the object (for agents that begin with
  ``ingest``) and runs the agent's ``check_input`` and the caller's preflight check before the
  state location is touched.
* **Tracing** — the trace id is derived from the thread id (:mod:`marginalia.tracing`) and put
  in the run config's ``metadata``, so it lands in every checkpoint's metadata and in provenance.

The modules, one concept each: :mod:`.results` (what a run returns), :mod:`.run` (one prepared
run and the lease it holds), :mod:`.records` (a thread's id, index record, run config and
position), :mod:`.prepare` (:func:`start`, :func:`resume`, :func:`start_or_continue`) and
:mod:`.drive` (:func:`drive`, :func:`adrive`). Import from this package: the names below are its
public interface.
"""

from __future__ import annotations

from ..agents import AgentSpec, get_agent
from ..context import resolve_engine, resolve_store, state_location
from .drive import adrive, drive
from .prepare import check_input, parse_review, resume, start, start_or_continue
from .records import Position, new_thread_id, position, thread_config
from .results import RunResult, WrittenAnnotation
from .run import DURABILITY, Observer, Preflight, Run, context_for, open_checkpointer

__all__ = [
    "DURABILITY",
    "AgentSpec",
    "Observer",
    "Position",
    "Preflight",
    "Run",
    "RunResult",
    "WrittenAnnotation",
    "adrive",
    "check_input",
    "context_for",
    "drive",
    "get_agent",
    "new_thread_id",
    "open_checkpointer",
    "parse_review",
    "position",
    "resolve_engine",
    "resolve_store",
    "resume",
    "start",
    "start_or_continue",
    "state_location",
    "thread_config",
]
