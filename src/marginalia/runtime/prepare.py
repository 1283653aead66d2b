"""Preparing a run: :func:`start` (a new thread), :func:`resume` (answer a review, or continue a
stopped thread) and :func:`start_or_continue` (whatever state the thread is in, as ``batch`` needs).
Each checks its input before anything is written and takes the thread's lease first."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from langgraph.types import Command

from ..agents import AgentSpec, get_agent
from ..context import rebuildable_engine, resolve_engine, resolve_store, state_location
from ..engines.base import Engine
from ..errors import ConfigurationError, InvalidInput
from ..schemas import Review
from ..storage.base import ObjectInfo, Store
from ..threads import ThreadIndex, ThreadRecord, validate_thread_id
from ..uri import parse_uri
from .drive import archived
from .records import find_thread, new_record, new_thread_id, position, thread_config
from .results import RunResult
from .run import Preflight, Run, context_for, hold_lease, open_checkpointer

__all__ = ["check_input", "parse_review", "resume", "start", "start_or_continue"]


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
    with hold_lease(store_obj, state, thread_id) as held:
        store_obj = held.guarded(store_obj)  # every write of the run checks the lease is still ours
        index = ThreadIndex(store_obj, state)
        if index.get(thread_id) is not None:
            raise InvalidInput(
                f"thread {thread_id} already exists: resume it, or start without --thread to get a new one"
            )
        graph = graph.copy(update={"checkpointer": open_checkpointer(store_obj, state)})
        record = index.put(new_record(spec, thread_id, object_uri, engine, engine_obj))
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
) -> Run | RunResult:
    """Prepare the run that takes thread ``thread_id`` forward, in any process.

    * waiting at approval: ``review`` answers it (None approves). The review is validated
      against the pending proposal BEFORE anything runs, so a bad edit is refused and the thread
      keeps waiting;
    * interrupted (its process died) or failed: it continues from its last checkpoint; a review
      is refused, there is no proposal to answer;
    * finished: refused; unless a kill left its bookkeeping undone (its index record not saying
      ``done``, or its trace archive missing): that is completed, and the :class:`RunResult`
      returned (no node runs again).

    The agent is found from the thread index (or checkpoint metadata) and its graph rebuilt on
    the checkpointer. ``password`` opens encrypted PDFs for agents that read them (run context
    only, never stored).
    """
    from ..nodes.review import apply_review

    validate_thread_id(thread_id)
    answer = parse_review(review) if review is not None else None
    store_obj = resolve_store(store)
    state = state_location(store_obj)
    with hold_lease(store_obj, state, thread_id) as held:
        store_obj = held.guarded(store_obj)  # every write of the run checks the lease is still ours
        index = ThreadIndex(store_obj, state)
        saver = open_checkpointer(store_obj, state)
        record = find_thread(index, saver, thread_id)
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
        elif answer is None and _bookkeeping_left(index, record):
            # finished in its checkpoints, but a kill came before its record said so or its archive
            # was written: complete those (no node runs; the engine is not used)
            run = Run(
                agent=spec,
                graph=graph,
                input=None,
                config=config,
                context=context_for(graph, store_obj, resolve_engine(engine)),
                index=index,
                record=record,
                values=dict(snapshot.values or {}),
            )
            return archived(run, run.finish(), only_if_missing=True)
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


def _bookkeeping_left(index: ThreadIndex, record: ThreadRecord) -> bool:
    """A finished thread whose index record does not say how it ended, or without its archive."""
    from ..archive import archive_uri
    from ..errors import ObjectNotFound

    if record.status not in ("done", "rejected"):
        return True
    target = archive_uri(index.state, record.thread_id)
    try:
        index.store.head_object(target.bucket, target.key)
    except ObjectNotFound:
        return True
    return False


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
    with hold_lease(store_obj, state, thread_id) as held:
        store_obj = held.guarded(store_obj)  # every write of the run checks the lease is still ours
        index = ThreadIndex(store_obj, state)
        saver = open_checkpointer(store_obj, state)
        graph = spec.build(checkpointer=saver)
        if fresh:
            saver.delete_thread(thread_id)
        record = index.get(thread_id)
        if record is None or fresh:
            record = index.put(new_record(spec, thread_id, object_uri, engine, engine_obj))
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
            return result if where == "waiting" else archived(run, result, only_if_missing=True)
        index.update(thread_id, status="running", error=None, permanent=False)
        run.lease = held.pop_all()
        return run
