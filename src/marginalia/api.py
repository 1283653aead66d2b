"""The Python API: run an agent to its approval point, then resume it, from any process.

>>> import marginalia
>>> r = marginalia.minutes("s3://demo/meetings/standup.vtt")      # stops at approval
>>> r.status, r.thread_id, r.proposal["action_items"]
>>> done = marginalia.resume(r.thread_id, action="approve")       # writes the annotations
>>> [a.name for a in done.annotations]                            # ['meeting_minutes', 'action_items']
>>> marginalia.resume(crashed_thread_id)                          # a run that died or failed goes on

Bad input (a missing object, no transcript to be found) is refused before a thread is created.
Only one worker runs a thread at a time: a second one gets ``ThreadBusy`` before it runs anything.

``on="temporal"`` runs the agent as a Temporal workflow instead (``MARGINALIA_TEMPORAL``; see
:mod:`marginalia.temporal`): the same result comes back, and :func:`resume` of a Temporal-run
thread sends the review to its workflow.

Each sync function has an async twin (``aminutes``, ``aresume``). Both share one core: the run
is prepared by :mod:`marginalia.runtime` (in a worker thread for the async twin, since that
touches storage) and only the graph call differs (``stream`` or ``astream``).
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from .engines.base import Engine
from .errors import InvalidInput
from .runtime import Observer, Run, RunResult, WrittenAnnotation, adrive, drive
from .runtime import resume as prepare_resume
from .runtime import start as prepare_start
from .storage.base import Store

__all__ = ["RunResult", "WrittenAnnotation", "aminutes", "aresume", "minutes", "resume"]

Action = Literal["approve", "edit", "reject"]
On = Literal["local", "temporal"]


def starter_for(on: On):
    """What prepares a first run: the runtime (local), or a Temporal workflow (its first stop)."""
    if on == "local":
        return prepare_start
    if on == "temporal":
        from .temporal.client import start

        return start
    raise InvalidInput(f"on={on!r}: use 'local' or 'temporal'")


def driven(run: Run | RunResult, on_update: Observer | None) -> RunResult:
    """Drive a prepared local run; a Temporal run's result is already there."""
    return run if isinstance(run, RunResult) else drive(run, on_update)


async def adriven(run: Run | RunResult, on_update: Observer | None) -> RunResult:
    return run if isinstance(run, RunResult) else await adrive(run, on_update)


def temporal_thread(thread_id: str, on: On | None) -> bool:
    """Whether ``resume`` goes through Temporal: ``on`` says so, or (None) the thread is a workflow there."""
    if on is None:
        from .temporal.settings import TemporalSettings

        if not TemporalSettings.configured():
            return False
        from .temporal.client import runs_on_temporal

        return runs_on_temporal(thread_id)
    starter_for(on)
    return on == "temporal"


def _minutes_run(
    uri: str,
    *,
    transcript: str | None,
    engine: Engine | str | None,
    approve: bool,
    thread_id: str | None,
    store: Store | str | None,
    chunk_chars: int | None,
    on: On = "local",
) -> Run | RunResult:
    inputs: dict[str, Any] = {"transcript_input": str(transcript) if transcript is not None else None}
    if chunk_chars:
        inputs["chunk_chars"] = int(chunk_chars)
    # the agent's check_input finds the transcript before any thread record or checkpoint exists
    return starter_for(on)("minutes", uri, inputs, engine=engine, approve=approve, thread_id=thread_id, store=store)


def _review_of(action, edited, patch, feedback, reviewer) -> dict | None:
    answers = {"edited": edited, "patch": patch, "feedback": feedback, "reviewer": reviewer}
    if action is not None or any(v is not None for v in answers.values()):
        return {"action": action or "approve", **answers}
    return None


def _resume_run(thread_id, *, action, edited, patch, feedback, reviewer, engine, store, password, on=None):
    review = _review_of(action, edited, patch, feedback, reviewer)
    if temporal_thread(thread_id, on):
        from .temporal.client import review as send_review

        if password is not None:
            raise InvalidInput("a Temporal run reads PDF passwords from MARGINALIA_PDF_PASSWORD on its workers")
        answer = {k: v for k, v in (review or {"action": "approve"}).items() if v is not None}
        return send_review(thread_id, answer)
    return prepare_resume(thread_id, review, engine=engine, store=store, password=password)


def minutes(
    uri: str,
    *,
    transcript: str | None = None,
    engine: Engine | str | None = None,
    approve: bool = False,
    thread_id: str | None = None,
    store: Store | str | None = None,
    chunk_chars: int | None = None,
    on_update: Observer | None = None,
    on: On = "local",
) -> RunResult:
    """Minutes of the meeting recorded (or transcribed) in ``uri``.

    Runs until the proposed minutes await approval (``status="waiting"``), or, with
    ``approve=True``, through to the ``meeting_minutes``/``action_items`` annotations
    (``status="done"``). ``on="temporal"`` runs it as a Temporal workflow (same result). ``transcript`` is a local path or ``s3://`` URI of the transcript;
    ``engine`` an Engine or a spec (``offline``, ``bedrock:<model-id>``); ``store`` a Store or
    a spec (``local:<dir>``, ``s3``); defaults come from ``MARGINALIA_*``.
    """
    run = _minutes_run(
        uri,
        transcript=transcript,
        engine=engine,
        approve=approve,
        thread_id=thread_id,
        store=store,
        chunk_chars=chunk_chars,
        on=on,
    )
    return driven(run, on_update)


async def aminutes(
    uri: str,
    *,
    transcript: str | None = None,
    engine: Engine | str | None = None,
    approve: bool = False,
    thread_id: str | None = None,
    store: Store | str | None = None,
    chunk_chars: int | None = None,
    on_update: Observer | None = None,
    on: On = "local",
) -> RunResult:
    """Async twin of :func:`minutes`."""
    run = await asyncio.to_thread(
        _minutes_run,
        uri,
        transcript=transcript,
        engine=engine,
        approve=approve,
        thread_id=thread_id,
        store=store,
        chunk_chars=chunk_chars,
        on=on,
    )
    return await adriven(run, on_update)


def resume(
    thread_id: str,
    *,
    action: Action | None = None,
    edited: dict | None = None,
    patch: list[dict] | None = None,
    feedback: str | None = None,
    reviewer: str | None = None,
    engine: Engine | str | None = None,
    store: Store | str | None = None,
    password: str | None = None,
    on_update: Observer | None = None,
    on: On | None = None,
) -> RunResult:
    """Take a thread forward, in this or any other process.

    A thread waiting for approval gets the answer: ``approve`` (the default); ``edit`` with
    ``edited`` (a replacement document) or ``patch`` (RFC 6902); ``reject`` with ``feedback`` (a
    revised proposal comes back: ``status="waiting"``) or without (the thread ends
    ``"rejected"``, nothing written). A thread whose process died or whose node failed continues
    from its last checkpoint (give no ``action``: there is nothing to review); completed nodes
    do not run again. ``password`` opens encrypted PDFs the PDF agents must read again (run
    context only, never stored). Works for every registered agent: the thread index says which
    graph the thread belongs to. A thread run by Temporal (``MARGINALIA_TEMPORAL`` set and a
    workflow with this id, or ``on="temporal"``) gets the answer as its workflow's review Update.
    """
    run = _resume_run(
        thread_id,
        action=action,
        edited=edited,
        patch=patch,
        feedback=feedback,
        reviewer=reviewer,
        engine=engine,
        store=store,
        password=password,
        on=on,
    )
    return driven(run, on_update)


async def aresume(
    thread_id: str,
    *,
    action: Action | None = None,
    edited: dict | None = None,
    patch: list[dict] | None = None,
    feedback: str | None = None,
    reviewer: str | None = None,
    engine: Engine | str | None = None,
    store: Store | str | None = None,
    password: str | None = None,
    on_update: Observer | None = None,
    on: On | None = None,
) -> RunResult:
    """Async twin of :func:`resume`."""
    run = await asyncio.to_thread(
        _resume_run,
        thread_id,
        action=action,
        edited=edited,
        patch=patch,
        feedback=feedback,
        reviewer=reviewer,
        engine=engine,
        store=store,
        password=password,
        on=on,
    )
    return await adriven(run, on_update)
