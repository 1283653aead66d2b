"""Friendly forms, offline question→SQL and the search graph, run on the real local store."""

from __future__ import annotations

import datetime as dt

import pytest

from marginalia.errors import InvalidInput, QueryError
from marginalia.search import find, friendly, missing, nl, sql

BUCKET = "team-meetings.2026"  # conftest.build_corpus
TODAY = dt.date(2026, 6, 30)


def keys(result):
    return [r["object_key"] for r in result.as_dicts()]


def test_find_with_contains_and_json_conditions(searcher):
    result = find(
        searcher,
        name="meeting_minutes",
        contains="eks",
        where=["date>=2026-06-09", "action_items[].owner=Alice"],
        bucket=BUCKET,
    )
    assert keys(result) == ["meetings/2026-06-10-eks-upgrade.mp4"]


def test_find_any_element_contains_and_numbers(searcher):
    assert keys(find(searcher, name="meeting_minutes", where=["action_items[].owner~alice"], bucket=BUCKET)) == [
        "meetings/2026-06-10-eks-upgrade.mp4", "meetings/2026-06-12-budget.mp4",
    ]  # fmt: skip
    assert keys(find(searcher, where=["audio_tracks>5"])) == ["meetings/2026-06-10-eks-upgrade.mp4"]
    assert keys(find(searcher, where=["audio_tracks>=2", "codec=aac"])) == [
        "meetings/2026-06-10-eks-upgrade.mp4", "meetings/2026-06-12-budget.mp4",
    ]  # fmt: skip
    assert keys(find(searcher, name="summary", where=["keywords[]=EKS"])) == ["reports/q2-results.pdf"]
    assert keys(
        find(searcher, name="meeting_minutes", where=["topics[]!=budget", "date<2026-06-05"], prefix="meetings/")
    ) == ["meetings/2026-06-01-eks-kickoff.mp4"]


def test_find_compiles_to_athena_sql():
    query = friendly.find_sql("meeting_minutes", where=["action_items[].owner=O'Brien"])
    athena = sql.to_athena(sql.parse(query), bucket="b-1")
    assert "ANY_MATCH(TRY_CAST(JSON_EXTRACT(text_value, '$.action_items') AS ARRAY(JSON)), x0 ->" in athena
    assert "'O''Brien'" in athena  # quotes escaped: no injection through a value


@pytest.mark.parametrize("bad", ["date", "date>>2026", "a..b=1", "a[0]=1", "x=", "$.a=1", "a b=c"])
def test_bad_conditions_are_refused_clearly(bad):
    with pytest.raises(InvalidInput, match="condition|field"):
        friendly.find_sql("summary", where=[bad])


def test_injection_through_values_stays_a_value(searcher):
    result = find(searcher, name="summary", contains="x') OR 1=1 --")
    assert result.rows == []


def test_missing_with_has(searcher):
    assert keys(missing(searcher, "meeting_minutes", has="transcript", bucket=BUCKET)) == [
        "meetings/2026-06-15-standup.mp4"
    ]


def test_missing_lists_objects_never_annotated(searcher):
    assert keys(missing(searcher, "summary", prefix="reports/", suffix=".pdf", bucket=BUCKET)) == [
        "reports/2025/annual.pdf", "reports/architecture.pdf",
    ]  # fmt: skip
    unscoped = missing(searcher, "summary", suffix=".pdf")  # every bucket's current objects
    assert keys(unscoped) == ["reports/2025/annual.pdf", "reports/architecture.pdf"]
    everything = keys(missing(searcher, "summary", bucket=BUCKET))
    assert "reports/notes.txt" in everything and "meetings/2026-06-15-standup.mp4" in everything
    assert "reports/q2-results.pdf" not in everything


def test_missing_follows_the_current_version(corpus, searcher):
    """A new version starts without annotations (R11.2): it is missing its summary again."""
    corpus.put_object(BUCKET, "papers/attention.pdf", b"%PDF-1.7 v2")
    try:
        assert "papers/attention.pdf" in keys(missing(searcher, "summary", suffix=".pdf", bucket=BUCKET))
    finally:
        corpus.put_object(BUCKET, "papers/attention.pdf", b"%PDF-1.7 fake")
        corpus.put_json_annotation(BUCKET, "papers/attention.pdf", "summary", {"summary": "A transformer paper."})
        corpus.put_json_annotation(BUCKET, "papers/attention.pdf", "pipeline_status", {"status": "OK"})


@pytest.mark.parametrize(
    "question, expected",
    [
        ("which PDFs haven't been summarised yet?", ["reports/2025/annual.pdf", "reports/architecture.pdf"]),
        ("recordings with a transcript but no minutes", ["meetings/2026-06-15-standup.mp4"]),
        ("meetings about EKS since June 9", ["meetings/2026-06-10-eks-upgrade.mp4"]),
        ("minutes mentioning budget before 2026-06-13", ["meetings/2026-06-12-budget.mp4"]),
        ("summaries about revenue", ["reports/q2-results.pdf"]),
    ],
)
def test_offline_questions(searcher, question, expected):
    query = nl.question_to_sql(question, today=TODAY)
    assert keys(searcher.run(query, bucket=BUCKET)) == expected


def test_action_items_owned_by_a_person(searcher):
    result = searcher.run(nl.question_to_sql("action items owned by Alice", today=TODAY), bucket=BUCKET)
    assert [(r["owner"], r["task"]) for r in result.as_dicts()] == [
        ("Alice", "Write the EKS upgrade runbook"), ("Alice Martin", "Update the Q3 forecast"),
    ]  # fmt: skip


def test_counts_by_name(searcher):
    result = searcher.run(nl.question_to_sql("how many annotations of each name?"), bucket=BUCKET)
    assert dict(result.rows)["transcript"] == 4


def test_dates_without_a_year_mean_the_last_one():
    assert "'2025-12-24'" in nl.question_to_sql("meetings since December 24", today=TODAY)
    assert "'2026-06-09'" in nl.question_to_sql("meetings since 9 June", today=TODAY)


def test_unanswerable_question_is_a_clear_error():
    with pytest.raises(QueryError, match="could not turn"):
        nl.question_to_sql("?? !!")


def test_search_graph_answers_with_objects(corpus):
    from marginalia.graph.search import build_search_graph

    graph = build_search_graph(store=corpus)
    state = graph.invoke({"question": "recordings with a transcript but no minutes", "bucket": BUCKET})
    assert state["matches"] == [f"s3://{BUCKET}/meetings/2026-06-15-standup.mp4"]
    assert "1 object match" in state["answer"] and "standup" in state["answer"]
    state = graph.invoke({"question": "action items owned by Bob"}, context={"bucket": BUCKET})
    assert "Bob: Drain the old node groups" in state["answer"]


def test_search_graph_refuses_unsafe_sql_from_an_engine(corpus):
    from marginalia.graph.search import build_search_graph

    class Reckless:
        name = "chat-model"

        def question_to_sql(self, question, *, schema):
            assert "annotation_table" in schema
            return "DELETE FROM annotation"

    state = build_search_graph(engine=Reckless(), store=corpus).invoke({"question": "clean up"})
    assert state["error"] and "refused" in state["answer"] and "rows" not in state
    assert find(
        __import__("marginalia.search.local", fromlist=["LocalSearch"]).LocalSearch(corpus), name="summary"
    ).rows


def test_search_graph_reads_its_context_and_retries_only_transient_failures(corpus, monkeypatch):
    """The store comes from the run's context as a spec string (what Studio's form sends); an
    engine's transient failure is retried by the node's policy, a refusal is answered at once."""
    from marginalia import context
    from marginalia.errors import QueryError, TransientError
    from marginalia.graph.search import build_search_graph

    monkeypatch.setitem(context._DEFAULTS, ("store", "local:corpus"), corpus)

    class Flaky:
        name, calls = "chat-model", 0

        def question_to_sql(self, question, *, schema):
            Flaky.calls += 1
            if Flaky.calls == 1:
                raise TransientError("throttled")
            if question == "refuse":
                raise QueryError("no such table")
            return "SELECT object_key FROM annotation_table WHERE name = 'summary'"

    graph = build_search_graph(engine=Flaky())
    state = graph.invoke({"question": "summaries"}, context={"store": "local:corpus", "bucket": BUCKET})
    assert Flaky.calls == 2 and state["rows"] and not state.get("error")  # retried once, then answered
    Flaky.calls = 1  # the next call does not fail transiently
    state = graph.invoke({"question": "refuse"}, context={"store": "local:corpus"})
    assert Flaky.calls == 2 and "no such table" in state["answer"]  # one call: a refusal is not retried


def test_module_graph_compiles_without_checkpointer():
    from marginalia.graph.search import graph

    assert graph.checkpointer is None
    assert {"to_sql", "validate", "run", "answer"} <= set(graph.get_graph().nodes)
