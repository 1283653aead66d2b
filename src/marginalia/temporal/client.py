"""Start runs on Temporal and answer them: what ``--on temporal`` and ``on="temporal"`` call.

* :func:`start` has the signature of :func:`marginalia.runtime.start` and returns the
  :class:`~marginalia.runtime.RunResult` of the run's first stop, so the API and CLI use it in
  place of a local run. The input is checked here, before anything is started (a missing object
  starts no workflow).
* :func:`review` sends the ``review`` Update to a waiting run (refused by its validator when
  the edit is invalid: :class:`~marginalia.errors.InvalidInput`, the run keeps waiting).
* :func:`submit_batch` starts one run per object under a prefix; the workflow id is the
  thread id derived from the object and its ETag, and the id reuse policy rejects duplicates,
  so submitting the same prefix twice starts nothing twice.

Every coroutine has a blocking twin (``astart``/``start`` ...) over the same core.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Coroutine, Sequence
from datetime import timedelta
from typing import Any, TypeVar

from .. import runtime, tracing
from ..errors import AgentError, InvalidInput, MarginaliaError
from ..storage.base import Store
from ..threads import validate_thread_id
from . import search_attributes as attrs
from .messages import RunRequest, result_from_dict
from .settings import TemporalSettings
from .workflow import AgentRun

__all__ = [
    "areview",
    "astart",
    "asubmit_batch",
    "await_stop",
    "review",
    "runs_on_temporal",
    "start",
    "submit_batch",
    "wait",
]

T = TypeVar("T")


def blocking(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end from sync code, also when this thread already runs a loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    worker = threading.Thread(target=target)
    worker.start()
    worker.join()
    if "error" in box:
        raise box["error"]
    return box["value"]


def _engine_spec(engine: Any) -> str | None:
    if engine is None or isinstance(engine, str):
        return engine
    raise InvalidInput(
        "a run on Temporal takes its engine as a spec (offline, bedrock:<model-id>), not an object: "
        "workers rebuild it (or start workers with --engine-factory module:callable)"
    )


def request_for(
    agent: str,
    object_uri: str,
    inputs: dict,
    *,
    thread_id: str,
    engine: Any,
    approve: bool,
    settings: TemporalSettings,
    remind_after: timedelta | None = None,
    expire_after: timedelta | None = None,
) -> RunRequest:
    from .worker import register_agents

    register_agents()
    spec = runtime.get_agent(agent)
    trace_id = tracing.trace_id_for(thread_id)
    return RunRequest(
        agent=agent,
        object_uri=object_uri,
        inputs=inputs,
        approve=approve,
        engine=_engine_spec(engine),
        graph_module=spec.module,
        remind_after_s=remind_after.total_seconds() if remind_after else None,
        expire_after_s=expire_after.total_seconds() if expire_after else None,
        heartbeat_s=settings.heartbeat_s,
        trace_id=trace_id,
        trace_url=tracing.trace_url(trace_id),
    )


async def _start_workflow(client: Any, request: RunRequest, thread_id: str, settings: TemporalSettings) -> Any:
    """Start the run; None when a workflow with this id exists or existed (nothing started)."""
    from temporalio.common import WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    try:
        return await client.start_workflow(
            AgentRun.run,
            request,
            id=thread_id,
            task_queue=settings.task_queue,
            id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
            search_attributes=attrs.for_run(request.agent, request.object_uri),
            memo={"trace_id": request.trace_id, "trace_url": request.trace_url, "object_uri": request.object_uri},
            static_summary=f"{request.agent} on {request.object_uri}",
        )
    except WorkflowAlreadyStartedError:
        return None


def _failure_message(exc: BaseException) -> str:
    cause: Any = exc
    while getattr(cause, "cause", None) is not None:
        cause = cause.cause
    return str(getattr(cause, "message", None) or cause or exc)


async def wait_stopped(handle: Any) -> runtime.RunResult:
    """The run's RunResult once it stopped (waiting for approval, or ended)."""
    from temporalio.client import WorkflowExecutionStatus, WorkflowFailureError
    from temporalio.service import RPCError

    try:
        return result_from_dict(await handle.execute_update(AgentRun.stopped))
    except (RPCError, Exception) as exc:  # the run has closed: its result, or why it failed
        desc = await handle.describe()
        if desc.status == WorkflowExecutionStatus.RUNNING:
            raise AgentError(f"thread {handle.id}: {_failure_message(exc)}") from None
    try:
        return result_from_dict(await handle.result())
    except WorkflowFailureError as exc:
        raise AgentError(_failure_message(exc)) from None


async def astart(
    agent: str,
    object_uri: str,
    inputs: dict,
    *,
    engine: Any = None,
    approve: bool = False,
    thread_id: str | None = None,
    store: Store | str | None = None,
    preflight: runtime.Preflight | None = None,
    password: str | None = None,
    remind_after: timedelta | None = None,
    expire_after: timedelta | None = None,
    wait: bool = True,
) -> runtime.RunResult | str:
    """Start ``agent`` on ``object_uri`` as a Temporal run; its first stop (or its id if not ``wait``)."""
    if password is not None:
        raise InvalidInput(
            "a password cannot travel with a Temporal run (it would be kept in its history): "
            "set MARGINALIA_PDF_PASSWORD on the workers"
        )
    settings = TemporalSettings.from_env()
    from .worker import register_agents

    register_agents()
    spec = runtime.get_agent(agent)
    thread_id = validate_thread_id(thread_id) if thread_id else runtime.new_thread_id(agent)

    def checked() -> None:
        store_obj = runtime.resolve_store(store)
        runtime.check_input(
            spec.build(), store_obj, object_uri, preflight, spec=spec, inputs=inputs, thread_id=thread_id
        )

    await asyncio.to_thread(checked)
    request = request_for(
        agent,
        object_uri,
        inputs,
        thread_id=thread_id,
        engine=engine,
        approve=approve,
        settings=settings,
        remind_after=remind_after,
        expire_after=expire_after,
    )
    client = await settings.connect()
    handle = await _start_workflow(client, request, thread_id, settings)
    if handle is None:
        raise InvalidInput(f"thread {thread_id} already exists on Temporal: approve or inspect it, or start a new one")
    return await wait_stopped(handle) if wait else thread_id


def start(agent: str, object_uri: str, inputs: dict, **kwargs: Any) -> runtime.RunResult:
    """Blocking twin of :func:`astart` (the ``starter`` the API hands its agents' inputs to)."""
    result = blocking(astart(agent, object_uri, inputs, **kwargs))
    assert isinstance(result, runtime.RunResult)
    return result


async def _handle_of(thread_id: str) -> Any | None:
    """The workflow of thread ``thread_id`` on the configured Temporal service, or None."""
    from temporalio.service import RPCError, RPCStatusCode

    client = await TemporalSettings.from_env().connect()
    handle = client.get_workflow_handle(thread_id)
    try:
        await handle.describe()
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return None
        raise
    return handle


def runs_on_temporal(thread_id: str) -> bool:
    """True when ``MARGINALIA_TEMPORAL`` is set and a workflow runs (or ran) thread ``thread_id``.

    The local path never pays for this: without ``MARGINALIA_TEMPORAL`` it is one env lookup."""
    if not TemporalSettings.configured():
        return False
    validate_thread_id(thread_id)
    return blocking(_handle_of(thread_id)) is not None


async def await_stop(thread_id: str) -> runtime.RunResult:
    """Where thread ``thread_id`` stops next (waiting for approval, or its end)."""
    handle = await _handle_of(thread_id)
    if handle is None:
        raise InvalidInput(f"no Temporal run for thread {thread_id}")
    return await wait_stopped(handle)


def wait(thread_id: str) -> runtime.RunResult:
    """Blocking twin of :func:`await_stop`."""
    return blocking(await_stop(thread_id))


async def areview(thread_id: str, answer: dict) -> runtime.RunResult:
    """Send the review Update; the RunResult of where the thread stopped next."""
    from temporalio.client import WorkflowUpdateFailedError
    from temporalio.service import RPCError

    handle = await _handle_of(thread_id)
    if handle is None:
        raise InvalidInput(f"no Temporal run for thread {thread_id}")
    try:
        data = await handle.execute_update(AgentRun.review, answer)
    except WorkflowUpdateFailedError as exc:  # the validator refused it: the run keeps waiting
        raise InvalidInput(_failure_message(exc)) from None
    except RPCError as exc:  # the workflow has closed
        raise InvalidInput(f"thread {thread_id} is not waiting for approval: {exc.message}") from None
    if data.get("status") == "failed":
        return await wait_stopped(handle)
    return result_from_dict(data)


def review(thread_id: str, answer: dict) -> runtime.RunResult:
    return blocking(areview(thread_id, answer))


async def asubmit_batch(
    prefix_uri: str,
    *,
    agent: str = "minutes",
    approve: bool = False,
    force: bool = False,
    suffix: str | Sequence[str] | None = None,
    store: Store | str | None = None,
    engine: Any = None,
    wait: bool = True,
    on_row: Callable[[Any], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> list:
    """One Temporal run per matching object (see :func:`marginalia.batch.batch`); the rows.

    Objects that carry the agent's annotation are skipped; an object whose thread was submitted
    before starts nothing (its row reports that run). ``wait`` waits for every run's first stop.
    """
    from .. import batch as local

    if force:
        raise InvalidInput("--force is not supported with --on temporal: delete the annotation to run an object again")
    spec = local.batch_agent(agent)  # the registered agent; spec.batch says how a batch runs it
    settings = TemporalSettings.from_env()
    store_obj = runtime.resolve_store(store)
    assert spec.batch is not None  # batch_agent returns only agents with a batch plan
    suffixes = [suffix] if isinstance(suffix, str) else list(suffix or spec.batch.suffixes())
    objects = await asyncio.to_thread(local.list_matching, store_obj, prefix_uri, suffixes)
    if on_start is not None:
        on_start(len(objects))
    client = await settings.connect()
    gate = asyncio.Semaphore(32)

    async def one(info: Any) -> Any:
        async with gate:
            row = await _batch_row(client, settings, spec, info, store_obj, engine, approve, wait)
        if on_row is not None:
            on_row(row)
        return row

    return list(await asyncio.gather(*(one(o) for o in objects)))


async def _batch_row(client, settings, spec, info, store_obj, engine, approve, wait):
    from .. import batch as local

    uri = info.uri
    marker = spec.batch.annotation
    if await asyncio.to_thread(local._has_annotation, store_obj, info, marker):
        return local.BatchRow(uri, "skipped", None, f"already has {marker}")
    thread_id = local.thread_id_for(spec.name, info)
    try:
        request = request_for(
            spec.name, uri, spec.batch.inputs(), thread_id=thread_id, engine=engine, approve=approve, settings=settings
        )
        handle = await _start_workflow(client, request, thread_id, settings)
        started = handle is not None
        handle = handle or client.get_workflow_handle(thread_id)
        if not wait:
            return local.BatchRow(uri, "waiting", thread_id, "submitted" if started else "submitted before")
        result = await wait_stopped(handle)
    except MarginaliaError as exc:
        return local.BatchRow(uri, "failed", thread_id, str(exc)[:500])
    note = "" if started else " (submitted before: nothing started)"
    if result.status == "waiting":
        return local.BatchRow(uri, "waiting", thread_id, f"approve: marginalia approve {thread_id}{note}")
    if result.status != "done":
        return local.BatchRow(uri, "failed", thread_id, f"{result.status}: nothing written{note}")
    names = tuple(a.name for a in result.annotations)
    return local.BatchRow(uri, "done", thread_id, ", ".join(names) + note, names)


def submit_batch(prefix_uri: str, **kwargs: Any) -> list:
    return blocking(asubmit_batch(prefix_uri, **kwargs))
