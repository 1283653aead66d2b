"""Progress events: what a node reports while a run goes on, through LangGraph's stream writer.

A node that works through many items (the transcript's chunks, a PDF's pages) sends
``{"progress": UNIT, "range": [start, end], "total": N}`` — items ``start`` to ``end - 1`` of
``N`` are done — with :func:`report`. They reach whoever streams the run with
``stream_mode="custom"``: the CLI's progress bar (runs driven by :mod:`marginalia.runtime`
pass them to the observer as ``(PROGRESS, event)``), LangGraph Studio, any SDK client.
A fan-out's tasks report their own items, in any order; a reader counts the distinct items.
"""

from __future__ import annotations

from typing import Any

__all__ = ["JOIN_NODES", "NEXT_WAVE", "PROGRESS", "report"]

#: The node name an observer of :func:`marginalia.runtime.drive` gets progress events under.
PROGRESS = "__progress__"
#: The node that joins one wave of a fan-out to the next (the minutes' chunks, sent in waves).
NEXT_WAVE = "next_wave"
#: Nodes that only join the waves of a fan-out: a reader showing steps leaves them out, and the
#: fan-out's waves read as one step.
JOIN_NODES = frozenset({NEXT_WAVE})


def report(runtime: Any, unit: str, start: int, end: int, total: int) -> None:
    """Tell the run's readers that items ``start`` to ``end - 1`` of ``total`` ``unit`` are done
    (``end == start`` announces the total before any is). ``runtime`` is the node's LangGraph
    Runtime; without a stream writer (a node called on its own) nothing is sent."""
    writer = getattr(runtime, "stream_writer", None)
    if writer is not None:
        writer({"progress": unit, "range": [int(start), int(end)], "total": int(total)})
