"""Annotation writes happen once: a node repeated after a crash (its write landed, its checkpoint
did not) finds what it wrote and writes nothing, so no annotation changes under a reader."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import marginalia
from marginalia.context import AgentContext
from marginalia.engines.offline import OfflineEngine
from marginalia.graph.minutes import build_minutes_graph
from marginalia.nodes.annotate import make_annotate_node
from marginalia.nodes.ingest import source_of
from marginalia.nodes.minutes import payloads
from marginalia.nodes.transcript import transcript_node
from marginalia.runtime import open_checkpointer, state_location


def CountingStore(store):
    """``store`` itself (a real Store), its annotation puts counted in ``store.puts``."""
    put = type(store).put_annotation
    store.puts = []

    def counted(bucket, key, name, payload, **kw):
        store.puts.append(name)
        return put(store, bucket, key, name, payload, **kw)

    store.put_annotation = counted
    return store


def node_env(store, thread_id: str):
    runtime = SimpleNamespace(context=AgentContext(store=store, engine=OfflineEngine()))
    config = {"configurable": {"thread_id": thread_id}, "metadata": {}}
    return runtime, config


def info_of(store, bucket, key, name):
    return next(a for a in store.list_annotations(bucket, key) if a.name == name)


def test_the_transcript_node_repeated_writes_nothing(local_env, standup):
    uri = local_env.put("m/standup.vtt", standup)
    store = CountingStore(local_env.store)
    state = {
        "source": source_of(local_env.store.head_object(local_env.bucket, "m/standup.vtt")),
        "transcript_input": None,
    }
    first = transcript_node(state, *node_env(store, "t-1"))
    before = info_of(local_env.store, local_env.bucket, "m/standup.vtt", "transcript")
    again = transcript_node(state, *node_env(store, "t-1"))  # the same thread, after a crash
    after = info_of(local_env.store, local_env.bucket, "m/standup.vtt", "transcript")
    assert store.puts == ["transcript"] and again == first
    assert (after.etag, after.last_modified) == (before.etag, before.last_modified)
    assert local_env.annotation("m/standup.vtt", "transcript")["provenance"]["thread_id"] == "t-1"

    other = transcript_node(state, *node_env(store, "t-2"))  # another thread's result is its own
    assert store.puts == ["transcript", "transcript"] and other["transcript"] == first["transcript"]
    assert local_env.annotation("m/standup.vtt", "transcript")["provenance"]["thread_id"] == "t-2"
    assert uri


def test_the_annotate_node_repeated_writes_nothing_and_a_changed_result_is_written(local_env, standup):
    local_env.put("m/standup.vtt", standup)
    done = marginalia.minutes(f"s3://{local_env.bucket}/m/standup.vtt", approve=True, thread_id="idem-1")
    graph = build_minutes_graph(checkpointer=open_checkpointer(local_env.store, state_location(local_env.store)))
    values = graph.get_state({"configurable": {"thread_id": "idem-1"}}).values
    annotate = make_annotate_node(agent="minutes", payloads=payloads)
    before = {
        n: info_of(local_env.store, local_env.bucket, "m/standup.vtt", n) for n in ("meeting_minutes", "action_items")
    }

    store = CountingStore(local_env.store)
    repeated = annotate(values, *node_env(store, "idem-1"))
    assert store.puts == []
    assert [a["etag"] for a in repeated["annotations"]] == [a.etag for a in done.annotations]
    after = {n: info_of(local_env.store, local_env.bucket, "m/standup.vtt", n) for n in before}
    assert {n: (a.etag, a.last_modified) for n, a in after.items()} == {
        n: (a.etag, a.last_modified) for n, a in before.items()
    }

    edited = {**values, "approved": {**values["approved"], "title": "Edited title"}}
    annotate(edited, *node_env(store, "idem-1"))  # a different result of the same thread is written
    assert sorted(store.puts) == ["action_items", "meeting_minutes"]
    assert local_env.annotation("m/standup.vtt", "meeting_minutes")["title"] == "Edited title"


@pytest.mark.parametrize("name", ["transcript"])
def test_a_repeated_write_on_a_replaced_object_is_refused(local_env, standup, name):
    """Finding its annotation does not skip the ETag rule: a replaced object is named."""
    from marginalia.errors import ObjectChanged

    local_env.put("m/standup.vtt", standup)
    state = {
        "source": source_of(local_env.store.head_object(local_env.bucket, "m/standup.vtt")),
        "transcript_input": None,
    }
    transcript_node(state, *node_env(local_env.store, "t-3"))
    local_env.put("m/standup.vtt", standup.read_bytes() + b"\n")
    with pytest.raises(ObjectChanged, match="changed after it was read"):
        transcript_node(state, *node_env(local_env.store, "t-3"))
    assert name not in local_env.annotation_names("m/standup.vtt")
