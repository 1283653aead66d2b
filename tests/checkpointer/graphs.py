"""Small LangGraph graphs the checkpointer tests (and their subprocess script) run for real."""

from __future__ import annotations

import operator
from typing import Annotated, TypedDict

from langgraph.channels.delta import DeltaChannel
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt


class LoopState(TypedDict, total=False):
    messages: Annotated[list[str], operator.add]
    counter: int
    last: str


def loop_graph(checkpointer, steps: int = 50):
    """Three nodes in a loop writing three channels, one message per node, until ``steps`` nodes ran."""

    def make(name: str):
        def node(state: LoopState) -> LoopState:
            n = state.get("counter", 0) + 1
            return {"messages": [f"{name}{n}"], "counter": n, "last": name}

        return node

    # Each node may end the loop, so exactly `steps` super-steps run.
    g = StateGraph(LoopState)
    for name in "abc":
        g.add_node(name, make(name))
    g.add_edge(START, "a")
    nxt = {"a": "b", "b": "c", "c": "a"}
    for name in "abc":
        g.add_conditional_edges(
            name, lambda s, _n=nxt[name]: END if s.get("counter", 0) >= steps else _n, [nxt[name], END]
        )
    return g.compile(checkpointer=checkpointer)


class ReviewState(TypedDict, total=False):
    topic: str
    draft: str
    verdict: str
    published: str
    messages: Annotated[list[str], operator.add]


def review_graph(checkpointer):
    """draft → review (``interrupt()`` for a human verdict) → publish."""

    def draft(state: ReviewState) -> ReviewState:
        return {"draft": f"notes on {state['topic']}", "messages": ["drafted"]}

    def review(state: ReviewState) -> ReviewState:
        verdict = interrupt({"question": "approve?", "draft": state["draft"]})
        return {"verdict": verdict, "messages": [f"reviewed:{verdict}"]}

    def publish(state: ReviewState) -> ReviewState:
        if state["verdict"] != "approve":
            return {"messages": ["discarded"]}
        return {"published": state["draft"].upper(), "messages": ["published"]}

    g = StateGraph(ReviewState)
    g.add_node("draft", draft)
    g.add_node("review", review)
    g.add_node("publish", publish)
    g.add_edge(START, "draft")
    g.add_edge("draft", "review")
    g.add_edge("review", "publish")
    g.add_edge("publish", END)
    return g.compile(checkpointer=checkpointer)


class InnerState(TypedDict, total=False):
    items: Annotated[list[str], operator.add]
    answer: str


def nested_graph(checkpointer):
    """outer: prepare → inner (a compiled subgraph: collect → ask, which interrupts) → finish."""

    def collect(state: InnerState) -> InnerState:
        return {"items": ["collected"]}

    def ask(state: InnerState) -> InnerState:
        answer = interrupt("inner question")
        return {"items": [f"answer:{answer}"], "answer": answer}

    inner = StateGraph(InnerState)
    inner.add_node("collect", collect)
    inner.add_node("ask", ask)
    inner.add_edge(START, "collect")
    inner.add_edge("collect", "ask")
    inner.add_edge("ask", END)

    def prepare(state: InnerState) -> InnerState:
        return {"items": ["prepared"]}

    def finish(state: InnerState) -> InnerState:
        return {"items": ["finished"]}

    outer = StateGraph(InnerState)
    outer.add_node("prepare", prepare)
    outer.add_node("inner", inner.compile())
    outer.add_node("finish", finish)
    outer.add_edge(START, "prepare")
    outer.add_edge("prepare", "inner")
    outer.add_edge("inner", "finish")
    outer.add_edge("finish", END)
    return outer.compile(checkpointer=checkpointer)


def extend(state: list, batches: list) -> list:
    """A batching-invariant reducer for DeltaChannel: concatenate."""
    out = list(state)
    for batch in batches:
        out.extend(batch)
    return out


class DeltaState(TypedDict, total=False):
    log: Annotated[list, DeltaChannel(extend, snapshot_frequency=8)]
    n: int


def delta_graph(checkpointer, steps: int = 20):
    """One node in a loop appending to a ``DeltaChannel`` list (beta LangGraph feature) that
    snapshots every 8 updates: the other checkpoints store no value for it, only writes."""

    def node(state: DeltaState) -> DeltaState:
        n = state.get("n", 0) + 1
        return {"log": [f"x{n}"], "n": n}

    g = StateGraph(DeltaState)
    g.add_node("step", node)
    g.add_edge(START, "step")
    g.add_conditional_edges("step", lambda s: END if s["n"] >= steps else "step", ["step", END])
    return g.compile(checkpointer=checkpointer)
