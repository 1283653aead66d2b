"""Driving a prepared :class:`~marginalia.runtime.run.Run`: :func:`drive` (sync) and :func:`adrive`
(async) differ only in ``graph.stream`` vs ``graph.astream``; both archive the thread at its end."""

from __future__ import annotations

import asyncio

from ..errors import MarginaliaError
from .results import RunResult
from .run import Observer, Run

__all__ = ["adrive", "archived", "drive"]


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
        return archived(run, run.finish())
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
        return await asyncio.to_thread(archived, run, result)
    finally:
        await asyncio.to_thread(run.release)


def archived(run: Run, result: RunResult, *, only_if_missing: bool = False) -> RunResult:
    """End of a thread: write its self-contained trace archive (a thread still waiting for a
    reviewer is not finished, and is not archived). Never fails a finished run.

    ``only_if_missing``: a thread found finished (its process may have died between the last
    checkpoint and the archive) is archived unless its archive is already there.
    """
    from ..archive import archive_run, archive_uri

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
