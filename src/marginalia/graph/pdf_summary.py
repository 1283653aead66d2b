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

from ..agents import BatchSpec, register_agent
from ..errors import MarginaliaError
from ..nodes import pdf as p
from ..nodes.review import ReviewState
from ..schemas import DocumentSummary
from ..storage.base import ObjectInfo, Store
from ..threads import ThreadRecord
from ..tools.pdf import check_pdf_header, iter_pages
from ..uri import parse_uri
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


def check_input(store: Store, info: ObjectInfo | None, *, object_uri: str, inputs: dict, thread_id: str | None) -> None:
    """Read the object's first KiB: a file that is not a PDF at all is refused up front (damage
    deeper inside a real PDF is found by the graph, which then records the thread as failed)."""
    target = parse_uri(object_uri)
    chunks, _ = store.open_object(target.bucket, target.key)
    try:
        head = next(iter(chunks), b"")
    finally:
        getattr(chunks, "close", lambda: None)()
    check_pdf_header(head, name=object_uri)


def archive_attachments(store: Store, record: ThreadRecord, values: dict) -> dict:
    """The page texts the summariser read (from its local copy of that version), and the prompts."""
    found = prompt_attachments(store, record, values)
    source = values.get("source") or {}
    if not str(source.get("key", "")).lower().endswith(".pdf"):
        return found
    try:  # the summariser's local copy of the version it read (no second download, not held in memory)
        with p.open_copy(store, source) as handle:
            pages = [
                {"page": n, "text": text} for n, text in iter_pages(handle, name=source.get("uri"), allow_no_text=True)
            ]
    except (MarginaliaError, ValueError, KeyError):
        return found  # encrypted without the password, replaced or deleted meanwhile: nothing to attach
    return {"pdf.pages": {"uri": source.get("uri"), "pages": pages}, **found}


SPEC = register_agent(
    AGENT,
    build_pdf_summary_graph,
    document=DocumentSummary,
    description="a summary of a PDF",
    annotations=("summary",),
    check_input=check_input,
    batch=BatchSpec(  # a PDF password comes from MARGINALIA_PDF_PASSWORD
        name="summary",
        annotation="summary",
        suffixes=lambda: (".pdf",),
        inputs=lambda: {"allow_no_text": False, "chunk_pages": p.DEFAULT_CHUNK_PAGES},
    ),
    attachments=archive_attachments,
    render="marginalia.cli.views:render_summary",
    demo="marginalia.cli.document_cmds:SUMMARIZE_DEMO",
    cli="marginalia.cli.document_cmds",
)

#: Served by ``langgraph dev`` (which brings its own persistence): compiled without a checkpointer.
graph = build_pdf_summary_graph()
