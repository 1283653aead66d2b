"""One prepared run of an agent (:class:`Run`): its graph, input, config and context, the
thread's lease it holds, and how it observes the stream, fails and finishes."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

from .. import tracing
from ..agents import AgentSpec
from ..context import AgentContext
from ..engines.base import Engine
from ..errors import InvalidInput, MarginaliaError, StorageError, ThreadBusy
from ..progress import PROGRESS
from ..storage.base import ObjectInfo, Store
from ..threads import ThreadIndex, ThreadRecord
from ..uri import S3URI
from .results import RunResult, RunStatus, WrittenAnnotation

__all__ = ["DURABILITY", "HeldLease", "Observer", "Preflight", "Run", "context_for", "hold_lease", "open_checkpointer"]


def open_checkpointer(store: Store, state: S3URI):
    """The S3 checkpointer on ``state`` (``MARGINALIA_STATE``), writing through ``store``."""
    from ..checkpointers import S3Saver

    return S3Saver.from_uri(str(state), store=store)


#: LangGraph's ``durability`` for every run driven here (API, CLI, batch, Temporal activities):
#: ``"sync"`` stores each step's checkpoint before the next step starts, so a process killed at
#: any moment re-runs at most the step that was in flight, never one that completed (``"async"``,
#: LangGraph's default, overlaps the write with the next step, which may then run again after a
#: crash; ``"exit"`` would lose every step of a run that dies). The cost is one checkpoint write's
#: latency per step. ``langgraph dev`` runs keep the server's own setting.
DURABILITY: Literal["sync", "async", "exit"] = "sync"

Observer = Callable[[str, Any], None]
#: ``preflight(store, info)`` checks an agent's own input before anything is written (``info`` is
#: the object's head when the agent reads the object, else None); raise a MarginaliaError to refuse.
Preflight = Callable[[Store, "ObjectInfo | None"], None]


@dataclass
class Run:
    """One prepared invocation of an agent graph; :func:`drive`/:func:`adrive` execute it.

    ``lease`` holds the thread's lease (an :class:`~contextlib.ExitStack` whose ``close()``
    releases it) from preparation until the drive function returns.
    """

    agent: AgentSpec
    graph: Any
    input: Any
    config: dict
    context: AgentContext
    index: ThreadIndex
    record: ThreadRecord
    values: dict = field(default_factory=dict)
    interrupt: Any = None
    lease: ExitStack | None = None

    @property
    def stream_kwargs(self) -> dict:
        return {
            "config": self.config,
            "context": self.context,
            "stream_mode": ["updates", "values", "custom"],  # custom: the nodes' progress events
            "durability": DURABILITY,
        }

    def check_lease(self) -> None:
        """ThreadBusy when another worker took this thread over (the lease renewer saw it, or the
        lease ran out while this process was frozen): checked before every step writes anything."""
        lease = getattr(self.lease, "lease", None)
        if lease is not None:
            lease.ensure()

    def observe(self, chunk: tuple[str, Any], on_update: Observer | None) -> None:
        self.check_lease()
        mode, data = chunk
        if mode == "values":
            self.values = data
            return
        if mode == "custom":  # a node's progress event (marginalia.progress)
            if on_update is not None:
                on_update(PROGRESS, data)
            return
        for node, update in data.items():
            if node == "__interrupt__":
                self.interrupt = update[0].value if update else None
            elif on_update is not None:
                on_update(node, update)

    def failed(self, exc: BaseException) -> None:
        lease = getattr(self.lease, "lease", None)
        if isinstance(exc, ThreadBusy) or (lease is not None and lease.lost is not None):
            return  # the thread is another worker's now: its record is theirs to write
        if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError):  # Ctrl-C: stopped, not broken
            thread_id = self.record.thread_id
            self.index.update(thread_id, status="interrupted", error=None)
            exc.add_note(f"thread {thread_id} interrupted; continue it with: marginalia resume {thread_id}")
            return
        message = str(exc) if isinstance(exc, MarginaliaError) else f"{type(exc).__name__}: {exc}"
        # Bad input fails the same way on every retry: such a thread is not offered for resume.
        permanent = isinstance(exc, InvalidInput) and not isinstance(exc, StorageError)
        self.index.update(self.record.thread_id, status="failed", error=message[:2000], permanent=permanent)

    def release(self) -> None:
        """Give the thread's lease back (once; later calls do nothing)."""
        lease, self.lease = self.lease, None
        if lease is not None:
            lease.close()

    def finish(self) -> RunResult:
        values = self.values
        iterations = len(values.get("iterations") or [])
        status: RunStatus
        if self.interrupt is not None:
            status, proposal = "waiting", (self.interrupt or {}).get("proposal")
        elif values.get("decision") == "discard":
            status, proposal = "rejected", values.get("proposal")
        else:
            status, proposal = "done", values.get("approved")
        self.index.update(self.record.thread_id, status=status, error=None)
        annotations = tuple(WrittenAnnotation(**a) for a in values.get("annotations") or ()) if status == "done" else ()
        return RunResult(
            thread_id=self.record.thread_id,
            agent=self.agent.name,
            status=status,
            object_uri=self.record.object_uri,
            proposal=proposal,
            annotations=annotations,
            trace_id=self.record.trace_id or tracing.trace_id_for(self.record.thread_id),
            iterations=iterations,
            draft=(self.interrupt or {}).get("draft") if status == "waiting" else None,
        )


def context_for(graph: Any, store: Store, engine: Engine, *, password: str | None = None) -> AgentContext:
    """The graph's own context type (``context_schema``) with the store, engine and password.

    The password lives only here, in the run's context, never in state or checkpoints; an agent
    whose context has no ``password`` field refuses one rather than silently dropping it.
    """
    schema = getattr(graph, "context_schema", None)
    if not (isinstance(schema, type) and issubclass(schema, AgentContext)):
        schema = AgentContext
    values: dict[str, Any] = {"store": store, "engine": engine}
    if password is not None:
        if "password" not in {f.name for f in dataclasses.fields(schema)}:
            raise InvalidInput(f"agent {graph.name} reads no encrypted documents: --password is not used by it")
        values["password"] = password  # a field of this schema (checked just above), not of every context
    return schema(**values)


class HeldLease(ExitStack):
    """An ExitStack holding a thread's lease, which it keeps when popped into a :class:`Run`."""

    lease: Any = None

    def pop_all(self) -> HeldLease:
        moved = super().pop_all()
        moved.lease = self.lease
        return moved

    def guarded(self, store: Store) -> Store:
        from ..lease import LeasedStore

        return LeasedStore(store, self.lease)


def hold_lease(store: Store, state: S3URI, thread_id: str) -> HeldLease:
    """An ExitStack holding the thread's lease (ThreadBusy if another worker holds it)."""
    from ..lease import thread_lease

    held = HeldLease()
    held.lease = held.enter_context(thread_lease(store, state, thread_id))
    return held
