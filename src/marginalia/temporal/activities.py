"""The activities of a Marginalia run: drive the LangGraph thread to its next stop, on S3Saver.

Pattern (a) of issue 11: one activity runs the agent's own compiled graph (the same
``minutes``/``pdf_summary``/``ppt_outline`` as everywhere else) through the runtime
(:func:`~marginalia.runtime.start_or_continue`/:func:`~marginalia.runtime.resume` then
:func:`~marginalia.runtime.adrive`), checkpointing every step to ``MARGINALIA_STATE``. An
attempt that dies (kill -9, a lost machine: no heartbeat) is retried by Temporal on any worker,
and the retry goes on from the thread's last checkpoint: completed nodes do not run again, and
annotation writes stay idempotent (``ObjectIfMatch`` + already-written checks), so each
annotation is written once.

The thread's lease (:mod:`marginalia.lease`) is still taken: a retried attempt racing a
zombie one gets :class:`~marginalia.errors.ThreadBusy`, which Temporal retries with backoff.
Bad input and configuration errors are not retried (the run fails with their one line).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from .. import runtime
from ..errors import AgentError, ConfigurationError, InvalidInput, MarginaliaError
from ..extras import requires
from ..threads import ThreadIndex
from .messages import DriveStep, RunRequest, result_to_dict

with requires("temporal", "running on Temporal (marginalia worker, --on temporal)"):
    from temporalio import activity
    from temporalio.exceptions import ApplicationError

__all__ = ["NON_RETRYABLE", "ThreadActivities"]

log = logging.getLogger(__name__)

#: Error types a retry cannot fix (the run fails at once, its one line in the failure).
NON_RETRYABLE = (InvalidInput, ConfigurationError, AgentError)


def _registered(request: RunRequest) -> runtime.AgentSpec:
    return runtime.get_agent(request.agent, request.graph_module)


def _reviewable(thread_id: str, reviewed_iterations: int) -> bool:
    """True when the thread still waits on the proposal the workflow's review answers."""
    store = runtime.resolve_store(None)
    state = runtime.state_location(store)
    saver = runtime.open_checkpointer(store, state)
    record = ThreadIndex(store, state).get(thread_id)
    if record is None:
        return False
    graph = runtime.get_agent(record.agent, record.graph_module).build(checkpointer=saver)
    where, snapshot = runtime.position(graph, saver, runtime.thread_config(record))
    return where == "waiting" and len((snapshot.values or {}).get("iterations") or []) == reviewed_iterations


class ThreadActivities:
    """Activities bound to a worker's options (an engine every run of this worker uses)."""

    def __init__(self, engine: Any = None):
        self.engine = engine  # an Engine / chat model; None: each run's own spec

    def _prepare(self, step: DriveStep, thread_id: str) -> runtime.Run | runtime.RunResult:
        request = step.request
        _registered(request)
        engine = self.engine if self.engine is not None else request.engine
        if step.review is not None and _reviewable(thread_id, step.reviewed_iterations):
            return runtime.resume(thread_id, step.review, engine=engine)
        return runtime.start_or_continue(
            request.agent,
            request.object_uri,
            request.inputs,
            thread_id=thread_id,
            engine=engine,
            approve=request.approve,
        )

    @activity.defn(name="marginalia.drive_thread")
    async def drive_thread(self, step: DriveStep) -> dict:
        """Take the thread (id = the workflow id) to its next interrupt or its end; the RunResult."""
        info = activity.info()
        beat = asyncio.create_task(_heartbeat(step.request.heartbeat_s / 3))
        try:
            prepared = await asyncio.to_thread(self._prepare, step, str(info.workflow_id))
            if isinstance(prepared, runtime.RunResult):  # waiting or finished already (a retried attempt)
                return result_to_dict(prepared)
            # runtime.adrive streams with durability="sync" (runtime.DURABILITY): each step's checkpoint is
            # saved before the next step's tasks start, so a retried attempt never re-runs a completed node
            # (tests/temporal/test_durability.py).
            prepared.config["metadata"].update(  # into checkpoints, provenance and the archive
                temporal_workflow_id=info.workflow_id,
                temporal_run_id=info.workflow_run_id,
                temporal_namespace=info.workflow_namespace,
            )
            return result_to_dict(await runtime.adrive(prepared))
        except NON_RETRYABLE as exc:
            raise ApplicationError(str(exc), type=type(exc).__name__, non_retryable=True) from None
        except MarginaliaError as exc:  # ThreadBusy, transient storage errors: retried with backoff
            raise ApplicationError(str(exc), type=type(exc).__name__) from None
        finally:
            beat.cancel()

    @activity.defn(name="marginalia.expire_thread")
    async def expire_thread(self, thread_id: str) -> None:
        """The approval expired: the thread's index record says so; nothing is written on the object."""

        def mark() -> None:
            store = runtime.resolve_store(None)
            ThreadIndex(store, runtime.state_location(store)).update(
                thread_id, status="expired", error="approval expired"
            )

        await asyncio.to_thread(mark)

    @activity.defn(name="marginalia.remind")
    async def remind(self, thread_id: str) -> None:
        """A reminder that a proposal still waits (logged by the worker; plug a notifier here)."""
        log.warning("thread %s still waits for approval: marginalia approve %s", thread_id, thread_id)

    def all(self) -> list:
        return [self.drive_thread, self.expire_thread, self.remind]


async def _heartbeat(every: float) -> None:
    while True:
        activity.heartbeat()
        await asyncio.sleep(max(0.2, every))
