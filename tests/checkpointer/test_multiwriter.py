"""Several writers on one thread without a lease (Studio's server, direct use, Temporal workers):
two and three processes, and async tasks, on the S3 test server and the local store.

Scenarios: concurrent runs, forks from several processes, a new-thread race, delete during a run,
double resume. Each writer sleeps a seeded random moment before every ``put``; the seed is fixed
(``MARGINALIA_MULTIWRITER_SEED`` overrides it) and printed in every failure. After each scenario:
one root per namespace, no dangling parent, every listed checkpoint readable by id, latest = the
highest id, list strictly newest-first, and a deleted thread stays deleted.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from graphs import loop_graph, review_graph
from langgraph.types import Command
from multiwriter_worker import JitteredSaver
from test_graphs import store_spec

from marginalia.checkpointers import S3Saver
from marginalia.errors import ThreadBusy, ThreadDeleted

HERE = Path(__file__).parent
SEED = int(os.environ.get("MARGINALIA_MULTIWRITER_SEED", "1616"))

# name → roles for 2 and for 3 writers
SCENARIOS = {
    "concurrent-runs": (["run", "run"], ["run", "run", "run"]),
    "forks": (["fork", "run"], ["fork", "fork", "run"]),
    "new-thread-race": (["run", "run"], ["run", "run", "run"]),
    "delete-during-run": (["run", "delete"], ["run", "delete", "idle"]),
    "double-resume": (["resume", "resume"], ["resume", "resume", "resume"]),
}
ALLOWED = {"run": {"ok", "ThreadBusy"}, "fork": {"ok", "ThreadBusy"}, "resume": {"ok", "ThreadBusy"}}


def fresh(saver: S3Saver) -> S3Saver:
    return S3Saver(saver.store, saver.bucket, saver.prefix, encryption_key="", compress="")


def prepare(saver: S3Saver, name: str, thread: str) -> None:
    """The thread as each scenario finds it."""
    config = {"configurable": {"thread_id": thread}}
    if name in ("concurrent-runs", "forks"):
        loop_graph(saver, steps=2 if name == "concurrent-runs" else 4).invoke({"messages": []}, config)
    elif name == "double-resume":
        review_graph(saver).invoke({"topic": "t", "messages": []}, config)


def check_thread(saver: S3Saver, thread: str, *, deleted: bool, why: str) -> None:
    reader = fresh(saver)
    tuples = list(reader.list({"configurable": {"thread_id": thread}}))
    if deleted:
        assert tuples == [], f"deleted thread {thread} came back with {len(tuples)} checkpoints {why}"
        assert reader.get_tuple({"configurable": {"thread_id": thread}}) is None, why
        return
    assert tuples, f"thread {thread} has no checkpoints {why}"
    by_ns: dict[str, list] = {}
    for tup in tuples:
        by_ns.setdefault(tup.config["configurable"]["checkpoint_ns"], []).append(tup)
    for ns, tups in by_ns.items():
        ids = [t.config["configurable"]["checkpoint_id"] for t in tups]
        assert all(a > b for a, b in zip(ids, ids[1:], strict=False)), f"list not strictly newest-first {why}"
        roots = [t for t in tups if t.parent_config is None]
        assert len(roots) == 1, f"{len(roots)} roots in namespace {ns!r} {why}"
        dangling = [t for t in tups if t.parent_config and t.parent_config["configurable"]["checkpoint_id"] not in ids]
        assert not dangling, f"parents missing for {[t.config for t in dangling]} {why}"
        for tup in tups:  # (one reader for all: its cache of record ids is what a reader has)
            got = reader.get_tuple(tup.config)
            assert got is not None and got.config == tup.config, f"{tup.config} not readable by id {why}"
            assert got.metadata == tup.metadata and got.pending_writes == tup.pending_writes, why
        latest = fresh(saver).get_tuple({"configurable": {"thread_id": thread, "checkpoint_ns": ns}})
        assert latest.config["configurable"]["checkpoint_id"] == max(ids), f"latest is not the newest {why}"


def check_outcomes(name: str, outcomes: list[dict], why: str) -> None:
    for o in outcomes:
        if o["role"] == "run" and name == "delete-during-run":
            assert o["outcome"] in ("ok", "ThreadDeleted"), (o, why)
        elif o["role"] in ALLOWED:
            assert o["outcome"] in ALLOWED[o["role"]], (o, why)
    if name != "delete-during-run":
        assert any(o["outcome"] == "ok" for o in outcomes if o["role"] != "idle"), (outcomes, why)


@pytest.mark.parametrize("backend,writers", [("local", 3), ("s3", 2)])
def test_processes(make_saver, backend, writers, tmp_path):
    saver = make_saver(backend, encryption_key="", compress="")
    plan = []
    for name, roles in SCENARIOS.items():
        thread = f"{name}-{writers}"
        prepare(saver, name, thread)
        plan.append({"name": name, "thread": thread, "roles": roles[writers - 2]})
    plan_file = tmp_path / "plan.json"
    plan_file.write_text(json.dumps(plan))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    args = [store_spec(saver), saver.bucket, saver.prefix, str(plan_file)]
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, str(HERE / "multiwriter_worker.py"), *args, str(i), str(SEED)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(writers)
    ]
    results = [p.communicate(timeout=240) for p in procs]
    why = f"(seed {SEED}; rerun with MARGINALIA_MULTIWRITER_SEED={SEED}; {backend}, {writers} processes)"
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, f"worker failed {why}: {err[-3000:]}"
    lines = [json.loads(line) for out, _ in results for line in out.splitlines() if line.startswith("{")]
    print(f"{writers} processes on {backend}: {time.monotonic() - started:.1f} s, seed {SEED}")
    for scenario in plan:
        outcomes = [o for o in lines if o["scenario"] == scenario["name"]]
        assert len(outcomes) == writers, (outcomes, why)
        check_outcomes(scenario["name"], outcomes, f"{why} in {scenario['name']}")
        check_thread(
            saver, scenario["thread"], deleted=scenario["name"] == "delete-during-run", why=f"{why} {scenario['name']}"
        )


class Signalled(JitteredSaver):
    """Sets ``running`` after each put (the deleter waits for it)."""

    running: threading.Event

    def put(self, *args, **kwargs):
        out = super().put(*args, **kwargs)
        self.running.set()
        return out


async def play_async(base: S3Saver, name: str, i: int, role: str, thread: str, running: threading.Event) -> dict:
    saver = Signalled(base.store, base.bucket, base.prefix, encryption_key="", compress="")
    saver.running = running
    rng = saver.rng = random.Random(f"{SEED}:{name}:{i}")
    config = {"configurable": {"thread_id": thread}}
    try:
        if role == "run":
            await loop_graph(saver, steps=4).ainvoke({"messages": [role]}, config, durability="sync")
        elif role == "fork":
            graph = loop_graph(saver, steps=4)
            history = [s async for s in graph.aget_state_history(config)]
            old = rng.choice(history[: max(1, len(history) - 1)])
            forked = await graph.aupdate_state(old.config, {"messages": ["fork"]})
            await graph.ainvoke(None, forked, durability="sync")
        elif role == "resume":
            await review_graph(saver).ainvoke(Command(resume="approve"), config, durability="sync")
        elif role == "delete":
            while not running.is_set():
                await asyncio.sleep(0.005)
            await asyncio.sleep(rng.uniform(0, 0.03))
            await saver.adelete_thread(thread)
    except (ThreadBusy, ThreadDeleted) as exc:
        return {"role": role, "outcome": type(exc).__name__}
    finally:
        saver.close()
    return {"role": role, "outcome": "ok"}


async def test_async_tasks(make_saver, backend):
    """Three writers as asyncio tasks in one process (each its own saver, as each process has)."""
    base = make_saver(backend, encryption_key="", compress="")
    why = f"(seed {SEED}; rerun with MARGINALIA_MULTIWRITER_SEED={SEED}; {backend}, async tasks)"
    for name, roles in SCENARIOS.items():
        thread = f"{name}-async"
        prepare(base, name, thread)
        running = threading.Event()
        outcomes = await asyncio.gather(
            *(play_async(base, name, i, role, thread, running) for i, role in enumerate(roles[1]))
        )
        check_outcomes(name, list(outcomes), f"{why} in {name}")
        check_thread(base, thread, deleted=name == "delete-during-run", why=f"{why} {name}")
