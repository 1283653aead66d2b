"""The PPT outliner: a request in words (and sources) in, an approved, annotated .pptx out.

``gather -> draft -> review <-> revise ; review =approve=> render -> annotate``

* ``gather`` checks the destination and reads what the sources' annotations say (``summary``,
  ``meeting_minutes``); a PDF without a summary is summarised first (and the summary written);
* ``review`` always stops at ``interrupt()`` with the outline (unless ``approve=True``):
  approve, edit, or reject with feedback for a revised outline; every iteration is kept;
* ``render`` uploads the deck (python-pptx, deterministic bytes: a retry uploads nothing new);
* ``annotate`` writes ``outline`` and ``generation_context`` on the deck with ``ObjectIfMatch``.

The thread's object is the deck (``--out``), which does not exist until approval, so this graph
has no ``ingest``; the review loop is wired by hand because ``render`` sits between approval and
the annotate node (:func:`~marginalia.graph.common.add_review_loop` goes straight to annotate).
"""

from __future__ import annotations

from langgraph.graph import END, START

from ..agents import register_agent
from ..nodes import outline as o
from ..nodes.annotate import make_annotate_node
from ..nodes.pdf import DocumentContext
from ..nodes.review import ReviewState, make_review_node, route_after_review
from ..schemas import Outline
from ..storage.base import ObjectInfo, Store
from .common import LLM_RETRY, S3_RETRY, agent_builder, compile_graph, prompt_attachments

AGENT = "ppt_outline"


class OutlineState(ReviewState, total=False):
    request: str
    slides: int | None  # --slides; None: the request's own count, else the engine's default
    source_uris: list[str]  # --source, in order
    overwrite: bool
    sources: list[dict]  # gather: uri, etag, kind, annotation used, origin
    contexts: list[dict]  # gather: SourceContext of each source (what the engine reads)
    source: dict  # render: the uploaded deck (annotate writes on it, conditioned on its ETag)


def build_ppt_outline_graph(checkpointer=None):
    """The outliner graph; pass the S3 checkpointer to persist threads across processes."""
    builder = agent_builder(OutlineState, DocumentContext)
    builder.add_node("gather", o.gather, retry_policy=LLM_RETRY)
    builder.add_node("draft", o.draft, retry_policy=LLM_RETRY)
    builder.add_node("review", make_review_node(agent=AGENT, document=Outline))
    builder.add_node("revise", o.revise, retry_policy=LLM_RETRY)
    builder.add_node("render", o.render, retry_policy=S3_RETRY)
    builder.add_node("annotate", make_annotate_node(agent=AGENT, payloads=o.payloads), retry_policy=S3_RETRY)
    builder.add_edge(START, "gather")
    builder.add_edge("gather", "draft")
    builder.add_edge("draft", "review")
    builder.add_conditional_edges(
        "review", route_after_review, {"annotate": "render", "revise": "revise", "__end__": END}
    )
    builder.add_edge("revise", "review")
    builder.add_edge("render", "annotate")
    builder.add_edge("annotate", END)
    return compile_graph(builder, name=AGENT, checkpointer=checkpointer)


def check_input(store: Store, info: ObjectInfo | None, *, object_uri: str, inputs: dict, thread_id: str | None) -> None:
    """``--out`` must not hold a deck already (unless ``overwrite``), checked before the thread starts."""
    o.check_destination(store, object_uri, overwrite=bool(inputs.get("overwrite")), thread_id=thread_id or "")


SPEC = register_agent(
    AGENT,
    build_ppt_outline_graph,
    document=Outline,
    description="a .pptx deck outlined from a request and its sources",
    annotations=("outline", "generation_context"),
    check_input=check_input,
    attachments=prompt_attachments,
    render="marginalia.cli.views:render_outline",
    result_lines="marginalia.cli.views:deck_lines",
    demo="marginalia.cli.document_cmds:OUTLINE_DEMO",
    cli="marginalia.cli.document_cmds",
)

#: Served by ``langgraph dev`` (which brings its own persistence): compiled without a checkpointer.
graph = build_ppt_outline_graph()
