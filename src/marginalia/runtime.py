"""The rails every Marginalia agent runs on: context, registry, checkpointer, thread index, runs.

An *agent* is a LangGraph graph builder registered here with :func:`register_agent`. This module
gives every agent the same behaviour, so the minutes agent, the PDF summariser and the PPT
outliner differ only in their graphs:

* **Context** — nodes get the store and engine from LangGraph's runtime context
  (:class:`AgentContext`, declared as ``context_schema``) through :func:`rails`, which falls back
  to the environment (``MARGINALIA_STORE``/``MARGINALIA_ENGINE``) when no context was given, as
  under ``langgraph dev``. The same compiled graph thus runs from the API, the CLI and the server.
* **Persistence** — checkpoints go to the S3 checkpointer at ``MARGINALIA_STATE``; the small
  :class:`~marginalia.threads.ThreadIndex` beside them records every thread's status.
* **Runs** — :func:`start` and :func:`resume` prepare a :class:`Run`; :func:`drive` (sync) and
  :func:`adrive` (async) are the only difference between the twins: one iterates
  ``graph.stream``, the other ``graph.astream``, and both feed the same :meth:`Run.observe` and
  :meth:`Run.finish`.
* **Tracing** — the trace id is derived from the thread id (:mod:`marginalia.tracing`) and put
  in the run config's ``metadata``, so it lands in every checkpoint's metadata and in provenance.
"""

from __future__ import annotations

import asyncio
import importlib
import threading
import uuid
from contextlib import AbstractContextManager, nullcontext
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from langgraph.types import Command

from . import tracing
from .config import Settings, open_store
from .engines.base import Engine
from .errors import ConfigurationError, InvalidInput, MarginaliaError
from .schemas import Review
from .storage.base import Store
from .threads import ThreadIndex, ThreadRecord, utcnow, validate_thread_id
from .uri import S3URI, parse_uri

__all__ = [
    "AgentContext",
    "AgentSpec",
    "Rails",
    "Run",
    "RunResult",
    "WrittenAnnotation",
    "adrive",
    "agent_names",
    "drive",
    "engine_spec_of",
    "engine_turn",
    "get_agent",
    "open_checkpointer",
    "rails",
    "register_agent",
    "resume",
    "start",
]


# --- context -------------------------------------------------------------------------------
@dataclass
class AgentContext:
    """LangGraph runtime context of every agent graph (``context_schema=AgentContext``).

    Each field may be an object, a spec string, or None for the environment's default, so the
    context can come from Python (objects), from the LangGraph server (JSON) or not at all.
    Context is never checkpointed: a resumed run gets a fresh one.
    """

    store: Store | str | None = None
    engine: Engine | str | None = None
    #: boto3 clients by service name (e.g. ``{"transcribe": client}``) for nodes that call AWS
    #: services other than S3; None means clients from the environment.
    clients: dict[str, Any] | None = None


@dataclass(frozen=True)
class Rails:
    """What a node works with, resolved from the context and the environment."""

    store: Store
    engine: Engine
    clients: Mapping[str, Any] = field(default_factory=dict)


_DEFAULTS: dict[tuple[str, str], Any] = {}


def _default(kind: str, spec: str, factory: Callable[[str], Any]) -> Any:
    """One store/engine per spec and process (a node runs many times; opening is not free)."""
    key = (kind, spec)
    if key not in _DEFAULTS:
        _DEFAULTS[key] = factory(spec)
    return _DEFAULTS[key]


def make_engine(spec: Any) -> Engine:
    from .engines import make_engine as factory

    return factory(spec)


def resolve_store(store: Store | str | None) -> Store:
    if isinstance(store, Store):
        return store
    spec = store or Settings.from_env().store
    return _default("store", spec, open_store)


def resolve_engine(engine: Any) -> Engine:
    """An Engine from an Engine, a LangChain chat model, a spec string or None (environment)."""
    if engine is None or isinstance(engine, str):
        spec = engine or Settings.from_env().engine
        return _default("engine", spec, make_engine)
    return make_engine(engine)


def rails(runtime: Any) -> Rails:
    """The store and engine for a node, from ``runtime.context`` or the environment."""
    ctx = getattr(runtime, "context", None)
    if isinstance(ctx, Mapping):  # the LangGraph server passes context as JSON
        ctx = AgentContext(**{k: ctx.get(k) for k in ("store", "engine")})
    ctx = ctx or AgentContext()
    return Rails(store=resolve_store(ctx.store), engine=resolve_engine(ctx.engine), clients=ctx.clients or {})


_CPU_ENGINE_LOCK = threading.Lock()


def engine_turn(engine: Engine) -> AbstractContextManager:
    """Hold this around an engine call made from parallel ``Send`` branches.

    Model-calling engines run branches concurrently (they wait on the network). The offline
    engine computes in Python: under the GIL parallel branches gain nothing, and its text stack
    (sumy/yake) is not re-entrant — parallel calls gave different minutes than serial ones — so
    its calls take turns, which keeps results deterministic.
    """
    return _CPU_ENGINE_LOCK if getattr(engine, "name", None) == "offline" else nullcontext()


def engine_spec_of(engine: Engine | str | None) -> str:
    """The spec that rebuilds ``engine`` in another process (``offline``, ``bedrock:<id>``...)."""
    if engine is None:
        return Settings.from_env().engine
    if isinstance(engine, str):
        return engine
    if engine.name in ("offline",):
        return "offline"
    return f"{engine.name}:{engine.model}" if engine.model else engine.name


def _rebuildable(spec: str | None) -> bool:
    return bool(spec) and (spec == "offline" or spec.startswith("bedrock:"))


# --- registry ------------------------------------------------------------------------------
@dataclass(frozen=True)
class AgentSpec:
    """An agent as the rails know it.

    ``build(checkpointer=None)`` returns the compiled graph. ``document`` is the pydantic model
    of the document a reviewer approves (edits are validated against it). ``render(proposal)``
    returns a rich renderable for the CLI (optional; JSON otherwise). ``module`` is imported to
    register the agent again in a process that only knows a thread id.
    """

    name: str
    build: Callable[..., Any]
    document: type
    module: str
    render: Callable[[dict], Any] | None = None


_AGENTS: dict[str, AgentSpec] = {}


def register_agent(
    name: str, build: Callable[..., Any], *, document: type, render: Callable[[dict], Any] | None = None
) -> AgentSpec:
    """Register an agent graph builder under ``name`` (call it at import of the graph module)."""
    spec = AgentSpec(name=name, build=build, document=document, module=build.__module__, render=render)
    _AGENTS[name] = spec
    return spec


def agent_names() -> list[str]:
    return sorted(_AGENTS)


def get_agent(name: str, module: str | None = None) -> AgentSpec:
    """The registered agent ``name``, importing ``module`` first when given and needed."""
    if name not in _AGENTS and module:
        importlib.import_module(module)
    if name not in _AGENTS:
        raise ConfigurationError(f"no agent named {name!r} is registered (known: {', '.join(agent_names()) or 'none'})")
    return _AGENTS[name]


# --- persistence ---------------------------------------------------------------------------
def state_location(store: Store) -> S3URI:
    """``MARGINALIA_STATE``; on the local store its bucket is created on first use."""
    from .config import DEFAULT_LOCAL_STATE

    settings = Settings.from_env()
    if settings.state:
        state = parse_uri(settings.state, require_key=False)
    elif store.kind == "local":
        state = parse_uri(DEFAULT_LOCAL_STATE, require_key=False)
    else:
        state = settings.state_uri()  # raises the ConfigurationError that says what to set
    if store.kind == "local":
        store.create_bucket(state.bucket, exist_ok=True)
    return state


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


# --- runs ----------------------------------------------------------------------------------
Observer = Callable[[str, Any], None]


@dataclass
class Run:
    """One prepared invocation of an agent graph; :func:`drive`/:func:`adrive` execute it."""

    agent: AgentSpec
    graph: Any
    input: Any
    config: dict
    context: AgentContext
    index: ThreadIndex
    record: ThreadRecord
    values: dict = field(default_factory=dict)
    interrupt: Any = None

    @property
    def stream_kwargs(self) -> dict:
        return {"config": self.config, "context": self.context, "stream_mode": ["updates", "values"]}

    def observe(self, chunk: tuple[str, Any], on_update: Observer | None) -> None:
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
        message = str(exc) if isinstance(exc, MarginaliaError) else f"{type(exc).__name__}: {exc}"
        self.index.update(self.record.thread_id, status="failed", error=message[:2000])

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
        )


def _config(record: ThreadRecord) -> dict:
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


def start(
    agent: str,
    object_uri: str,
    inputs: dict,
    *,
    engine: Engine | str | None = None,
    approve: bool = False,
    thread_id: str | None = None,
    store: Store | str | None = None,
) -> Run:
    """Prepare the first run of ``agent`` on ``object_uri`` (records the thread as running).

    ``inputs`` is the agent's own part of the initial state; the rails add ``object_uri`` and
    ``auto_approve`` (``approve=True`` passes the review node without stopping).
    """
    spec = get_agent(agent)
    parse_uri(object_uri)
    thread_id = validate_thread_id(thread_id) if thread_id else new_thread_id(agent)
    store_obj = resolve_store(store)
    engine_obj = resolve_engine(engine)
    state = state_location(store_obj)
    index = ThreadIndex(store_obj, state)
    graph = spec.build(checkpointer=open_checkpointer(store_obj, state))
    if index.get(thread_id) is not None:
        raise InvalidInput(f"thread {thread_id} already exists: resume it, or start without --thread to get a new one")
    record = index.put(
        ThreadRecord(
            thread_id=thread_id,
            agent=agent,
            object_uri=object_uri,
            status="running",
            trace_id=tracing.trace_id_for(thread_id),
            graph_module=spec.module,
            engine=engine if isinstance(engine, str) else engine_spec_of(engine_obj),
        )
    )
    return Run(
        agent=spec,
        graph=graph,
        input={**inputs, "object_uri": object_uri, "auto_approve": bool(approve)},
        config=_config(record),
        context=AgentContext(store=store_obj, engine=engine_obj),
        index=index,
        record=record,
    )


def _find_thread(index: ThreadIndex, saver: Any, thread_id: str) -> ThreadRecord:
    """The thread's index record, rebuilt from checkpoint metadata if the index lost it."""
    record = index.get(thread_id)
    if record is not None:
        return record
    found = saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    meta = (found.metadata or {}) if found else {}
    if not meta.get("agent"):
        raise InvalidInput(f"no thread {thread_id!r} in {index.bucket}/{index.prefix} (see `marginalia threads`)")
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


def resume(
    thread_id: str,
    review: Review | Mapping | str,
    *,
    engine: Engine | str | None = None,
    store: Store | str | None = None,
) -> Run:
    """Prepare the run that answers the approval interrupt of ``thread_id`` with ``review``.

    Works in any process: the agent is found from the thread index (or checkpoint metadata),
    its graph rebuilt on the checkpointer, and the review validated against the pending
    proposal BEFORE anything runs, so a bad edit is refused and the thread keeps waiting.
    """
    from .nodes.review import apply_review

    validate_thread_id(thread_id)
    review = parse_review(review)
    store_obj = resolve_store(store)
    state = state_location(store_obj)
    index = ThreadIndex(store_obj, state)
    saver = open_checkpointer(store_obj, state)
    record = _find_thread(index, saver, thread_id)
    spec = get_agent(record.agent, record.graph_module)
    graph = spec.build(checkpointer=saver)
    config = _config(record)
    snapshot = graph.get_state(config)
    pending = [i.value for i in snapshot.interrupts] if snapshot else []
    if not pending:
        raise InvalidInput(f"thread {thread_id} is not waiting for approval (status: {record.status})")
    if review.action != "reject":
        apply_review(pending[0].get("proposal") or {}, review, spec.document)  # validate only
    if engine is None:
        if record.engine and not _rebuildable(record.engine):
            raise ConfigurationError(
                f"thread {thread_id} was started with engine {record.engine!r}, which cannot be rebuilt from "
                "its name: pass the same engine object to resume"
            )
        engine = record.engine
    index.update(thread_id, status="running", error=None)
    return Run(
        agent=spec,
        graph=graph,
        input=Command(resume=review.model_dump(mode="json", exclude_none=True)),
        config=config,
        context=AgentContext(store=store_obj, engine=resolve_engine(engine)),
        index=index,
        record=record,
    )


def drive(run: Run, on_update: Observer | None = None) -> RunResult:
    """Execute ``run`` synchronously until the graph ends or stops at an interrupt."""
    try:
        for chunk in run.graph.stream(run.input, **run.stream_kwargs):
            run.observe(chunk, on_update)
    except BaseException as exc:
        run.failed(exc)
        raise
    return _archived(run, run.finish())


async def adrive(run: Run, on_update: Observer | None = None) -> RunResult:
    """:func:`drive` for asyncio: the same run, through ``graph.astream``."""
    try:
        async for chunk in run.graph.astream(run.input, **run.stream_kwargs):
            run.observe(chunk, on_update)
    except BaseException as exc:
        run.failed(exc)
        raise
    result = run.finish()
    await asyncio.to_thread(_archived, run, result)
    return result


def _archived(run: Run, result: RunResult) -> RunResult:
    """End of a thread: write its self-contained trace archive (a thread still waiting for a
    reviewer is not finished, and is not archived). Never fails a finished run."""
    from .archive import archive_run

    archive_run(run, result)
    return result


def now() -> str:
    """ISO-8601 UTC timestamp used in iterations and provenance."""
    return utcnow()
