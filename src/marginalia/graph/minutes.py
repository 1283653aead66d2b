"""The meeting-minutes agent: recording (or transcript) in, approved minutes out as annotations.

``ingest -> transcript -> plan =Send=> extract_chunk* -> merge -> review <-> revise -> annotate``

* ``transcript`` writes the ``transcript`` annotation (state keeps a reference);
* ``plan``/``extract_chunk``/``merge`` are the map-reduce over long transcripts (``plan`` reads
  the transcript once and each chunk carries a range of it; each chunk's result is saved as soon
  as it finishes, see :mod:`marginalia.nodes.minutes`);
* ``review`` stops at ``interrupt()`` with the proposed minutes until a person answers;
* ``annotate`` writes ``meeting_minutes`` and ``action_items`` with ``ObjectIfMatch``.

``graph`` (compiled without a checkpointer) is what ``langgraph dev`` serves;
:func:`build_minutes_graph` with a checkpointer is what the API and CLI run.
"""

from __future__ import annotations

from typing import Annotated

from ..agents import BatchSpec, register_agent
from ..nodes import minutes as m
from ..nodes.ingest import source_of
from ..nodes.review import ReviewState
from ..nodes.transcript import locate_transcript, transcript_node
from ..progress import NEXT_WAVE
from ..schemas import Minutes
from ..storage.base import ObjectInfo, Store
from ..tools.transcripts import MEDIA_EXTENSIONS, TRANSCRIPT_EXTENSIONS
from .common import (
    LLM_RETRY,
    S3_RETRY,
    add_ingest,
    add_review_loop,
    agent_builder,
    collect_partials,
    compile_graph,
    prompt_attachments,
)

AGENT = "minutes"
#: Size of LangGraph's thread pool for this graph: more than the tasks of any step (a wave of
#: chunks, ``nodes.minutes.CHUNKS_PER_WAVE``) and their saves, so none waits for a worker.
#: Threads start only as tasks need them; the chunks that compute at once are bounded in the
#: node (``nodes.minutes.CHUNKS_AT_ONCE``).
FAN_OUT_WORKERS = 1_000_000


class MinutesState(ReviewState, total=False):
    transcript_input: str | None  # --transcript: local path or s3:// URI
    chunk_chars: int
    source: dict  # ingest: uri, bucket, key, etag, version_id, size ...
    transcript: dict  # reference to the transcript annotation and counts
    chunks: list[tuple[int, int]]
    partials: Annotated[list[dict], collect_partials]


def build_minutes_graph(checkpointer=None):
    """The minutes graph; pass the S3 checkpointer to persist threads across processes."""
    builder = agent_builder(MinutesState)
    after_ingest = add_ingest(builder)
    builder.add_node("transcript", transcript_node, retry_policy=S3_RETRY)
    builder.add_node("plan", m.plan, retry_policy=S3_RETRY)
    builder.add_node("extract_chunk", m.extract_chunk, retry_policy=LLM_RETRY)
    builder.add_node("merge", m.merge, retry_policy=LLM_RETRY)
    builder.add_edge(after_ingest, "transcript")
    builder.add_edge("transcript", "plan")
    builder.add_node(NEXT_WAVE, m.next_wave)
    builder.add_conditional_edges("plan", m.route_chunks, ["extract_chunk", "merge"])
    builder.add_edge("extract_chunk", NEXT_WAVE)
    builder.add_conditional_edges(NEXT_WAVE, m.route_chunks, ["extract_chunk", "merge"])
    add_review_loop(builder, after="merge", agent=AGENT, document=Minutes, revise=m.revise, payloads=m.payloads)
    # No task ever waits for a worker of LangGraph's pool (threads start as tasks do): a waiting
    # chunk would hold every finished chunk's checkpoint write up behind it (nodes.minutes).
    return compile_graph(builder, name=AGENT, checkpointer=checkpointer).with_config(max_concurrency=FAN_OUT_WORKERS)


def check_input(store: Store, info: ObjectInfo | None, *, object_uri: str, inputs: dict, thread_id: str | None) -> None:
    """A transcript must be found (the named file, or one beside the recording) before anything runs."""
    locate_transcript(store, source_of(info), inputs.get("transcript_input"))


def batch_suffixes() -> tuple[str, ...]:
    return (*TRANSCRIPT_EXTENSIONS, *sorted(MEDIA_EXTENSIONS))


SPEC = register_agent(
    AGENT,
    build_minutes_graph,
    document=Minutes,
    description="meeting minutes from a recording or a transcript",
    annotations=("transcript", "meeting_minutes", "action_items"),
    check_input=check_input,
    batch=BatchSpec(
        name="minutes", annotation="meeting_minutes", suffixes=batch_suffixes, inputs=lambda: {"transcript_input": None}
    ),
    attachments=prompt_attachments,
    render="marginalia.cli.views:render_minutes",
    demo="marginalia.cli.agent_cmds:MINUTES_DEMO",
    cli="marginalia.cli.agent_cmds",
)

#: Served by ``langgraph dev`` (which brings its own persistence): compiled without a checkpointer.
graph = build_minutes_graph()
