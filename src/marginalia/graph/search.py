"""The search graph: question → SQL → validate → run → answer.

``to_sql`` asks the engine (``Engine.question_to_sql``: a chat model, or the offline templates of
:mod:`marginalia.search.nl` by default); ``validate`` applies the same read-only check as a
hand-written query, so a model's SQL never reaches a database unchecked; ``run`` uses the backend
``MARGINALIA_STORE`` selects; ``answer`` lists the matching objects with a short sentence.

The engine and store come from :func:`build_search_graph`'s arguments, or per run from the runtime
context (:class:`SearchContext`: ``engine``, ``store``, ``bucket`` — JSON-describable, so Studio shows
it as a form). ``to_sql`` retries a model's transient failures (:data:`~marginalia.tools.retry.LLM_RETRY`),
``run`` a backend's (:data:`~marginalia.tools.retry.S3_RETRY`); a refusal is an answer, never retried.
:data:`graph` is compiled without a checkpointer, as ``langgraph.json`` requires.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict  # pydantic (Studio's schemas) refuses typing.TypedDict before 3.12

from ..context import AgentContext, resolve_store
from ..errors import MarginaliaError
from ..search import sql as sqlmod
from ..tools.retry import LLM_RETRY, S3_RETRY, is_transient

ANSWER_LIMIT = 200
SCHEMA = (
    "annotation_table(bucket, object_key, object_version_id, object_join_key, name, sequence_number, "
    "last_modified_date, size, e_tag, checksum_algorithm, replication_status, text_value); "
    "journal(bucket, key, sequence_number, record_type, record_timestamp, version_id, annotation.name, ...); "
    "inventory(bucket, key, version_id, size, last_modified_date, e_tag). "
    "text_value holds JSON: meeting_minutes {date,title,attendees[],topics[],decisions[{text}],"
    "action_items[{owner,task,due}],summary}; summary {title,authors[],summary,key_points[{text,pages[]}],"
    "keywords[],page_count}; transcript {language,speakers[],segments[{speaker,text}]}."
)


class SearchState(TypedDict, total=False):
    question: str
    bucket: str | None
    sql: str
    columns: list[str]
    rows: list[dict[str, Any]]
    matches: list[str]
    answer: str
    error: str | None


@dataclass
class SearchContext(AgentContext):
    """Runtime context of the search graph: the agents' ``store``/``engine`` specs, and the bucket."""

    #: the bucket to search (a question's own ``bucket`` in the input wins)
    bucket: str | None = None


def _context(runtime: Any, name: str) -> Any:
    ctx = getattr(runtime, "context", None)
    return ctx.get(name) if isinstance(ctx, Mapping) else getattr(ctx, name, None)


def _permanent(exc: MarginaliaError) -> str:
    """A refusal becomes the answer; a transient failure is raised for the node's retry policy."""
    if is_transient(exc):
        raise exc
    return str(exc)


def build_search_graph(engine=None, store=None):
    """Compile the search graph; ``engine``/``store`` default to offline templates and MARGINALIA_STORE."""

    def to_sql(state: SearchState, runtime: Any) -> SearchState:
        chosen = _context(runtime, "engine") or engine
        try:
            if chosen is None or chosen == "offline":
                from ..search.nl import question_to_sql

                return {"sql": question_to_sql(state["question"], schema=SCHEMA), "error": None}
            if isinstance(chosen, str):
                from ..engines import make_engine

                chosen = make_engine(chosen)
            return {"sql": chosen.question_to_sql(state["question"], schema=SCHEMA), "error": None}
        except MarginaliaError as exc:
            return {"sql": "", "error": _permanent(exc)}

    def validate(state: SearchState) -> SearchState:
        if state.get("error"):
            return {}
        try:
            sqlmod.parse(state["sql"])
        except MarginaliaError as exc:
            return {"error": f"the query for {state['question']!r} was refused: {exc}"}
        return {}

    def run(state: SearchState, runtime: Any) -> SearchState:
        from ..search import open_search

        chosen_store = _context(runtime, "store") or store
        if isinstance(chosen_store, str):  # a spec from the context (Studio's form, JSON)
            chosen_store = resolve_store(chosen_store)
        bucket = state.get("bucket") or _context(runtime, "bucket")
        try:
            backend = open_search(chosen_store)
            result = backend.run(state["sql"], bucket=bucket, limit=ANSWER_LIMIT)
        except MarginaliaError as exc:
            return {"error": _permanent(exc)}
        return {"columns": result.columns, "rows": result.as_dicts(), "matches": result.uris()}

    def answer(state: SearchState) -> SearchState:
        if state.get("error"):
            return {"answer": f"Could not answer: {state['error']}"}
        rows, matches = state.get("rows", []), state.get("matches", [])
        if not rows:
            return {"answer": "Nothing matches."}
        if matches:
            shown = "\n".join(f"- {uri}" for uri in matches[:20])
            more = f"\n… and {len(matches) - 20} more" if len(matches) > 20 else ""
            extra = ""
            if "task" in state.get("columns", []):
                extra = "\n" + "\n".join(
                    f"- {r.get('owner') or '?'}: {r['task']}" + (f" (due {r['due']})" if r.get("due") else "")
                    for r in rows[:20]
                )
                return {"answer": f"{len(rows)} action item{'s' if len(rows) != 1 else ''}:{extra}"}
            noun = "object" if len(matches) == 1 else "objects"
            return {"answer": f"{len(matches)} {noun} match:\n{shown}{more}"}
        first = rows[0]
        return {
            "answer": f"{len(rows)} row{'s' if len(rows) != 1 else ''}; first: "
            + ", ".join(f"{k}={v}" for k, v in first.items())
        }

    def after_validate(state: SearchState) -> str:
        return "answer" if state.get("error") else "run"

    builder = StateGraph(SearchState, context_schema=SearchContext)
    builder.add_node("to_sql", to_sql, retry_policy=LLM_RETRY)
    builder.add_node("validate", validate)
    builder.add_node("run", run, retry_policy=S3_RETRY)
    builder.add_node("answer", answer)
    builder.add_edge(START, "to_sql")
    builder.add_edge("to_sql", "validate")
    builder.add_conditional_edges("validate", after_validate, {"run": "run", "answer": "answer"})
    builder.add_edge("run", "answer")
    builder.add_edge("answer", END)
    return builder.compile(name="search")


graph = build_search_graph()
