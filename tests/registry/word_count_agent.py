"""A fourth agent in one module: counts the words of a text object and annotates ``word_count``.

It exists to show what adding an agent takes: this module (state, one node, the shared ingest and
review loop) and one :func:`~marginalia.agents.register_agent` call. Nothing else in Marginalia
names it, yet the run driver, approval, batch, demo, the trace archive and the Studio factories
all serve it (tests/registry/test_fourth_agent.py).
"""

from __future__ import annotations

from pydantic import BaseModel

from marginalia.agents import BatchSpec, register_agent
from marginalia.cli.agent_cmds import DEMO_BUCKET, DemoStep
from marginalia.context import rails
from marginalia.errors import InvalidInput
from marginalia.graph.common import add_ingest, add_review_loop, agent_builder, compile_graph
from marginalia.nodes.review import ReviewState

AGENT = "word_count"


class WordCount(BaseModel):
    words: int
    lines: int


class WordCountState(ReviewState, total=False):
    source: dict


def count(state: dict, runtime) -> dict:
    source = state["source"]
    data, _ = rails(runtime).store.get_object(source["bucket"], source["key"])
    text = data.decode("utf-8")
    return {"proposal": WordCount(words=len(text.split()), lines=len(text.splitlines())).model_dump()}


def revise(state: dict, runtime) -> dict:
    return count(state, runtime)


def payloads(state: dict, provenance: dict) -> dict:
    return {"word_count": {**state["approved"], "provenance": provenance}}


def build(checkpointer=None):
    builder = agent_builder(WordCountState)
    builder.add_node("count", count)
    builder.add_edge(add_ingest(builder), "count")
    add_review_loop(builder, after="count", agent=AGENT, document=WordCount, revise=revise, payloads=payloads)
    return compile_graph(builder, name=AGENT, checkpointer=checkpointer)


def check_input(store, info, *, object_uri: str, inputs: dict, thread_id: str | None) -> None:
    if not object_uri.endswith(".txt"):
        raise InvalidInput(f"{object_uri}: word_count reads .txt objects only")


def attachments(store, record, values: dict) -> dict:
    return {"word_count.seen": {"uri": record.object_uri, "approved": values.get("approved")}}


def demo(store) -> list[str]:
    import marginalia.runtime as runtime

    store.put_object(DEMO_BUCKET, "notes/hello.txt", b"hello demo world\n")
    result = runtime.drive(runtime.start(AGENT, f"s3://{DEMO_BUCKET}/notes/hello.txt", {}, approve=True, store=store))
    return [result.object_uri]


DEMO = DemoStep(AGENT, "count the words of a note", demo)

SPEC = register_agent(
    AGENT,
    build,
    document=WordCount,
    annotations=("word_count",),
    check_input=check_input,
    batch=BatchSpec(name="words", annotation="word_count", suffixes=lambda: (".txt",), inputs=dict),
    attachments=attachments,
    render="rich.pretty:Pretty",
    demo=f"{__name__}:DEMO",
)

graph = build()
