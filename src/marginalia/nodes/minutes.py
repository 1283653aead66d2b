"""Minutes extraction: map over chunks of the transcript, reduce with the engine, revise.

A long meeting never gets cut off: the segments are split into chunks of at most
``chunk_chars`` characters (whole segments; ids stay global), each chunk goes to its own
``extract_chunk`` run through LangGraph ``Send`` (they run in parallel), and ``merge`` asks the
engine to reduce the partial minutes into one (``engine.merge_minutes``). A short meeting is a
single chunk and skips the merge. Chunks read the transcript from its annotation, so the state
carries only segment ranges and the partial minutes.
"""

from __future__ import annotations

import re

from langgraph.types import Send

from ..context import engine_turn, rails
from ..schemas import Minutes, Transcript
from .transcript import load_transcript

DEFAULT_CHUNK_CHARS = 12_000
_DATE_IN_KEY = re.compile(r"(?<!\d)(\d{4})-(\d{2})-(\d{2})(?!\d)")


def plan_chunks(lengths: list[int], chunk_chars: int) -> list[tuple[int, int]]:
    """``[start, end)`` segment ranges, each at most ``chunk_chars`` long unless one segment is."""
    chunks, start, size = [], 0, 0
    for i, n in enumerate(lengths):
        if i > start and size + n > chunk_chars:
            chunks.append((start, i))
            start, size = i, 0
        size += n
    if lengths:
        chunks.append((start, len(lengths)))
    return chunks


def hint_date(source: dict) -> str | None:
    """A meeting date written in the object key (``meetings/2024-05-01-standup.mp4``), if any."""
    m = _DATE_IN_KEY.search(source["key"])
    return "-".join(m.groups()) if m else None


def route_chunks(state: dict) -> list[Send]:
    """Fan out one ``extract_chunk`` per chunk of the transcript."""
    ranges = state["chunks"]
    return [
        Send("extract_chunk", {"source": state["source"], "index": i, "start": a, "end": b})
        for i, (a, b) in enumerate(ranges)
    ]


def plan(state: dict, runtime) -> dict:
    """Chunks measured in cleaned text (what every engine reads), not in fillers and noise tags."""
    from ..engines.meeting_cleaning import clean_text

    transcript = load_transcript(rails(runtime).store, state["source"])
    lengths = [len(clean_text(s.text)) for s in transcript.segments]
    return {"chunks": plan_chunks(lengths, int(state.get("chunk_chars") or DEFAULT_CHUNK_CHARS)), "partials": None}


def extract_chunk(task: dict, runtime) -> dict:
    r = rails(runtime)
    transcript = load_transcript(r.store, task["source"])
    part = Transcript(
        language=transcript.language,
        speakers=transcript.speakers,
        segments=transcript.segments[task["start"] : task["end"]],
        source_format=transcript.source_format,
    )
    with engine_turn(r.engine):
        minutes = r.engine.extract_minutes(part, first_segment=task["start"], hint_date=hint_date(task["source"]))
    return {"partials": [{"index": task["index"], "minutes": minutes.model_dump(mode="json")}]}


def merge(state: dict, runtime) -> dict:
    r = rails(runtime)
    parts = [Minutes.model_validate(p["minutes"]) for p in sorted(state["partials"], key=lambda p: p["index"])]
    if len(parts) == 1:
        minutes = parts[0]
    else:
        minutes = r.engine.merge_minutes(parts, load_transcript(r.store, state["source"]))
    return {"proposal": minutes.model_dump(mode="json"), "partials": None}


def revise(state: dict, runtime) -> dict:
    r = rails(runtime)
    minutes = r.engine.revise_minutes(
        Minutes.model_validate(state["proposal"]), state["feedback"], load_transcript(r.store, state["source"])
    )
    return {"proposal": minutes.model_dump(mode="json")}


def payloads(state: dict, provenance: dict) -> dict[str, dict]:
    """``meeting_minutes`` (the approved minutes) and ``action_items`` (searchable on their own)."""
    minutes = state["approved"]
    reference = {"annotation": "transcript", "segments": state["transcript"]["segments"]}
    return {
        "meeting_minutes": {**minutes, "transcript": reference, "provenance": provenance},
        "action_items": {
            "title": minutes.get("title"),
            "date": minutes.get("date"),
            "action_items": minutes.get("action_items", []),
            "provenance": provenance,
        },
    }
