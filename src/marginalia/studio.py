"""What ``langgraph dev`` (LangGraph Studio's API server) loads from ``langgraph.json``.

* **Graphs** — one factory per registered agent (:mod:`marginalia.agents`: ``minutes``,
  ``pdf_summary``, ``ppt_outline``), made by :func:`factory`, and ``search``. Each returns the
  agent's module-level ``graph`` (compiled WITHOUT a checkpointer, as the server
  requires), bound for the run's thread to the same trace id and Langfuse callbacks as a CLI or
  API run (:mod:`marginalia.tracing`), so a thread started in Studio and one started from the
  command line look the same in checkpoints, provenance and Langfuse. The server calls a
  factory with the run's config; without a thread (schema requests) the plain graph is returned.
* **Threads** — :class:`ServerThread`, bound to every served agent run, does what
  :mod:`marginalia.runtime` does for a CLI or API run: holds the thread's lease while it runs,
  keeps its record in the thread index (agent, object, status, trace id: ``marginalia threads
  --pending`` lists a server thread waiting for approval, ``marginalia approve`` takes it forward)
  and writes its self-contained archive when a run ends it.
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
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import BaseCallbackHandler

from marginalia import tracing  # absolute: the server loads this file by path, outside the package

if TYPE_CHECKING:  # the server resolves the annotation itself; langgraph-sdk comes with the studio extra
    from langgraph_sdk.runtime import ServerRuntime

    from marginalia.threads import Status

logger = logging.getLogger("marginalia.studio")

__all__ = ["AGENTS", "ServerThread", "checkpointer", "factory", "search", "traced"]


def traced(
    graph: Any, config: dict | None, agent: str, module: str, *, indexed: bool = True, context: Any = None
) -> Any:
    """``graph`` bound to the trace of the run's thread (unchanged when the config has no thread).

    ``indexed``: the run is an agent's, so its thread is kept in the thread index and archived at
    its end (:class:`ServerThread`); ``search`` is not an agent thread, as on the command line.
    ``context`` is the run's runtime context as the server got it (JSON: Studio's context form):
    the engine it names is the one the thread's record keeps, so a resume elsewhere uses it too.
    """
    thread_id = ((config or {}).get("configurable") or {}).get("thread_id")
    if not thread_id:
        return graph
    thread_id = str(thread_id)
    bound = {
        "metadata": {  # a run's own metadata wins over these (Langfuse reads the langfuse_* keys)
            **tracing.run_metadata(thread_id, agent),
            "trace_id": tracing.trace_id_for(thread_id),
            "agent": agent,
            "graph_module": module,
        },
        "run_name": agent,
    }
    callbacks: list[Any] = tracing.callbacks_for(thread_id, agent)
    if indexed:
        engine = context.get("engine") if isinstance(context, dict) else getattr(context, "engine", None)
        callbacks.append(ServerThread(thread_id, agent, module, engine=engine if isinstance(engine, str) else None))
    bound["callbacks"] = callbacks
    return graph.with_config(bound)


class ServerThread(BaseCallbackHandler):
    """Keeps a thread run by the API server in the thread index, under its lease, like any other.

    The CLI, the Python API, batch and Temporal go through :mod:`marginalia.runtime`, which holds
    the thread's lease while it runs, writes its index record (agent, object, status, trace id) and
    archives it at its end. Runs on ``langgraph dev`` do not; this handler, bound to every served
    agent run, does the same around the graph's root run:

    * **start** — takes the thread's lease (another worker running the thread refuses the run with
      :class:`~marginalia.errors.ThreadBusy`, as ``marginalia approve`` is refused while the
      server runs it) and writes the record ``running`` with the run's ``object_uri`` (a new
      thread) or sets it ``running`` (a resume);
    * **end** — LangGraph calls ``on_chain_end`` after the run's last checkpoint is saved: the
      thread's position (:func:`marginalia.runtime.position`) makes the record ``waiting`` (at
      the approval interrupt: it is in ``marginalia threads --pending``, and ``marginalia
      approve`` takes it forward in any process), ``done`` or ``rejected``; a finished thread
      gets its self-contained archive, written in a background thread so the server answers at once;
    * **error** — ``failed`` with the error (``interrupted`` when the run was cancelled).

    The lease is released at the end either way. Only the lease refusal stops a run: a record or an
    archive that could not be written is logged (``marginalia archive THREAD`` writes one later).
    Sync callbacks run on the server's executor and are awaited, so the record is written before
    the run's result reaches the client.
    """

    raise_error = True  # so ThreadBusy at start refuses the run; everything else is caught here

    def __init__(self, thread_id: str, agent: str, module: str | None = None, *, engine: str | None = None):
        self.thread_id, self.agent, self.module = thread_id, agent, module
        self.engine = engine  # the run context's engine spec; None: MARGINALIA_ENGINE, as the nodes do
        self._lease: Any = None

    # -- the root run's three moments ------------------------------------------------------------
    def on_chain_start(
        self, serialized: Any, inputs: Any, *, run_id: Any, parent_run_id: Any = None, **kwargs: Any
    ) -> None:
        if parent_run_id is not None:
            return
        from marginalia.errors import ThreadBusy
        from marginalia.lease import Lease

        server = _server_state()
        try:
            self._lease = Lease(server.store, server.state, self.thread_id).acquire()
        except ThreadBusy:
            raise  # another worker runs this thread: refuse the run
        except Exception:
            logger.exception("thread %s: its lease could not be taken; running without one", self.thread_id)
        else:
            self._lease.start_renewing()
        object_uri = inputs.get("object_uri") if isinstance(inputs, dict) else None
        self._record(status="running", error=None, permanent=False, object_uri=object_uri)

    def on_chain_end(self, outputs: Any, *, run_id: Any, parent_run_id: Any = None, **kwargs: Any) -> None:
        if parent_run_id is not None:
            return
        try:
            finished = self._record_position()
        finally:
            self._release()
        if finished:
            threading.Thread(target=self._archive, name=f"archive-{self.thread_id}", daemon=True).start()

    def on_chain_error(self, error: BaseException, *, run_id: Any, parent_run_id: Any = None, **kwargs: Any) -> None:
        if parent_run_id is not None:
            return
        import asyncio

        from marginalia.errors import InvalidInput, MarginaliaError, StorageError, ThreadBusy

        try:
            if isinstance(error, ThreadBusy):
                return  # the thread is another worker's: its record is theirs to write
            if isinstance(error, KeyboardInterrupt | asyncio.CancelledError):  # cancelled: stopped, not broken
                self._record(status="interrupted", error=None)
                return
            message = str(error) if isinstance(error, MarginaliaError) else f"{type(error).__name__}: {error}"
            permanent = isinstance(error, InvalidInput) and not isinstance(error, StorageError)
            self._record(status="failed", error=message[:2000], permanent=permanent)
        finally:
            self._release()

    # -- index, lease, archive ----------------------------------------------------------------------
    def _record(self, *, status: Status, object_uri: str | None = None, **changes: Any) -> None:
        """Create the thread's record, or update it (never raises: a failure is logged)."""
        from marginalia import tracing as traces
        from marginalia.context import engine_spec_of
        from marginalia.threads import ThreadRecord

        try:
            index = _server_state().index
            record = index.get(self.thread_id)
            if record is None:
                index.put(
                    ThreadRecord(
                        thread_id=self.thread_id,
                        agent=self.agent,
                        object_uri=object_uri or "",
                        status=status,
                        trace_id=traces.trace_id_for(self.thread_id),
                        graph_module=self.module,
                        engine=engine_spec_of(self.engine),
                        error=changes.get("error"),
                        permanent=bool(changes.get("permanent")),
                    )
                )
                return
            if object_uri and not record.object_uri:
                changes["object_uri"] = object_uri
            index.update(self.thread_id, status=status, **changes)
        except Exception:  # the run goes on; the index is advisory
            logger.exception("thread %s: its index record could not be written (%s)", self.thread_id, status)

    def _record_position(self) -> bool:
        """Write where the run left the thread; True when the thread is finished."""
        from marginalia.agents import get_agent
        from marginalia.runtime import position

        try:
            saver = _server_state().saver
            graph = get_agent(self.agent, self.module).build(checkpointer=saver)
            where, snapshot = position(graph, saver, {"configurable": {"thread_id": self.thread_id}})
        except Exception:
            logger.exception("thread %s: where its run stopped could not be read", self.thread_id)
            return False
        values = getattr(snapshot, "values", None) or {}
        object_uri = values.get("object_uri")
        if where == "waiting":
            self._record(status="waiting", error=None, object_uri=object_uri)
        elif where == "finished":
            status: Status = "rejected" if values.get("decision") == "discard" else "done"
            self._record(status=status, error=None, object_uri=object_uri)
        else:  # stopped mid-graph without an error (cannot normally happen): continue it with resume
            self._record(status="interrupted", error=None, object_uri=object_uri)
        return where == "finished"

    def _release(self) -> None:
        lease, self._lease = self._lease, None
        if lease is not None:
            try:
                lease.release()
            except Exception:
                logger.exception("thread %s: its lease could not be released", self.thread_id)

    def _archive(self) -> None:
        from marginalia.archive import archive_thread
        from marginalia.errors import MarginaliaError

        try:
            server = _server_state()
            archive_thread(server.store, server.saver, self.thread_id, state=server.state, index=server.index)
        except MarginaliaError as exc:
            logger.warning("thread %s finished but was not archived: %s", self.thread_id, exc)
        except Exception:  # a background thread: say what went wrong, never take the server down
            logger.exception("thread %s finished but was not archived", self.thread_id)


class _ServerState:
    """Where the server's threads live: the saver of ``MARGINALIA_STATE`` (the same place the
    server's checkpointer writes), its store, and the thread index beside the checkpoints."""

    def __init__(self) -> None:
        from marginalia.checkpointers.server import saver_from_env
        from marginalia.context import state_location
        from marginalia.threads import ThreadIndex

        self.saver = saver_from_env()
        self.store = self.saver.store
        self.state = state_location(self.store)
        self.index = ThreadIndex(self.store, self.state)


_STATE_LOCK = threading.Lock()
_STATE: _ServerState | None = None


def _server_state() -> _ServerState:
    """One per server process (opened on the first run)."""
    global _STATE
    with _STATE_LOCK:
        if _STATE is None:
            _STATE = _ServerState()
        return _STATE


def factory(agent: str) -> Callable[[dict], Any]:
    """The ``langgraph.json`` factory of registered agent ``agent``: its graph, traced per thread."""

    def make(config: dict, runtime: ServerRuntime | None = None) -> Any:
        # The server passes its ServerRuntime by this annotation; a run's carries the run's context.
        from marginalia.agents import get_agent

        module = get_agent(agent).module
        context = getattr(runtime, "context", None)
        return traced(importlib.import_module(module).graph, config, agent, module, context=context)

    make.__name__ = make.__qualname__ = agent
    make.__doc__ = f"The {agent} agent (a registered agent, see marginalia.agents)."
    return make


def search(config: dict) -> Any:
    """Questions about the annotations, answered through SQL."""
    from marginalia.graph.search import graph

    return traced(graph, config, "search", "marginalia.graph.search", indexed=False)


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
