"""Minutes extraction: map over chunks of the transcript, reduce with the engine, revise.

A long meeting never gets cut off: the segments are split into chunks of at most
``chunk_chars`` characters (whole segments; ids stay global), each chunk goes to its own
``extract_chunk`` run through LangGraph ``Send`` (they run in parallel), and ``merge`` asks the
engine to reduce the partial minutes into one (``engine.merge_minutes``). A short meeting is a
single chunk and skips the merge.

Parsed once: ``plan`` reads the transcript annotation once; each ``Send`` carries a cheap
reference (segment range and the transcript's reference from state), and the chunks slice the
parsed transcript this process keeps (:func:`~marginalia.nodes.transcript.parsed_transcript`), so
a chunk never re-reads or re-parses the whole transcript (that made a long meeting quadratic in
time and memory). State and checkpoints keep only ranges and partial minutes, whatever the length.

Durable per chunk: each finished chunk's result is saved (the checkpointer's ``put_writes``) as
soon as it finishes, so a crash redoes only the chunks in flight. LangGraph runs the tasks of a
step and the checkpointer's writes on one thread pool; a Send task waiting there for a worker
would queue every finished chunk's save behind it, until the whole fan-out has started. So the
graph runs with a pool that never makes a task wait (``graph.minutes.FAN_OUT_WORKERS``) and the
chunks take turns here instead (:func:`chunk_turn`), where waiting costs a parked thread and
never holds up a save; the chunks are sent in waves of :data:`CHUNKS_PER_WAVE`, so a meeting of
any length parks a bounded number of threads. Under ``graph.astream`` the chunks run on the
event loop's default executor, so nothing a chunk's end needs goes through it: the saver's
async twins use the saver's own threads (``S3Saver.off_loop``) and the run journal's callbacks
run on the loop (``RunJournal.run_inline``).
"""

from __future__ import annotations

import re
import threading
from contextlib import ExitStack

from langgraph.types import Send

from ..context import engine_turn, rails
from ..progress import report
from ..schemas import Minutes, Transcript
from .transcript import parsed_transcript

DEFAULT_CHUNK_CHARS = 12_000
#: Chunks computing at once in this process (model engines wait on the network; the offline
#: engine's calls take their own turns on top, see :func:`marginalia.context.engine_turn`).
CHUNKS_AT_ONCE = 4
_CHUNK_SLOTS = threading.BoundedSemaphore(CHUNKS_AT_ONCE)
#: Chunks sent in one super-step (:func:`route_chunks`): bounds the parked threads of a long
#: meeting, while a wave is long enough that its last chunks, which run fewer at once, cost
#: little (a wave waits for its slowest chunk).
CHUNKS_PER_WAVE = 64
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


def chunk_turn(engine) -> ExitStack:
    """Hold this around a chunk's engine call: at most :data:`CHUNKS_AT_ONCE` at a time, and the
    engine's own turn (see the module docstring for why the waiting happens here)."""
    stack = ExitStack()
    stack.enter_context(_CHUNK_SLOTS)
    stack.enter_context(engine_turn(engine))
    return stack


def route_chunks(state: dict) -> list[Send] | str:
    """The next wave: one ``extract_chunk`` (a range and a reference) for each of the first
    :data:`CHUNKS_PER_WAVE` chunks without a result yet; ``merge`` once every chunk has one.

    Waves bound what a long meeting holds at once: every task of a step has a thread of
    LangGraph's pool, parked until its turn (see the module docstring), ~180 KB each; a 20 MiB
    meeting has ~1,400 chunks. What is missing is read from the results collected (not from a
    counter), so a thread saved mid-fan-out by an older version, whose tasks were all sent at
    once, goes straight to the merge once they are done."""
    chunks = state["chunks"]
    done = {p["index"] for p in state.get("partials") or []}
    wave = [i for i in range(len(chunks)) if i not in done][:CHUNKS_PER_WAVE]
    if not wave:
        return "merge"
    return [
        Send(
            "extract_chunk",
            {
                "source": state["source"],
                "transcript": state["transcript"],
                "index": i,
                "start": chunks[i][0],
                "end": chunks[i][1],
                "total": len(chunks),
            },
        )
        for i in wave
    ]


def next_wave(state: dict) -> dict:
    """The join after a wave of chunks (its edges run :func:`route_chunks` once, not per chunk)."""
    return {}


def plan(state: dict, runtime) -> dict:
    """Chunks measured in cleaned text (what every engine reads), not in fillers and noise tags."""
    from ..engines.meeting_cleaning import clean_text

    transcript = parsed_transcript(rails(runtime).store, state["source"], state["transcript"])
    lengths = [len(clean_text(s.text)) for s in transcript.segments]
    chunks = plan_chunks(lengths, int(state.get("chunk_chars") or DEFAULT_CHUNK_CHARS))
    report(runtime, "chunks", 0, 0, len(chunks))
    return {"chunks": chunks, "partials": None}


def extract_chunk(task: dict, runtime) -> dict:
    r = rails(runtime)
    transcript = parsed_transcript(r.store, task["source"], task.get("transcript"))
    part = Transcript(
        language=transcript.language,
        speakers=transcript.speakers,
        segments=transcript.segments[task["start"] : task["end"]],
        source_format=transcript.source_format,
    )
    with chunk_turn(r.engine):
        minutes = r.engine.extract_minutes(
            part, first_segment=task["start"], hint_date=hint_date(task["source"]), chunks=task.get("total", 1)
        )
    report(runtime, "chunks", task["index"], task["index"] + 1, task.get("total", task["index"] + 1))
    return {"partials": [{"index": task["index"], "minutes": minutes.model_dump(mode="json")}]}


def merge(state: dict, runtime) -> dict:
    r = rails(runtime)
    parts = [Minutes.model_validate(p["minutes"]) for p in sorted(state["partials"], key=lambda p: p["index"])]
    if len(parts) == 1:
        minutes = parts[0]
    else:
        minutes = r.engine.merge_minutes(parts, parsed_transcript(r.store, state["source"], state.get("transcript")))
    return {"proposal": minutes.model_dump(mode="json"), "partials": None}


def revise(state: dict, runtime) -> dict:
    r = rails(runtime)
    minutes = r.engine.revise_minutes(
        Minutes.model_validate(state["proposal"]),
        state["feedback"],
        parsed_transcript(r.store, state["source"], state.get("transcript")),
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
