"""The PDF summariser: a PDF in the store in, its approved ``summary`` annotation out.

``ingest -> plan =Send=> summarize_chunk* -> merge -> review <-> revise -> annotate``

* ``plan`` opens the PDF once (encrypted, corrupt, truncated, empty files stop here with a
  clear error) and cuts it into page ranges; ``summarize_chunk`` reads its range straight from
  the PDF and ``merge`` reduces the chunk summaries (map-reduce: a long document is never cut);
* ``review`` passes at once unless the caller asked for review (``--review``), then stops at
  ``interrupt()`` with the proposed summary, exactly like the minutes agent;
* ``annotate`` writes ``summary`` with ``ObjectIfMatch`` on the PDF's ETag, with provenance.

The context schema is :class:`~marginalia.nodes.pdf.DocumentContext` (the password travels
there, never in state). ``graph`` (no checkpointer) is what ``langgraph dev`` serves;
:func:`build_pdf_summary_graph` with a checkpointer is what the API and CLI run.
"""

from __future__ import annotations

from typing import Annotated

from ..nodes import pdf as p
from ..nodes.review import ReviewState
from ..runtime import register_agent
from ..schemas import DocumentSummary
from .common import LLM_RETRY, S3_RETRY, add_ingest, add_review_loop, agent_builder, collect_partials, compile_graph

AGENT = "pdf_summary"


class SummaryState(ReviewState, total=False):
    allow_no_text: bool  # --allow-no-text: a scanned PDF gets a summary with status "no_text"
    chunk_pages: int
    source: dict  # ingest: uri, bucket, key, etag, version_id, size ...
    document: dict  # plan: page_count, title, authors (metadata), encrypted
    chunks: list[list[int]]  # [first, last] page ranges, 1-based inclusive
    partials: Annotated[list[dict], collect_partials]


def build_pdf_summary_graph(checkpointer=None):
    """The summariser graph; pass the S3 checkpointer to persist threads across processes."""
    builder = agent_builder(SummaryState, p.DocumentContext)
    after_ingest = add_ingest(builder)
    builder.add_node("plan", p.plan, retry_policy=S3_RETRY)
    builder.add_node("summarize_chunk", p.summarize_chunk, retry_policy=LLM_RETRY)
    builder.add_node("merge", p.merge, retry_policy=LLM_RETRY)
    builder.add_edge(after_ingest, "plan")
    builder.add_conditional_edges("plan", p.route_chunks, ["summarize_chunk"])
    builder.add_edge("summarize_chunk", "merge")
    add_review_loop(builder, after="merge", agent=AGENT, document=DocumentSummary, revise=p.revise, payloads=p.payloads)
    return compile_graph(builder, name=AGENT, checkpointer=checkpointer)


def render_summary(proposal: dict):
    """Rich rendering of a proposed summary: title, authors, summary, key points with pages."""
    from rich.console import Group
    from rich.markdown import Markdown
    from rich.panel import Panel

    title = proposal.get("title") or "Summary"
    meta = " · ".join(
        x
        for x in (
            ", ".join(proposal.get("authors") or []),
            f"{proposal.get('page_count', 0)} page(s)",
            proposal.get("language") or "",
            "NO TEXT LAYER" if proposal.get("status") == "no_text" else "",
        )
        if x
    )
    parts = [Panel(proposal.get("summary") or "(no text to summarise)", title=f"[bold]{title}[/]", subtitle=meta)]
    points = proposal.get("key_points") or []
    if points:
        parts.append(
            Markdown(
                "**Key points**\n\n"
                + "\n".join(
                    f"- {k['text']}"
                    + (f" _(p. {', '.join(map(str, k.get('pages') or []))})_" if k.get("pages") else "")
                    for k in points
                )
            )
        )
    if proposal.get("keywords"):
        parts.append(Markdown("**Keywords:** " + "; ".join(proposal["keywords"])))
    entities = proposal.get("entities") or []
    if entities:
        shown = ", ".join(f"{e['text']} ({e['type']})" for e in entities[:15])
        parts.append(
            Markdown(f"**Entities:** {shown}" + (f" … and {len(entities) - 15} more" if len(entities) > 15 else ""))
        )
    return Group(*parts)


register_agent(AGENT, build_pdf_summary_graph, document=DocumentSummary, render=render_summary)

#: Served by ``langgraph dev`` (which brings its own persistence): compiled without a checkpointer.
graph = build_pdf_summary_graph()
