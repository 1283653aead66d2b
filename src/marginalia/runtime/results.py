"""What a run of an agent returns: where it stopped and the annotations it wrote."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: How a driven run stopped (see :class:`RunResult`).
RunStatus = Literal["waiting", "done", "rejected"]

__all__ = ["RunResult", "WrittenAnnotation"]


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
    status: RunStatus
    object_uri: str
    proposal: dict | None
    annotations: tuple[WrittenAnnotation, ...]
    trace_id: str
    iterations: int
    #: waiting: the approval payload's ``draft`` (``{engine, label, flags}``, see nodes.review)
    draft: dict | None = None
