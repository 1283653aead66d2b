"""One workflow per agent run: drive, wait for a person at zero compute, answer, repeat.

:class:`AgentRun` (workflow id = thread id) loops: the ``drive_thread`` activity takes the
LangGraph thread to its next stop; at the approval interrupt the workflow waits — no activity
runs, no worker is busy, for days if need be — for the ``review`` Update (approve / edit with a
document or a JSON Patch / reject with feedback). The Update's validator applies the same
:func:`~marginalia.nodes.review.apply_review` rules as a local resume, so an invalid edit is
refused before it enters the history and the run keeps waiting. Optional durable timers: a
reminder after ``remind_after_s`` and an expiry after ``expire_after_s`` (the run ends
``expired``, nothing written).

The workflow's own code is deterministic (timers, conditions and activity calls only); it runs
outside the SDK's sandbox because its validator needs the agents' pydantic document schemas,
which it only reads.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from ..extras import requires
from . import search_attributes as attrs
from .messages import DriveStep, RunRequest

with requires("temporal", "running on Temporal (marginalia worker, --on temporal)"):
    from temporalio import workflow
    from temporalio.common import RetryPolicy
    from temporalio.exceptions import ActivityError, ApplicationError

__all__ = ["AgentRun", "RUN_TIMEOUT"]

#: The longest one drive may take (a long PDF on a slow model), beyond heartbeats.
RUN_TIMEOUT = timedelta(hours=6)
RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
    non_retryable_error_types=["InvalidInput", "ConfigurationError", "AgentError"],
)


def check_review(agent: str, graph_module: str | None, proposal: dict | None, answer: Any) -> None:
    """Refuse a review the runtime would refuse (InvalidInput naming the problem)."""
    from ..nodes.review import apply_review
    from ..runtime import get_agent, parse_review

    review = parse_review(answer)
    if review.action != "reject":
        apply_review(proposal or {}, review, get_agent(agent, graph_module).document)


@workflow.defn(name="MarginaliaRun", sandboxed=False)
class AgentRun:
    def __init__(self) -> None:
        self.request: RunRequest | None = None
        self.result: dict | None = None
        self.status = "running"
        self.answer: dict | None = None  # the review Update's answer, until a drive takes it
        self.rounds = 0  # drives finished

    def _set_status(self, status: str) -> None:
        self.status = status
        workflow.upsert_search_attributes([attrs.STATUS.value_set(status)])

    async def _drive(self, review: dict | None) -> dict:
        assert self.request is not None
        step = DriveStep(
            request=self.request,
            review=review,
            reviewed_iterations=int((self.result or {}).get("iterations") or 0),
        )
        self._set_status("running")
        try:
            result = await workflow.execute_activity(
                "marginalia.drive_thread",
                step,
                result_type=dict,
                start_to_close_timeout=RUN_TIMEOUT,
                heartbeat_timeout=timedelta(seconds=self.request.heartbeat_s),
                retry_policy=RETRY,
                summary=f"drive {self.request.agent} on {self.request.object_uri}",
            )
        except ActivityError as exc:
            self._set_status("failed")
            self.rounds += 1
            cause = exc.cause
            message = str(cause.message if isinstance(cause, ApplicationError) else cause or exc)
            raise ApplicationError(
                f"thread {workflow.info().workflow_id} failed: {message}",
                type=getattr(cause, "type", None) or "RunFailed",
                non_retryable=True,
            ) from None
        self.result = result
        self.rounds += 1
        self._set_status(result["status"])
        return result

    async def _await_review(self) -> bool:
        """Wait for the review Update (True) or the expiry (False); remind once on the way."""
        assert self.request is not None
        expire = self.request.expire_after_s
        remind = self.request.remind_after_s
        if remind is not None and (expire is None or remind < expire):
            try:
                await workflow.wait_condition(lambda: self.answer is not None, timeout=remind, timeout_summary="remind")
                return True
            except TimeoutError:
                await workflow.execute_activity(
                    "marginalia.remind", workflow.info().workflow_id, start_to_close_timeout=timedelta(minutes=1)
                )
                expire = None if expire is None else expire - remind
        try:
            await workflow.wait_condition(lambda: self.answer is not None, timeout=expire, timeout_summary="expire")
            return True
        except TimeoutError:
            return False

    @workflow.run
    async def run(self, request: RunRequest) -> dict:
        self.request = request
        result = await self._drive(None)
        while result["status"] == "waiting":
            if not await self._await_review():
                await workflow.execute_activity(
                    "marginalia.expire_thread",
                    workflow.info().workflow_id,
                    start_to_close_timeout=timedelta(minutes=5),
                    retry_policy=RETRY,
                )
                result = {**result, "status": "expired"}
                self.result = result
                self._set_status("expired")
                self.rounds += 1
                break
            answer, self.answer = self.answer, None
            result = await self._drive(answer)
        await workflow.wait_condition(workflow.all_handlers_finished)
        return result

    @workflow.update
    async def review(self, answer: dict) -> dict:
        """Answer the waiting proposal; returns where the thread stopped next (a RunResult dict)."""
        before = self.rounds
        self.answer = answer
        await workflow.wait_condition(lambda: self.rounds > before)
        return {**(self.result or {}), "status": self.status}

    @review.validator
    def _validate_review(self, answer: dict) -> None:
        if self.status != "waiting" or self.answer is not None or self.request is None:
            raise ApplicationError(
                f"thread {workflow.info().workflow_id} is not waiting for approval (status: {self.status})",
                type="InvalidInput",
            )
        try:
            check_review(self.request.agent, self.request.graph_module, (self.result or {}).get("proposal"), answer)
        except Exception as exc:  # InvalidInput and friends: the Update is refused, the run keeps waiting
            raise ApplicationError(str(exc), type=type(exc).__name__) from None

    @workflow.update
    async def stopped(self) -> dict:
        """Returns once the current drive has stopped (waiting, or the end): the RunResult dict."""
        await workflow.wait_condition(lambda: self.rounds > 0 and self.status != "running")
        return {**(self.result or {}), "status": self.status}

    @workflow.query
    def current(self) -> dict:
        return {"status": self.status, "result": self.result, "rounds": self.rounds}
