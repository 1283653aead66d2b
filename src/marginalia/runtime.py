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
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

from langgraph.types import Command

from . import tracing
from .agents import AgentSpec, get_agent
from .context import AgentContext, engine_spec_of, rebuildable_engine, resolve_engine, resolve_store, state_location
from .engines.base import Engine
from .errors import ConfigurationError, InvalidInput, MarginaliaError, StorageError, ThreadBusy, ThreadNotFound
from .schemas import Review
from .storage.base import ObjectInfo, Store
from .threads import ThreadIndex, ThreadRecord, validate_thread_id
from .uri import S3URI, parse_uri

__all__ = [
    "Run",
    "RunResult",
    "WrittenAnnotation",
    "adrive",
    "drive",
    "open_checkpointer",
    "position",
    "resume",
    "start",
    "start_or_continue",
    "state_location",
    "thread_config",
]


# --- persistence ---------------------------------------------------------------------------
def open_checkpointer(store: Store, state: S3URI):
    """The S3 checkpointer on ``state`` (``MARGINALIA_STATE``), writing through ``store``."""
    from .checkpointers import S3Saver

    return S3Saver.from_uri(str(state), store=store)


# --- results -------------------------------------------------------------------------------
@dataclass(frozen=True)
class WrittenAnnotation:
    """An annotation an agent wrote (``parts`` > 1 when large_annotations split it)."""

    uri: str
    name: str
    etag: str | None = None
    parts: int = 1


@dataclass(frozen=True)
class RunResult:
    """Where a run of an agent stopped.

    ``status`` is ``"waiting"`` (stopped at the approval interrupt: ``proposal`` awaits a
    reviewer, resume with the thread id), ``"done"`` (``annotations`` were written; ``proposal``
    is the approved document) or ``"rejected"`` (the reviewer discarded it; nothing written).
    """

    thread_id: str
    agent: str
    status: Literal["waiting", "done", "rejected"]
    object_uri: str
    proposal: dict | None
    annotations: tuple[WrittenAnnotation, ...]
    trace_id: str
    iterations: int
    #: waiting: the approval payload's ``draft`` (``{engine, label, flags}``, see nodes.review)
    draft: dict | None = None


# --- runs ----------------------------------------------------------------------------------
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
            "stream_mode": ["updates", "values"],
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


def thread_config(record: ThreadRecord) -> dict:
    """The run config of a thread: its id, and the metadata every checkpoint and trace carries."""
    return {
        "configurable": {"thread_id": record.thread_id},
        "metadata": {
            "trace_id": record.trace_id,
            "agent": record.agent,
            "graph_module": record.graph_module,
            "object_uri": record.object_uri,
            "engine": record.engine,
        },
        "callbacks": tracing.callbacks_for(record.thread_id, record.agent),
        "run_name": record.agent,
        "tags": [f"agent:{record.agent}"],
    }


def new_thread_id(agent: str) -> str:
    return f"{agent}-{uuid.uuid4().hex[:16]}"


def context_for(graph: Any, store: Store, engine: Engine, *, password: str | None = None) -> AgentContext:
    """The graph's own context type (``context_schema``) with the store, engine and password.

    The password lives only here, in the run's context, never in state or checkpoints; an agent
    whose context has no ``password`` field refuses one rather than silently dropping it.
    """
    schema = getattr(graph, "context_schema", None)
    if not (isinstance(schema, type) and issubclass(schema, AgentContext)):
        schema = AgentContext
    if password is None:
        return schema(store=store, engine=engine)
    if "password" not in {f.name for f in dataclasses.fields(schema)}:
        raise InvalidInput(f"agent {graph.name} reads no encrypted documents: --password is not used by it")
    return schema(store=store, engine=engine, password=password)


class _HeldLease(ExitStack):
    """An ExitStack holding a thread's lease, which it keeps when popped into a :class:`Run`."""

    lease: Any = None

    def pop_all(self) -> _HeldLease:
        moved = super().pop_all()
        moved.lease = self.lease
        return moved

    def guarded(self, store: Store) -> Store:
        from .lease import LeasedStore

        return LeasedStore(store, self.lease)


def _lease(store: Store, state: S3URI, thread_id: str) -> _HeldLease:
    """An ExitStack holding the thread's lease (ThreadBusy if another worker holds it)."""
    from .lease import thread_lease

    held = _HeldLease()
    held.lease = held.enter_context(thread_lease(store, state, thread_id))
    return held


def _new_record(
    spec: AgentSpec, thread_id: str, object_uri: str, engine: Engine | str | None, engine_obj: Engine
) -> ThreadRecord:
    return ThreadRecord(
        thread_id=thread_id,
        agent=spec.name,
        object_uri=object_uri,
        status="running",
        trace_id=tracing.trace_id_for(thread_id),
        graph_module=spec.module,
        engine=engine if isinstance(engine, str) else engine_spec_of(engine_obj),
    )


def check_input(
    graph: Any,
    store: Store,
    object_uri: str,
    preflight: Preflight | None = None,
    *,
    spec: AgentSpec | None = None,
    inputs: Mapping[str, Any] | None = None,
    thread_id: str | None = None,
) -> ObjectInfo | None:
    """Refuse bad input before anything is written: the object must exist when the agent reads
    it (its graph begins with ``ingest``), the agent's ``check_input`` and the caller's
    ``preflight`` must pass."""
    info = None
    if "ingest" in graph.nodes:
        uri = parse_uri(object_uri)
        info = store.head_object(uri.bucket, uri.key)  # ObjectNotFound / BucketNotFound name it
    if spec is not None and spec.check_input is not None:
        spec.check_input(store, info, object_uri=object_uri, inputs=dict(inputs or {}), thread_id=thread_id)
    if preflight is not None:
        preflight(store, info)
    return info


def start(
    agent: str,
    object_uri: str,
    inputs: dict,
    *,
    engine: Engine | str | None = None,
    approve: bool = False,
    thread_id: str | None = None,
    store: Store | str | None = None,
    preflight: Preflight | None = None,
    password: str | None = None,
) -> Run:
    """Prepare the first run of ``agent`` on ``object_uri`` (records the thread as running).

    ``inputs`` is the agent's own part of the initial state; the rails add ``object_uri`` and
    ``auto_approve`` (``approve=True`` passes the review node without stopping). The input is
    checked (:func:`check_input`) before the state location is touched, so bad input leaves no
    thread record, lease or checkpoint behind.
    """
    spec = get_agent(agent)
    parse_uri(object_uri)
    chosen_thread = validate_thread_id(thread_id) if thread_id else None
    store_obj = resolve_store(store)
    engine_obj = resolve_engine(engine)
    graph = spec.build()
    check_input(graph, store_obj, object_uri, preflight, spec=spec, inputs=inputs, thread_id=chosen_thread)
    thread_id = chosen_thread or new_thread_id(agent)
    state = state_location(store_obj)
    with _lease(store_obj, state, thread_id) as held:
        store_obj = held.guarded(store_obj)  # every write of the run checks the lease is still ours
        index = ThreadIndex(store_obj, state)
        if index.get(thread_id) is not None:
            raise InvalidInput(
                f"thread {thread_id} already exists: resume it, or start without --thread to get a new one"
            )
        graph = graph.copy(update={"checkpointer": open_checkpointer(store_obj, state)})
        record = index.put(_new_record(spec, thread_id, object_uri, engine, engine_obj))
        return Run(
            agent=spec,
            graph=graph,
            input={**inputs, "object_uri": object_uri, "auto_approve": bool(approve)},
            config=thread_config(record),
            context=context_for(graph, store_obj, engine_obj, password=password),
            index=index,
            record=record,
            lease=held.pop_all(),
        )


def _find_thread(index: ThreadIndex, saver: Any, thread_id: str) -> ThreadRecord:
    """The thread's index record, rebuilt from checkpoint metadata if the index lost it."""
    record = index.get(thread_id)
    if record is not None:
        return record
    found = saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    meta = (found.metadata or {}) if found else {}
    if not meta.get("agent"):
        raise ThreadNotFound(f"no thread {thread_id!r} in {index.bucket}/{index.prefix} (see `marginalia threads`)")
    return index.put(
        ThreadRecord(
            thread_id=thread_id,
            agent=meta["agent"],
            object_uri=meta.get("object_uri", ""),
            status="waiting",
            trace_id=meta.get("trace_id") or tracing.trace_id_for(thread_id),
            graph_module=meta.get("graph_module"),
            engine=meta.get("engine"),
        )
    )


Position = Literal["new", "waiting", "unfinished", "finished"]


def position(graph: Any, saver: Any, config: dict) -> tuple[Position, Any]:
    """Where a thread stands, from its latest checkpoint, and that checkpoint's snapshot.

    ``new`` (no checkpoint), ``waiting`` (at an approval interrupt), ``unfinished`` (stopped
    mid-graph: its process died or a node failed; input ``None`` continues it) or ``finished``.
    ``get_state().next`` alone misses one unfinished case: a node that fans out with ``Send``
    completed and its writes were saved, but the process died before the next checkpoint; the
    snapshot shows no next node, yet continuing applies the writes and runs the sends.
    """
    snapshot = graph.get_state(config)
    if snapshot is None or not snapshot.metadata:
        return "new", snapshot
    if snapshot.interrupts:
        return "waiting", snapshot
    if snapshot.next:
        return "unfinished", snapshot
    found = saver.get_tuple({"configurable": {**config["configurable"], "checkpoint_ns": ""}})
    return ("unfinished" if found and found.pending_writes else "finished"), snapshot


def parse_review(value: Any) -> Review:
    """A :class:`~marginalia.schemas.Review` from a dict, a Review or an action name."""
    if isinstance(value, Review):
        return value
    if isinstance(value, str):
        value = {"action": value}
    from pydantic import ValidationError

    try:
        return Review.model_validate(value)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'review'}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"invalid review: {problems}") from None


def _engine_for(record: ThreadRecord, engine: Engine | str | None) -> Engine:
    """The engine a resumed thread runs with: the caller's, else the one it was started with."""
    if engine is None:
        if record.engine and not rebuildable_engine(record.engine):
            raise ConfigurationError(
                f"thread {record.thread_id} was started with engine {record.engine!r}, which cannot be rebuilt from "
                "its name: pass the same engine object to resume"
            )
        engine = record.engine
    return resolve_engine(engine)


def resume(
    thread_id: str,
    review: Review | Mapping | str | None = None,
    *,
    engine: Engine | str | None = None,
    store: Store | str | None = None,
    password: str | None = None,
) -> Run:
    """Prepare the run that takes thread ``thread_id`` forward, in any process.

    * waiting at approval: ``review`` answers it (None approves). The review is validated
      against the pending proposal BEFORE anything runs, so a bad edit is refused and the thread
      keeps waiting;
    * interrupted (its process died) or failed: it continues from its last checkpoint; a review
      is refused, there is no proposal to answer;
    * finished: refused.

    The agent is found from the thread index (or checkpoint metadata) and its graph rebuilt on
    the checkpointer. ``password`` opens encrypted PDFs for agents that read them (run context
    only, never stored).
    """
    from .nodes.review import apply_review

    validate_thread_id(thread_id)
    answer = parse_review(review) if review is not None else None
    store_obj = resolve_store(store)
    state = state_location(store_obj)
    with _lease(store_obj, state, thread_id) as held:
        store_obj = held.guarded(store_obj)  # every write of the run checks the lease is still ours
        index = ThreadIndex(store_obj, state)
        saver = open_checkpointer(store_obj, state)
        record = _find_thread(index, saver, thread_id)
        spec = get_agent(record.agent, record.graph_module)
        graph = spec.build(checkpointer=saver)
        config = thread_config(record)
        where, snapshot = position(graph, saver, config)
        if where == "waiting":
            answer = answer or Review(action="approve")
            if answer.action != "reject":
                apply_review(snapshot.interrupts[0].value.get("proposal") or {}, answer, spec.document)  # validate only
            graph_input: Any = Command(resume=answer.model_dump(mode="json", exclude_none=True))
        elif where == "unfinished":
            if record.permanent:
                raise InvalidInput(
                    f"thread {thread_id} failed on its input ({record.error}): resuming would fail the same way; "
                    "fix the input and start the agent again"
                )
            if answer is not None:
                raise InvalidInput(
                    f"thread {thread_id} is not waiting for approval: it was {_stopped(record)} before a proposal "
                    f"was ready for review; continue it with `marginalia resume {thread_id}` (no review)"
                )
            graph_input = None
        elif where == "new":
            raise InvalidInput(
                f"thread {thread_id} has no checkpoint to continue from (status: {record.status}): "
                "start the agent again"
            )
        else:
            raise InvalidInput(
                f"thread {thread_id} is not waiting for approval and has nothing left to run (status: {record.status})"
            )
        context = context_for(graph, store_obj, _engine_for(record, engine), password=password)
        index.update(thread_id, status="running", error=None, permanent=False)  # only once nothing can refuse the run
        return Run(
            agent=spec,
            graph=graph,
            input=graph_input,
            config=config,
            context=context,
            index=index,
            record=record,
            lease=held.pop_all(),
        )


def _stopped(record: ThreadRecord) -> str:
    return f"stopped by an error ({record.error})" if record.status == "failed" and record.error else "interrupted"


def start_or_continue(
    agent: str,
    object_uri: str,
    inputs: dict,
    *,
    thread_id: str,
    store: Store | str | None = None,
    engine: Engine | str | None = None,
    approve: bool = False,
    fresh: bool = False,
    password: str | None = None,
) -> Run | RunResult:
    """The run that takes thread ``thread_id`` of ``agent`` on ``object_uri`` forward, whatever
    state it is in (a batch re-run does not know):

    * no checkpoint yet (new, or killed before its first one): a first run with ``inputs``,
      under this thread id;
    * stopped mid-graph (the process died, a node failed): a run with input ``None``, which
      LangGraph continues from the last checkpoint, reusing the saved writes of the nodes that
      completed — they do not run again;
    * waiting at approval, or finished: no run, the :class:`RunResult` of where it stands (a
      finished thread is archived if its process died before archiving it).

    ``fresh`` deletes the thread's checkpoints first (re-run a finished thread).
    """
    spec = get_agent(agent)
    store_obj = resolve_store(store)
    engine_obj = resolve_engine(engine)
    state = state_location(store_obj)
    with _lease(store_obj, state, thread_id) as held:
        store_obj = held.guarded(store_obj)  # every write of the run checks the lease is still ours
        index = ThreadIndex(store_obj, state)
        saver = open_checkpointer(store_obj, state)
        graph = spec.build(checkpointer=saver)
        if fresh:
            saver.delete_thread(thread_id)
        record = index.get(thread_id)
        if record is None or fresh:
            record = index.put(_new_record(spec, thread_id, object_uri, engine, engine_obj))
        run = Run(
            agent=spec,
            graph=graph,
            input=None,
            config=thread_config(record),
            context=context_for(graph, store_obj, engine_obj, password=password),
            index=index,
            record=record,
        )
        where, snapshot = position(graph, saver, run.config)
        if where == "new":
            run.input = {**inputs, "object_uri": object_uri, "auto_approve": bool(approve)}
        elif where in ("waiting", "finished"):
            run.values = dict(snapshot.values or {})
            run.interrupt = snapshot.interrupts[0].value if where == "waiting" else None
            result = run.finish()
            return result if where == "waiting" else _archived(run, result, only_if_missing=True)
        index.update(thread_id, status="running", error=None, permanent=False)
        run.lease = held.pop_all()
        return run


def drive(run: Run, on_update: Observer | None = None) -> RunResult:
    """Execute ``run`` synchronously until the graph ends or stops at an interrupt."""
    try:
        try:
            run.check_lease()  # frozen since it was prepared and taken over meanwhile: write nothing
            for chunk in run.graph.stream(run.input, **run.stream_kwargs):
                run.observe(chunk, on_update)
        except BaseException as exc:
            run.failed(exc)
            raise
        return _archived(run, run.finish())
    finally:
        run.release()


async def adrive(run: Run, on_update: Observer | None = None) -> RunResult:
    """:func:`drive` for asyncio: the same run, through ``graph.astream``."""
    try:
        try:
            await asyncio.to_thread(run.check_lease)
            async for chunk in run.graph.astream(run.input, **run.stream_kwargs):
                run.observe(chunk, on_update)
        except BaseException as exc:
            await asyncio.to_thread(run.failed, exc)
            raise
        result = await asyncio.to_thread(run.finish)  # it rewrites the thread's index record: storage I/O
        return await asyncio.to_thread(_archived, run, result)
    finally:
        await asyncio.to_thread(run.release)


def _archived(run: Run, result: RunResult, *, only_if_missing: bool = False) -> RunResult:
    """End of a thread: write its self-contained trace archive (a thread still waiting for a
    reviewer is not finished, and is not archived). Never fails a finished run.

    ``only_if_missing``: a thread found finished (its process may have died between the last
    checkpoint and the archive) is archived unless its archive is already there.
    """
    from .archive import archive_run, archive_uri

    if result.status == "waiting":
        return result
    if only_if_missing:
        target = archive_uri(run.index.state, run.record.thread_id)
        try:
            run.index.store.head_object(target.bucket, target.key)
            return result
        except MarginaliaError:
            pass
    archive_run(run, result)
    return result
