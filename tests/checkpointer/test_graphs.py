"""Real LangGraph graphs on S3Saver: interrupts resumed in another process, long threads,
subgraphs, time travel, awkward thread ids, concurrent writers, deletion, encryption, compression."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from graphs import loop_graph, nested_graph, review_graph
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from marginalia.checkpointers import S3Saver
from marginalia.checkpointers.serde import CheckpointDecryptionFailed, CheckpointKeyMissing
from marginalia.errors import CheckpointError, ThreadBusy, ThreadDeleted

HERE = Path(__file__).parent


def cfg(thread_id: str, **extra) -> dict:
    return {"configurable": {"thread_id": thread_id, **extra}}


def store_spec(saver: S3Saver) -> str:
    store = saver.store
    if store.kind == "local":
        return f"local:{store.root}"
    return f"s3:{store.endpoint_url}" if hasattr(store, "endpoint_url") else f"s3:{store._client.meta.endpoint_url}"


def run_resume_process(saver: S3Saver, thread_id: str, verdict: str, key: str = "") -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [
            sys.executable,
            str(HERE / "resume_script.py"),
            store_spec(saver),
            saver.bucket,
            saver.prefix,
            thread_id,
            verdict,
            key,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_interrupt_then_resume_in_a_new_process(saver):
    graph = review_graph(saver)
    thread = "review/1 @ x|y"
    first = graph.invoke({"topic": "storage", "messages": []}, cfg(thread), durability="sync")
    assert first["__interrupt__"][0].value == {"question": "approve?", "draft": "notes on storage"}
    assert graph.get_state(cfg(thread)).next == ("review",)

    out = run_resume_process(saver, thread, "approve")

    assert out["pending_before"] == ["review"]
    assert out["result"]["published"] == "NOTES ON STORAGE"
    assert out["result"]["messages"] == ["drafted", "reviewed:approve", "published"]
    # This process (a different saver instance) sees the other process's final checkpoint.
    fresh = S3Saver(saver.store, saver.bucket, saver.prefix, encryption_key="", compress="")
    state = review_graph(fresh).get_state(cfg(thread))
    assert state.next == () and state.values["published"] == "NOTES ON STORAGE"


def test_fifty_step_threads_end_exact(saver):
    graph = loop_graph(saver, steps=50)
    out = graph.invoke({"messages": []}, cfg("loop-1"), durability="sync")
    assert out["counter"] == 50 and len(out["messages"]) == 50
    assert out["messages"][:4] == ["a1", "b2", "c3", "a4"] and out["messages"][-1] == "b50"
    fresh = S3Saver(saver.store, saver.bucket, saver.prefix, encryption_key="", compress="")
    state = loop_graph(fresh, steps=50).get_state(cfg("loop-1"))
    assert len(state.values["messages"]) == 50 and state.values["last"] == "b"
    history = list(loop_graph(fresh, steps=50).get_state_history(cfg("loop-1")))
    assert len(history) == 52  # input checkpoint, step 0 and 50 node steps
    steps = [h.metadata["step"] for h in history]
    assert steps == sorted(steps, reverse=True) and steps[-1] == -1


def test_subgraph_interrupt_namespaces_and_resume(saver):
    graph = nested_graph(saver)
    thread = "nested"
    graph.invoke({"items": []}, cfg(thread), durability="sync")
    state = graph.get_state(cfg(thread), subgraphs=True)
    assert state.next == ("inner",)
    inner_state = state.tasks[0].state
    assert inner_state.next == ("ask",)
    assert inner_state.values["items"] == ["prepared", "collected"]
    namespaces = {t.config["configurable"]["checkpoint_ns"] for t in saver.list(cfg(thread) | {})}
    assert "" in namespaces and any(ns.startswith("inner:") for ns in namespaces)

    fresh = S3Saver(saver.store, saver.bucket, saver.prefix, encryption_key="", compress="")
    out = nested_graph(fresh).invoke(Command(resume="42"), cfg(thread), durability="sync")
    # The oracle: the same graph on LangGraph's InMemorySaver.
    oracle = nested_graph(InMemorySaver())
    oracle.invoke({"items": []}, cfg(thread))
    expected = oracle.invoke(Command(resume="42"), cfg(thread))
    assert out == expected and out["items"][-2:] == ["answer:42", "finished"]


def test_time_travel_replay_and_fork(saver):
    graph = loop_graph(saver, steps=6)
    graph.invoke({"messages": []}, cfg("tt"), durability="sync")
    history = list(graph.get_state_history(cfg("tt")))
    old = next(h for h in history if h.metadata["step"] == 3)  # after a1 b2 c3
    assert old.values["messages"] == ["a1", "b2", "c3"] and old.next == ("a",)

    replayed = graph.invoke(None, old.config, durability="sync")
    assert replayed["messages"] == ["a1", "b2", "c3", "a4", "b5", "c6"]

    forked_config = graph.update_state(old.config, {"messages": ["X"], "counter": 4})
    forked = graph.invoke(None, forked_config, durability="sync")
    assert forked["messages"] == ["a1", "b2", "c3", "X", "a5", "b6"]
    # The fork is now the thread's latest state; the original branch is still in the history.
    assert graph.get_state(cfg("tt")).values["messages"][-1] == "b6"
    ids = [h.config["configurable"]["checkpoint_id"] for h in graph.get_state_history(cfg("tt"))]
    assert len(ids) == len(set(ids)) and len(ids) > len(history)


@pytest.mark.parametrize(
    "thread_id",
    ["a/b/c", "user@example.com|x", "with space", "ünïcødé ✓ 线程", "..", ".", "%2F", "-", "n"],
)
def test_thread_ids_with_special_characters(make_saver, thread_id):
    saver = make_saver("local", encryption_key="", compress="")
    graph = review_graph(saver)
    graph.invoke({"topic": thread_id, "messages": []}, cfg(thread_id), durability="sync")
    graph.invoke(Command(resume="approve"), cfg(thread_id), durability="sync")
    assert graph.get_state(cfg(thread_id)).values["published"] == f"NOTES ON {thread_id.upper()}"
    other = graph.get_state(cfg(thread_id + "x"))
    assert other.values == {}
    listed = {t.config["configurable"]["thread_id"] for t in saver.list(None)}
    assert listed == {thread_id}


def test_concurrent_writers_get_a_clear_error(make_saver, backend):
    """Two processes (two saver instances) advance the same thread at the same time: one loses."""
    first = make_saver(backend, encryption_key="", compress="")
    barrier = threading.Barrier(2, timeout=20)

    class SlowStartSaver(S3Saver):
        """Holds its first write until the other run has read the thread too: a forced race."""

        waited = False

        def put(self, *args, **kwargs):
            if not self.waited:
                self.waited = True
                barrier.wait()
            return super().put(*args, **kwargs)

    loop_graph(first, steps=3).invoke({"messages": []}, cfg("shared"), durability="sync")
    savers = {n: SlowStartSaver(first.store, first.bucket, first.prefix, encryption_key="", compress="") for n in "AB"}
    results: dict[str, object] = {}

    def run(name: str) -> None:
        try:
            results[name] = loop_graph(savers[name], steps=6).invoke(
                {"messages": [name]}, cfg("shared"), durability="sync"
            )
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[name] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in "AB"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    errors = [r for r in results.values() if isinstance(r, Exception)]
    wins = [r for r in results.values() if isinstance(r, dict)]
    assert len(errors) == 1 and len(wins) == 1, results
    assert isinstance(errors[0], ThreadBusy)
    assert "another writer" in str(errors[0]) and "'shared'" in str(errors[0])
    # The winner's run is the thread's state, intact; the loser wrote nothing visible.
    final = loop_graph(first).get_state(cfg("shared")).values
    assert final == wins[0] and final["counter"] == 6
    assert len(final["messages"]) == 3 + 1 + 3


def _empty_checkpoint():
    from langgraph.checkpoint.base import empty_checkpoint

    return empty_checkpoint()


def test_late_write_after_delete_thread_does_not_resurrect(make_saver, backend):
    runner = make_saver(backend, encryption_key="", compress="")
    admin = S3Saver(runner.store, runner.bucket, runner.prefix, encryption_key="", compress="")
    graph = review_graph(runner)
    graph.invoke({"topic": "x", "messages": []}, cfg("doomed"), durability="sync")
    head = runner.get_tuple(cfg("doomed"))
    runner.put_writes(head.config, [("messages", ["late?"])], "task-1")

    admin.delete_thread("doomed")
    assert admin.get_tuple(cfg("doomed")) is None and list(admin.list(cfg("doomed"))) == []

    # The run that was still going writes its next checkpoint and pending writes: refused, invisible.
    nxt = dict(head.checkpoint, id=_empty_checkpoint()["id"])
    with pytest.raises(ThreadDeleted, match="doomed.*deleted"):
        runner.put(head.config, nxt, {"source": "loop", "step": 9}, {})
    runner.put_writes(head.config, [("messages", ["later"])], "task-2")
    for reader in (admin, runner, S3Saver(runner.store, runner.bucket, runner.prefix, encryption_key="", compress="")):
        assert reader.get_tuple(cfg("doomed")) is None
        assert list(reader.list(cfg("doomed"))) == []
        assert review_graph(reader).get_state(cfg("doomed")).values == {}

    # Only tombstones remain, and the thread id can be used again from scratch.
    left = list(runner.store.list_objects(runner.bucket, runner.layout.thread_prefix("doomed")))
    assert left and all(o.size == 0 or "/w/" in o.key for o in left)
    out = review_graph(runner).invoke({"topic": "again", "messages": []}, cfg("doomed"), durability="sync")
    assert out["draft"] == "notes on again" and out["messages"] == ["drafted"]


def test_trace_id_from_config_metadata_is_stored(saver):
    graph = review_graph(saver)
    config = cfg("traced") | {"metadata": {"trace_id": "0123456789abcdef0123456789abcdef"}}
    graph.invoke({"topic": "t", "messages": []}, config, durability="sync")
    metas = [t.metadata for t in saver.list(cfg("traced"))]
    assert metas and all(m.get("trace_id") == "0123456789abcdef0123456789abcdef" for m in metas)


def test_encryption_at_rest(make_saver, backend):
    key = base64.b64encode(os.urandom(32)).decode()
    saver = make_saver(backend, encryption_key=key, compress="")
    graph = review_graph(saver)
    graph.invoke({"topic": "SECRET-TOPIC-1234", "messages": []}, cfg("enc"), durability="sync")
    raw = b"".join(
        saver.store.get_object(saver.bucket, o.key)[0] for o in saver.store.list_objects(saver.bucket, saver.prefix)
    )
    assert raw and b"SECRET-TOPIC-1234" not in raw and b"notes on" not in raw and b"aesgcm" in raw

    where = f"s3://{saver.bucket}/{saver.prefix}"
    for compress in ("", "zstd"):  # the compression layer must not hide the missing key either
        keyless = S3Saver(saver.store, saver.bucket, saver.prefix, encryption_key="", compress=compress)
        for read in (lambda k=keyless: k.get_tuple(cfg("enc")), lambda k=keyless: list(k.list(cfg("enc")))):
            with pytest.raises(CheckpointKeyMissing) as missing:
                read()
            message = str(missing.value)
            assert message.startswith(f"{where}/enc/"), message  # the thread's checkpoint object
            assert "encrypted" in message and "MARGINALIA_CHECKPOINT_KEY is not set" in message
            assert missing.value.uri and missing.value.uri.startswith(where)
    wrong = S3Saver(saver.store, saver.bucket, saver.prefix, encryption_key=base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(CheckpointDecryptionFailed, match="decryption failed") as failed:
        wrong.get_tuple(cfg("enc"))
    assert isinstance(failed.value, CheckpointError) and str(failed.value).startswith(where)

    # A fresh saver with the key resumes the interrupted run.
    fresh = S3Saver(saver.store, saver.bucket, saver.prefix, encryption_key=key, compress="")
    out = review_graph(fresh).invoke(Command(resume="approve"), cfg("enc"), durability="sync")
    assert out["published"] == "NOTES ON SECRET-TOPIC-1234"


def test_compression_of_large_states(make_saver):
    plain = make_saver("local", encryption_key="", compress="")
    packed = make_saver("local", encryption_key="", compress="zstd")
    big = "lorem ipsum dolor sit amet " * 2000
    for saver in (plain, packed):
        loop_graph(saver, steps=6).invoke({"messages": [big]}, cfg("big"), durability="sync")

    def size(saver):
        return sum(o.size for o in saver.store.list_objects(saver.bucket, saver.prefix))

    assert size(packed) * 10 < size(plain)
    state = loop_graph(packed, steps=6).get_state(cfg("big")).values
    assert state["messages"][0] == big and len(state["messages"]) == 7
    record = packed.get_tuple(cfg("big"))
    assert record.checkpoint["channel_values"]["messages"][0] == big
    body = next(
        packed.store.get_object(packed.bucket, o.key)[0]
        for o in packed.store.list_objects(packed.bucket, packed.prefix)
        if o.size > 0
    )
    assert b"|zstd" in body


async def test_async_graph_uses_the_async_twins(saver):
    graph = review_graph(saver)
    await graph.ainvoke({"topic": "async", "messages": []}, cfg("async"), durability="sync")
    assert (await graph.aget_state(cfg("async"))).next == ("review",)
    out = await graph.ainvoke(Command(resume="approve"), cfg("async"), durability="sync")
    assert out["published"] == "NOTES ON ASYNC"
    history = [s async for s in graph.aget_state_history(cfg("async"))]
    assert history[0].values == out and history[-1].metadata["step"] == -1
