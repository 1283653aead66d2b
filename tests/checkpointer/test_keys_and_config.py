"""Key layout properties (order, reversibility, safety) and construction from URIs / environment."""

from __future__ import annotations

import uuid

from hypothesis import given, settings
from hypothesis import strategies as st
from langgraph.checkpoint.base.id import uuid6

from marginalia.checkpointers import S3Saver
from marginalia.checkpointers.keys import (
    HASH_ABOVE,
    HASHED,
    Layout,
    decode_segment,
    encode_segment,
    invert_id,
    revert_id,
)
from marginalia.checkpointers.server import checkpointer, saver_from_env
from marginalia.uri import validate_key


def test_inverted_ids_sort_newest_first():
    ids = [str(uuid6(clock_seq=i)) for i in range(200)]  # LangGraph's checkpoint ids, oldest first
    assert len(set(ids)) == 200 and sorted(ids) == ids  # distinct, and their order is creation order
    assert sorted(ids, key=invert_id) == ids[::-1]  # newest first
    assert len({invert_id(i) for i in ids}) == 200
    assert all(revert_id(invert_id(i)) == i for i in ids)


@given(st.lists(st.text(min_size=1, max_size=12), min_size=2, max_size=12, unique=True))
@settings(max_examples=60, deadline=None)
def test_any_other_id_inverts_to_reverse_order(ids):
    ids = [i for i in ids if len(i) != 36]  # UUID-shaped ids take the compact form (tested above)
    assert sorted(ids, key=invert_id) == sorted(ids, key=lambda s: s.encode("utf-8"), reverse=True)
    assert all(revert_id(invert_id(i)) == i for i in ids)


@given(thread=st.text(min_size=1, max_size=40), ns=st.text(max_size=40), task=st.text(min_size=1, max_size=20))
@settings(max_examples=80, deadline=None)
def test_keys_are_valid_and_parse_back(thread, ns, task):
    layout = Layout("b", "p/checkpoints/")
    cid = str(uuid.uuid4())
    for key in (
        layout.start_key(thread, ns, cid),
        layout.next_key(thread, ns, cid),
        layout.writes_key(thread, ns, cid, task, "r"),
        layout.root_key(thread, ns, cid),
    ):
        assert validate_key(key) == key
        parsed = layout.parse(key)
        # a long (hashed) segment parses to None: the record header carries the value
        want_thread = None if encode_segment(thread).startswith(HASHED) else thread
        want_ns = None if encode_segment(ns).startswith(HASHED) else ns
        assert (parsed.thread_id, parsed.checkpoint_ns, parsed.checkpoint_id) == (want_thread, want_ns, cid)
    assert layout.parse(layout.root_key(thread, ns, None)).checkpoint_id == ""
    assert decode_segment(encode_segment(thread)) == want_thread
    assert "/" not in encode_segment(thread) and encode_segment(thread) not in (".", "..")


@given(value=st.text(min_size=1, max_size=3000))
@settings(max_examples=60, deadline=None)
def test_long_segments_are_hashed_and_never_collide_with_encoded_ones(value):
    segment = encode_segment(value)
    assert len(segment) <= HASH_ABOVE and "/" not in segment
    if decode_segment(segment) is None:  # hashed: only for long values, and marked as such
        assert segment.startswith(HASHED) and len(encode_segment(value).encode()) == len(segment)
        assert encode_segment(value + "x") != segment
    else:
        assert decode_segment(segment) == value and not segment.startswith(HASHED)


def test_starts_sort_before_every_group_of_their_namespace():
    layout = Layout("b", "")
    cids = sorted(str(uuid6()) for _ in range(5))
    groups = [layout.next_key("t", "", c) for c in cids] + [layout.writes_key("t", "", cids[0], "task", "r")]
    starts = [layout.start_key("t", "", c) for c in cids] + [
        layout.root_key("t", "", None),
        layout.root_key("t", "", cids[1]),
    ]
    assert max(starts) < min(groups)


def test_from_uri_and_server_factory(tmp_path, monkeypatch):
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{tmp_path / 'store'}")
    monkeypatch.setenv("MARGINALIA_STATE", "s3://state-bucket/team/v1")
    monkeypatch.delenv("MARGINALIA_CHECKPOINT_KEY", raising=False)
    monkeypatch.delenv("MARGINALIA_CHECKPOINT_COMPRESS", raising=False)
    saver = S3Saver.from_uri("s3://state-bucket/team/v1")
    assert saver.uri == "s3://state-bucket/team/v1/checkpoints/"
    config = saver.put(
        {"configurable": {"thread_id": "t", "checkpoint_ns": ""}},
        {"v": 1, "id": str(uuid6()), "ts": "", "channel_values": {"x": 1}, "channel_versions": {}, "versions_seen": {}},
        {"source": "input", "step": -1},
        {},
    )
    from_env = saver_from_env()
    assert from_env.get_tuple(config).checkpoint["channel_values"] == {"x": 1}


async def test_langgraph_json_checkpointer_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{tmp_path / 'store'}")
    monkeypatch.delenv("MARGINALIA_STATE", raising=False)
    async with checkpointer() as saver:
        assert isinstance(saver, S3Saver) and saver.uri == "s3://marginalia-state/v1/checkpoints/"
        config = await saver.aput(
            {"configurable": {"thread_id": "srv", "checkpoint_ns": ""}},
            {"v": 1, "id": str(uuid6()), "ts": "", "channel_values": {}, "channel_versions": {}, "versions_seen": {}},
            {"source": "input", "step": -1},
            {},
        )
        assert (await saver.aget_tuple(config)).config == config


def test_compressing_serializer_is_safe_from_many_threads_at_once():
    """LangGraph saves checkpoints and pending writes from background threads concurrently; one
    shared zstd compressor fails under that ("Src size is incorrect")."""
    from concurrent.futures import ThreadPoolExecutor

    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    from marginalia.checkpointers.serde import ZstdSerializer

    serde = ZstdSerializer(JsonPlusSerializer(), threshold=16)
    docs = [{"n": i, "text": (f"payload {i} ") * (2000 + 37 * i)} for i in range(64)]
    with ThreadPoolExecutor(8) as pool:
        packed = list(pool.map(serde.dumps_typed, docs))
    assert all(typ.endswith("|zstd") for typ, _ in packed)
    assert [serde.loads_typed(p) for p in packed] == docs


def test_from_uri_with_a_store_spec_is_a_context_manager(tmp_path):
    spec = f"local:{tmp_path / 'buckets'}"
    checkpoint = {"v": 1, "id": str(uuid6()), "ts": "", "channel_values": {"x": 2}}
    checkpoint |= {"channel_versions": {}, "versions_seen": {}}
    with S3Saver.from_uri("s3://cm-bucket/p", store=spec, encryption_key="", compress="") as saver:
        config = saver.put({"configurable": {"thread_id": "t", "checkpoint_ns": ""}}, checkpoint, {"step": -1}, {})
    with S3Saver.from_uri("s3://cm-bucket/p", store=spec, encryption_key="", compress="") as again:
        assert again.get_tuple(config).checkpoint["channel_values"] == {"x": 2}


def test_with_allowlist_reaches_the_serializer_inside_encryption_and_compression(local_store):
    """LangGraph's own with_allowlist goes through a private helper that sees one encryption layer
    only; ours rebuilds the stack around JsonPlusSerializer.with_msgpack_allowlist (public API)."""
    import base64
    import os

    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    local_store.create_bucket("allow-bucket")
    key = base64.b64encode(os.urandom(32)).decode()
    strict = JsonPlusSerializer(allowed_msgpack_modules=[("a", "B")])
    saver = S3Saver(local_store, "allow-bucket", "p", serde=strict, encryption_key=key, compress="zstd")
    clone = saver.with_allowlist([("collections", "OrderedDict")])

    def innermost(serde):
        while hasattr(serde, "serde"):
            serde = serde.serde
        return serde

    assert innermost(clone.serde)._allowed_msgpack_modules == {("a", "B"), ("collections", "OrderedDict")}
    assert innermost(saver.serde)._allowed_msgpack_modules == {("a", "B")}  # the original is unchanged
    checkpoint = {"v": 1, "id": str(uuid6()), "ts": "", "channel_values": {"x": 3}}
    checkpoint |= {"channel_versions": {}, "versions_seen": {}}
    config = clone.put({"configurable": {"thread_id": "t", "checkpoint_ns": ""}}, checkpoint, {"step": -1}, {})
    assert saver.get_tuple(config).checkpoint["channel_values"] == {"x": 3}


def test_async_twins_never_wait_for_the_event_loops_default_executor(tmp_path):
    """Under ``graph.astream`` LangGraph runs a fan-out's sync nodes on the loop's default
    executor; a save queued there waited until every chunk had started, and a crash lost the
    finished ones (issue 17 item 1). Here that executor's one thread is held and a task queued
    behind it: the saver's async twins still complete, on the saver's own threads."""
    import asyncio
    import threading
    from concurrent.futures import ThreadPoolExecutor

    config = {"configurable": {"thread_id": "t", "checkpoint_ns": "", "checkpoint_id": str(uuid6())}}

    async def main(saver: S3Saver) -> None:
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
        gate = threading.Event()
        held = loop.run_in_executor(None, gate.wait)  # the default executor's only thread
        queued = loop.run_in_executor(None, lambda: "ran")  # a chunk waiting for a thread
        try:
            saved = asyncio.gather(
                saver.aput_writes(config, [("partials", [1])], "task-1"),
                saver.aget_tuple({"configurable": {"thread_id": "t"}}),
            )
            # a guard against hanging forever, not a speed limit
            await asyncio.wait_for(saved, timeout=120)
            assert not queued.done()  # the default executor never got to it: the saves did not use it
        finally:
            gate.set()
            await held
            assert await queued == "ran"

    with S3Saver.from_uri("s3://state/x", store=f"local:{tmp_path}") as saver:
        asyncio.run(main(saver))
        assert [w for w in saver.store.list_objects("state", "x/")], "the pending writes were saved"
