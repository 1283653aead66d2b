"""Issue 16's defects, each reproduced deterministically with several saver instances (each is what
one process has: its own knowledge of the thread's head) on one bucket, on both stores."""

from __future__ import annotations

import pytest
from graphs import loop_graph
from langgraph.checkpoint.base import empty_checkpoint

from marginalia.checkpointers import S3Saver
from marginalia.errors import InvalidInput, ThreadBusy, ThreadDeleted


def cfg(thread_id: str, checkpoint_id: str | None = None, ns: str = "") -> dict:
    conf = {"thread_id": thread_id, "checkpoint_ns": ns}
    if checkpoint_id:
        conf["checkpoint_id"] = checkpoint_id
    return {"configurable": conf}


def peer(saver: S3Saver, store=None) -> S3Saver:
    """Another process's saver on the same bucket (its own head cache)."""
    return S3Saver(store or saver.store, saver.bucket, saver.prefix, encryption_key="", compress="")


def step(saver: S3Saver, config: dict, n: int) -> dict:
    return saver.put(config, empty_checkpoint(), {"source": "loop", "step": n}, {})


class HookStore:
    """The store, running ``hook`` once right after the first listing page it serves."""

    def __init__(self, store, hook):
        self._store, self._hook = store, hook

    def __getattr__(self, name):
        return getattr(self._store, name)

    def list_objects_page(self, *args, **kwargs):
        page = self._store.list_objects_page(*args, **kwargs)
        hook, self._hook = self._hook, None
        if hook is not None:
            hook()
        return page


def test_delete_during_a_run_does_not_resurrect_the_thread(make_saver, backend):
    runner = make_saver(backend, encryption_key="", compress="")
    config = cfg("doomed")
    runner.get_tuple(config)
    for n in range(3):
        config = step(runner, config, n)
    state = {"config": config}

    def run_continues():  # the run writes its next checkpoint between the deleter's LIST and its writes
        state["config"] = step(runner, state["config"], 3)

    admin = peer(runner, HookStore(runner.store, run_continues))
    admin.delete_thread("doomed")
    with pytest.raises(ThreadDeleted):
        for n in range(4, 8):  # the run goes on: it must be stopped, not continue into a hole
            state["config"] = step(runner, state["config"], n)
    for reader in (peer(runner), runner):
        assert reader.get_tuple(cfg("doomed")) is None
        assert list(reader.list({"configurable": {"thread_id": "doomed"}})) == []


def interleaved(saver: S3Saver) -> tuple[S3Saver, S3Saver]:
    """Two processes on one thread: A runs the main chain, B forks from A's first checkpoint, then
    they advance in an uneven interleaving (A twice while B once, and so on)."""
    a, b = saver, peer(saver)
    a.get_tuple(cfg("t"))
    ca = step(a, cfg("t"), 0)
    ca = step(a, ca, 1)
    root = b.get_tuple(cfg("t", ca["configurable"]["checkpoint_id"]))
    cb = step(b, root.config, 100)  # B forks from A's head as it read it by id
    for i in range(8):
        for _ in range(1 + i % 2):
            ca = step(a, ca, 2 + i)
        cb = step(b, cb, 101 + i)
    return a, b


def test_every_listed_checkpoint_is_readable_by_id_after_interleaved_chains(make_saver, backend):
    a, _b = interleaved(make_saver(backend, encryption_key="", compress=""))
    reader = peer(a)
    listed = list(reader.list({"configurable": {"thread_id": "t"}}))
    assert len(listed) == 2 + 12 + 1 + 8
    for tup in listed:
        got = peer(a).get_tuple(tup.config)
        assert got is not None, tup.config
        assert got.config == tup.config and got.metadata == tup.metadata


def test_latest_and_list_order_follow_checkpoint_ids_after_a_concurrent_fork(make_saver, backend):
    a, _b = interleaved(make_saver(backend, encryption_key="", compress=""))
    reader = peer(a)
    ids = [t.config["configurable"]["checkpoint_id"] for t in reader.list({"configurable": {"thread_id": "t"}})]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == len(ids)
    assert reader.get_tuple(cfg("t")).config["configurable"]["checkpoint_id"] == max(ids)
    limited = [t.config["configurable"]["checkpoint_id"] for t in reader.list(cfg("t"), limit=5)]
    assert limited == ids[:5]
    before = [t.config["configurable"]["checkpoint_id"] for t in reader.list(cfg("t"), before=cfg("t", ids[3]))]
    assert before == ids[4:]


def test_two_processes_starting_one_new_thread_one_gets_thread_busy(make_saver, backend):
    a = make_saver(backend, encryption_key="", compress="")
    b = peer(a)
    assert a.get_tuple(cfg("new")) is None and b.get_tuple(cfg("new")) is None
    step(a, cfg("new"), -1)
    with pytest.raises(ThreadBusy, match="'new'"):
        step(b, cfg("new"), -1)
    assert len(list(peer(a).list(cfg("new")))) == 1


def test_long_thread_ids_and_deep_subgraph_namespaces_work(make_saver, backend):
    saver = make_saver(backend, encryption_key="", compress="")
    thread = "t" * 1000
    ns = "|".join(f"level{i}:{'0' * 8}-0000-0000-0000-{i:012d}" for i in range(16))
    for namespace in ("", ns):
        config = step(saver, cfg(thread, ns=namespace), 0)
        saver.put_writes(config, [("messages", ["w"])], "task-" + "x" * 300)
        config = step(saver, config, 1)
        got = peer(saver).get_tuple(cfg(thread, ns=namespace))
        assert got.config == config and got.metadata["step"] == 1
        assert got.parent_config and peer(saver).get_tuple(got.parent_config).pending_writes[0][2] == ["w"]
    threads = {t.config["configurable"]["thread_id"] for t in saver.list(None)}
    namespaces = {
        t.config["configurable"]["checkpoint_ns"] for t in saver.list({"configurable": {"thread_id": thread}})
    }
    assert threads == {thread} and namespaces == {"", ns}
    saver.delete_thread(thread)
    assert list(saver.list(None)) == []


def test_a_key_that_cannot_fit_is_refused_in_one_line_naming_the_limit(make_saver):
    saver = make_saver("local", prefix="p" * 1000, encryption_key="", compress="")
    with pytest.raises(InvalidInput) as err:
        step(saver, cfg("t"), 0)
    message = str(err.value)
    assert "\n" not in message and "1024 bytes" in message and saver.bucket in message


def test_loop_graph_still_runs_after_the_thread_was_forked(make_saver, backend):
    a, _b = interleaved(make_saver(backend, encryption_key="", compress=""))
    graph = loop_graph(peer(a), steps=3)
    out = graph.invoke({"messages": []}, {"configurable": {"thread_id": "fresh"}}, durability="sync")
    assert out["counter"] == 3
