"""Pending-write rules, pruning and run deletion, checked through the public API on both stores."""

from __future__ import annotations

from graphs import delta_graph
from langgraph.checkpoint.base import empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.serde.types import ERROR, INTERRUPT, RESUME

NULL_TASK = "00000000-0000-0000-0000-000000000000"


def head(saver, thread="t"):
    config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    return saver.put(config, empty_checkpoint(), {"source": "input", "step": -1}, {})


def test_regular_writes_first_writer_wins_and_merge_by_index(saver):
    config = head(saver)
    saver.put_writes(config, [("a", 1), ("b", 2)], "task")
    saver.put_writes(config, [("a", 100), ("b", 200)], "task")  # a retry with other values: ignored
    # The null task's writes accumulate: LangGraph saves the whole list again with one more entry.
    saver.put_writes(config, [("x", "first")], NULL_TASK)
    saver.put_writes(config, [("x", "first"), ("y", "second")], NULL_TASK)
    writes = saver.get_tuple(config).pending_writes
    assert [w for w in writes if w[0] == "task"] == [("task", "a", 1), ("task", "b", 2)]
    assert [w for w in writes if w[0] == NULL_TASK] == [(NULL_TASK, "x", "first"), (NULL_TASK, "y", "second")]


def test_special_writes_replace_per_channel(saver):
    config = head(saver)
    saver.put_writes(config, [(INTERRUPT, "ask 1")], "task")
    saver.put_writes(config, [(RESUME, ["yes"])], "task")
    saver.put_writes(config, [(INTERRUPT, "ask 2")], "task")
    saver.put_writes(config, [(ERROR, "boom")], "other")
    writes = saver.get_tuple(config).pending_writes
    assert sorted(w for w in writes if w[0] == "task") == [("task", INTERRUPT, "ask 2"), ("task", RESUME, ["yes"])]
    assert [w for w in writes if w[0] == "other"] == [("other", ERROR, "boom")]


def test_pending_writes_come_back_in_writes_sort_key_order(saver):
    config = head(saver)
    saver.put_writes(config, [("c", 3)], "t-b", task_path="~__pregel_pull, b")
    saver.put_writes(config, [("c", 1), ("d", 2)], "t-a", task_path="~__pregel_pull, a")
    saver.put_writes(config, [("c", 0)], "t-input")
    assert [w[2] for w in saver.get_tuple(config).pending_writes] == [0, 1, 2, 3]


def test_prune_keep_latest_keeps_delta_channel_state(saver):
    graph = delta_graph(saver, steps=13)
    config = {"configurable": {"thread_id": "delta"}}
    out = graph.invoke({"log": ["start"]}, config, durability="sync")
    before = len(list(saver.list(config)))
    saver.prune(["delta"], strategy="keep_latest")
    after = list(saver.list(config))
    # The latest plus the ancestors back to the last snapshot of `log` (every 8 updates) survive.
    assert 1 < len(after) < before
    assert delta_graph(saver, steps=13).get_state(config).values == out
    oracle = delta_graph(InMemorySaver(), steps=13).invoke({"log": ["start"]}, config)
    assert out == oracle


def test_delete_for_runs_removes_only_those_runs(saver):
    graph = delta_graph(saver, steps=3)
    for run in ("run-1", "run-2"):
        graph.invoke(
            {"log": [run]}, {"configurable": {"thread_id": run}, "metadata": {"run_id": run}}, durability="sync"
        )
    saver.delete_for_runs(["run-1"])
    assert list(saver.list({"configurable": {"thread_id": "run-1"}})) == []
    kept = list(saver.list({"configurable": {"thread_id": "run-2"}}))
    assert kept and {t.metadata["run_id"] for t in kept} == {"run-2"}
    assert saver.get_tuple({"configurable": {"thread_id": "run-2"}}).pending_writes is not None
