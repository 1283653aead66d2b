"""The meeting-minutes agent: recording (or transcript) in, approved minutes out as annotations.

``ingest -> transcript -> plan =Send=> extract_chunk* -> merge -> review <-> revise -> annotate``

* ``transcript`` writes the ``transcript`` annotation (state keeps a reference);
* ``plan``/``extract_chunk``/``merge`` are the map-reduce over long transcripts;
* ``review`` stops at ``interrupt()`` with the proposed minutes until a person answers;
* ``annotate`` writes ``meeting_minutes`` and ``action_items`` with ``ObjectIfMatch``.

``graph`` (compiled without a checkpointer) is what ``langgraph dev`` serves;
:func:`build_minutes_graph` with a checkpointer is what the API and CLI run.
"""

from __future__ import annotations

from typing import Annotated

from ..nodes import minutes as m
from ..nodes.review import ReviewState
from ..nodes.transcript import transcript_node
from ..runtime import register_agent
from ..schemas import Minutes
from .common import LLM_RETRY, S3_RETRY, add_ingest, add_review_loop, agent_builder, collect_partials, compile_graph

AGENT = "minutes"


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
    builder.add_conditional_edges("plan", m.route_chunks, ["extract_chunk"])
    builder.add_edge("extract_chunk", "merge")
    add_review_loop(builder, after="merge", agent=AGENT, document=Minutes, revise=m.revise, payloads=m.payloads)
    return compile_graph(builder, name=AGENT, checkpointer=checkpointer)


def render_minutes(proposal: dict):
    """Rich rendering of proposed minutes: summary, decisions, action items table."""
    from rich.console import Group
    from rich.markdown import Markdown
    from rich.panel import Panel
    from rich.table import Table

    parts = []
    head = proposal.get("title") or "Minutes"
    meta = " · ".join(x for x in (proposal.get("date"), ", ".join(proposal.get("attendees") or [])) if x)
    parts.append(Panel(proposal.get("summary") or "", title=f"[bold]{head}[/]", subtitle=meta or None))
    if proposal.get("topics"):
        parts.append(Markdown("**Topics:** " + "; ".join(proposal["topics"])))
    if proposal.get("decisions"):
        parts.append(
            Markdown(
                "**Decisions**\n\n"
                + "\n".join(
                    f"- {d['text']}"
                    + (f" _(segments {', '.join(map(str, d.get('evidence') or []))})_" if d.get("evidence") else "")
                    for d in proposal["decisions"]
                )
            )
        )
    table = Table(title="Action items", show_lines=False, expand=True)
    for col in ("owner", "task", "due", "evidence"):
        table.add_column(col, overflow="fold")
    for item in proposal.get("action_items") or []:
        table.add_row(
            item.get("owner") or "—",
            item.get("task") or "",
            item.get("due") or "—",
            ", ".join(map(str, item.get("evidence") or [])),
        )
    parts.append(table)
    return Group(*parts)


register_agent(AGENT, build_minutes_graph, document=Minutes, render=render_minutes)

#: Served by ``langgraph dev`` (which brings its own persistence): compiled without a checkpointer.
graph = build_minutes_graph()
