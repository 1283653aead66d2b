"""Graph-building helpers every agent uses: context schema, ingest, the review loop, retries.

An agent graph is ``START -> ingest -> <agent's own nodes> -> review <-> revise -> annotate -> END``.
:func:`agent_builder` and :func:`add_ingest` give the first part, :func:`add_review_loop` the
last; the agent adds what lies between and registers with :func:`marginalia.agents.register_agent`.
Nodes that call a model carry :data:`~marginalia.tools.retry.LLM_RETRY`, nodes that call S3
:data:`~marginalia.tools.retry.S3_RETRY` (transient failures only; bad input is never retried).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from langgraph.graph import END, START, StateGraph
from pydantic import BaseModel

from ..context import AgentContext
from ..engines import prompts
from ..nodes.annotate import Payloads, make_annotate_node
from ..nodes.ingest import ingest
from ..nodes.review import make_review_node, route_after_review
from ..tools.retry import LLM_RETRY, S3_RETRY

#: The builder of an agent graph: any state schema, run with an AgentContext (or a subclass) as context.
AgentGraph = StateGraph[Any, AgentContext, Any, Any]

__all__ = [
    "LLM_RETRY",
    "S3_RETRY",
    "add_ingest",
    "add_review_loop",
    "agent_builder",
    "collect_partials",
    "compile_graph",
    "prompt_attachments",
]


def agent_builder(state_schema: type, context_schema: type[AgentContext] = AgentContext) -> AgentGraph:
    """A StateGraph whose nodes get ``context_schema`` (an :class:`~marginalia.context.AgentContext`,
    or a subclass such as the PDF agents' ``DocumentContext``) as runtime context."""
    return StateGraph(state_schema, context_schema=context_schema)


def collect_partials(current: list | None, update: list | None) -> list:
    """Reducer of a map-reduce's ``partials``: parallel ``Send`` results are appended; ``None``
    clears them (the merge node does, once it has reduced them)."""
    if update is None:
        return []
    return (current or []) + update


def add_ingest(builder: AgentGraph) -> str:
    """``START -> ingest`` (heads the object, keeps its ETag); returns the node name."""
    builder.add_node("ingest", ingest, retry_policy=S3_RETRY)
    builder.add_edge(START, "ingest")
    return "ingest"


def add_review_loop(
    builder: AgentGraph,
    *,
    after: str,
    agent: str,
    document: type[BaseModel],
    revise: Callable,
    payloads: Payloads,
) -> None:
    """``after -> review``; approve → ``annotate`` → END; reject with feedback → ``revise`` → review.

    ``revise(state, runtime)`` must return ``{"proposal": <new document dict>}``;
    ``payloads(state, provenance)`` the ``{annotation name: payload}`` to write on approval.
    """
    builder.add_node("review", make_review_node(agent=agent, document=document))
    builder.add_node("revise", revise, retry_policy=LLM_RETRY)
    builder.add_node("annotate", make_annotate_node(agent=agent, payloads=payloads), retry_policy=S3_RETRY)
    builder.add_edge(after, "review")
    builder.add_conditional_edges(
        "review", route_after_review, {"annotate": "annotate", "revise": "revise", "__end__": END}
    )
    builder.add_edge("revise", "review")
    builder.add_edge("annotate", END)


def compile_graph(builder: AgentGraph, *, name: str, checkpointer=None):
    """Compile; ``checkpointer=None`` is what ``langgraph dev`` needs (it brings its own)."""
    return builder.compile(checkpointer=checkpointer, name=name)


def prompt_attachments(store: Any, record: Any, values: dict) -> dict[str, Any]:
    """The prompt templates a model engine was given, for the thread's trace archive (the offline
    engine uses none)."""
    engine = getattr(record, "engine", None)
    if not engine or engine == "offline":
        return {}
    templates = {
        name: getattr(prompts, name)
        for name in dir(prompts)
        if name.isupper() and isinstance(getattr(prompts, name), str)
    }
    return {"prompts": {"engine": engine, "templates": templates}}
