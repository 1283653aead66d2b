"""What S3Saver costs, counted by the S3 test server per operation (requests are S3's price)."""

from __future__ import annotations

import uuid

import pytest
from graphs import delta_graph, loop_graph
from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint
from langgraph.checkpoint.memory import InMemorySaver

from marginalia.checkpointers import S3Saver


class CountingSaver(S3Saver):
    """Counts the saver calls LangGraph makes, to compare with the requests S3 received."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls = {"put": 0, "put_writes": 0, "get_tuple": 0}

    def put(self, *args, **kwargs):
        self.calls["put"] += 1
        return super().put(*args, **kwargs)

    def put_writes(self, *args, **kwargs):
        self.calls["put_writes"] += 1
        return super().put_writes(*args, **kwargs)

    def get_tuple(self, *args, **kwargs):
        self.calls["get_tuple"] += 1
        return super().get_tuple(*args, **kwargs)


@pytest.fixture
def s3_saver(s3_store):
    bucket = f"rq-{uuid.uuid4().hex[:12]}"
    s3_store.create_bucket(bucket)
    saver = CountingSaver(s3_store, bucket, "ckpt", encryption_key="", compress="")
    yield saver
    saver.close()


def counts(server) -> dict[str, int]:
    return {k: v for k, v in server.request_counts().items() if v}


def chain(saver: S3Saver, thread: str, n: int) -> dict:
    config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    for step in range(n):
        config = saver.put(config, empty_checkpoint(), {"source": "loop", "step": step}, {})
    return config


def test_one_put_per_checkpoint_and_per_put_writes_no_list_or_head(s3_saver, s3_server):
    graph = loop_graph(s3_saver, steps=10)
    s3_server.reset_counts()
    out = graph.invoke({"messages": []}, {"configurable": {"thread_id": "steps"}}, durability="sync")
    got = counts(s3_server)
    assert out["counter"] == 10
    calls = s3_saver.calls
    assert calls["put"] == 12  # input, step 0, then one per super-step
    assert got["PutObject"] == calls["put"] + calls["put_writes"]
    assert got.get("ListObjectsV2", 0) == calls["get_tuple"] == 1  # only the start-of-run read
    assert "HeadObject" not in got and "GetObject" not in got  # a new thread: the LIST saw nothing
    # Two PUTs per super-step, plus the input checkpoint and its first task's writes.
    assert got["PutObject"] == 2 * 10 + 3

    # Continuing the thread: the one read at the start, then writes only.
    graph = loop_graph(s3_saver, steps=20)
    s3_server.reset_counts()
    graph.invoke(None, {"configurable": {"thread_id": "steps"}}, durability="sync")
    got = counts(s3_server)
    assert got.get("ListObjectsV2") == 1 and got.get("GetObject", 0) <= 2 and "HeadObject" not in got


def test_latest_checkpoint_costs_the_same_at_10_and_200_checkpoints(s3_saver, s3_server):
    spent, bare = {}, {}
    for n in (10, 200):
        head = chain(s3_saver, f"t{n}", n)
        # The head a finished step leaves (no pending writes): found and read in 2 requests.
        reader = S3Saver(s3_saver.store, s3_saver.bucket, s3_saver.prefix, encryption_key="", compress="")
        s3_server.reset_counts()
        tup = reader.get_tuple({"configurable": {"thread_id": f"t{n}"}})
        bare[n] = counts(s3_server)
        assert tup.metadata["step"] == n - 1 and tup.pending_writes == []
        # With a pending write on it: its GET runs beside the checkpoint's (3 requests, 2 round trips).
        s3_saver.put_writes(head, [("messages", ["pending"])], "task")
        reader = S3Saver(s3_saver.store, s3_saver.bucket, s3_saver.prefix, encryption_key="", compress="")
        s3_server.reset_counts()
        tup = reader.get_tuple({"configurable": {"thread_id": f"t{n}"}})
        spent[n] = counts(s3_server)
        assert tup.config["configurable"]["checkpoint_id"] == head["configurable"]["checkpoint_id"]
        assert tup.metadata["step"] == n - 1 and tup.pending_writes == [("task", "messages", ["pending"])]
    assert bare[10] == bare[200] == {"ListObjectsV2": 1, "GetObject": 1}
    assert spent[10] == spent[200] == {"ListObjectsV2": 1, "GetObject": 2}


def test_listing_reads_one_page_per_thousand_keys(s3_saver, s3_server):
    chain(s3_saver, "many", 150)
    s3_server.reset_counts()
    items = list(s3_saver.list({"configurable": {"thread_id": "many", "checkpoint_ns": ""}}))
    got = counts(s3_server)
    assert [t.metadata["step"] for t in items] == list(range(149, -1, -1))
    assert got == {"ListObjectsV2": 1, "GetObject": 150}
    s3_server.reset_counts()
    assert len(list(s3_saver.list({"configurable": {"thread_id": "many"}}, limit=5))) == 5
    assert counts(s3_server)["GetObject"] <= 8


def test_delta_channel_state_and_history(s3_saver, s3_server):
    graph = delta_graph(s3_saver, steps=20)
    config = {"configurable": {"thread_id": "delta"}}
    out = graph.invoke({"log": ["start"]}, config, durability="sync")
    oracle = delta_graph(InMemorySaver(), steps=20)
    expected = oracle.invoke({"log": ["start"]}, config)
    assert out == expected and len(out["log"]) == 21

    fresh = S3Saver(s3_saver.store, s3_saver.bucket, s3_saver.prefix, encryption_key="", compress="")
    assert delta_graph(fresh).get_state(config).values == expected
    head = fresh.get_tuple(config)
    assert "log" not in head.checkpoint["channel_values"]  # rebuilt from writes, not stored

    s3_server.reset_counts()
    ours = fresh.get_delta_channel_history(config=config, channels=["log"])
    ours_counts = counts(s3_server)
    s3_server.reset_counts()
    # The base class's walk: one get_tuple (a LIST and GETs, one after the other) per ancestor.
    default = BaseCheckpointSaver.get_delta_channel_history(fresh, config=config, channels=["log"])
    default_counts = counts(s3_server)
    assert ours == default and ours["log"]["writes"] and "seed" in ours["log"]
    # Ours: the target, then ONE listing scan and the ancestors' records and writes in one window.
    assert ours_counts["ListObjectsV2"] == 2 and default_counts["ListObjectsV2"] >= 5
    assert sum(ours_counts.values()) < sum(default_counts.values()), (ours_counts, default_counts)
