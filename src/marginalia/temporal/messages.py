"""What the client, the workflow and the activities send each other (plain, JSON-ready data).

A run result travels as the dict of :class:`marginalia.runtime.RunResult` (:func:`result_to_dict`
and back), so a Temporal-run thread answers with the same object as a local one. Nothing secret
goes in here: every field ends up in the workflow's history (a PDF password never does; workers
read ``MARGINALIA_PDF_PASSWORD``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ..runtime import RunResult, WrittenAnnotation

__all__ = ["DriveStep", "RunRequest", "result_from_dict", "result_to_dict"]


@dataclass
class RunRequest:
    """One agent run, as submitted (the workflow id is the thread id)."""

    agent: str  # registered graph: minutes | pdf_summary | ppt_outline
    object_uri: str
    inputs: dict = field(default_factory=dict)
    approve: bool = False
    engine: str | None = None  # spec the worker rebuilds (offline, bedrock:<id>); None: the worker's default
    graph_module: str | None = None  # importing it registers the agent on the worker
    remind_after_s: float | None = None  # durable timer: a reminder while the run waits for approval
    expire_after_s: float | None = None  # durable timer: the run ends "expired", nothing written
    heartbeat_s: float = 30.0  # a worker silent this long is dead: its attempt is retried elsewhere
    trace_id: str | None = None
    trace_url: str | None = None


@dataclass
class DriveStep:
    """One activity: take the thread to its next interrupt or its end.

    ``review`` answers the proposal the workflow last saw, whose thread had ``reviewed_iterations``
    iterations; a retried attempt that finds the thread past that point does not answer twice.
    """

    request: RunRequest
    review: dict | None = None
    reviewed_iterations: int = 0


def result_to_dict(result: RunResult) -> dict:
    return dataclasses.asdict(result)


def result_from_dict(data: dict[str, Any]) -> RunResult:
    annotations = tuple(WrittenAnnotation(**a) for a in data.get("annotations") or ())
    return RunResult(**{**data, "annotations": annotations})
