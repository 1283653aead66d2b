"""One writer process of the multi-writer suite: plays its part in each scenario, jittered.

usage: multiwriter_worker.py <local:DIR | s3:ENDPOINT> <bucket> <prefix> <plan.json> <worker-index> <seed>

The plan is a list of scenarios ``{"name", "thread", "roles": [role of worker 0, of worker 1, ...]}``.
Before each scenario the workers meet at a barrier (files in the plan's directory); every ``put``
first sleeps a random 0-15 ms drawn from the seed, so the interleaving varies with the seed and
repeats with it. Roles:

* ``run``: run the loop graph (4 steps) on the thread (continuing it if it exists);
* ``fork``: pick a random checkpoint of the thread's history, update the state there and run on;
* ``resume``: resume the interrupted review graph on the thread;
* ``delete``: wait until a runner of the scenario saved a checkpoint, then delete the thread;
* ``idle``: nothing.

Prints one JSON line per scenario: ``{"scenario", "role", "outcome": "ok" | "ThreadBusy" | ...}``.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from graphs import loop_graph, review_graph  # noqa: E402
from langgraph.types import Command  # noqa: E402

from marginalia.checkpointers import S3Saver  # noqa: E402
from marginalia.errors import ThreadBusy, ThreadDeleted  # noqa: E402


class JitteredSaver(S3Saver):
    """Sleeps a seeded random moment before each put; touches ``signal`` after it."""

    rng: random.Random = random.Random(0)
    signal: Path | None = None

    def put(self, *args, **kwargs):
        time.sleep(self.rng.uniform(0, 0.015))
        out = super().put(*args, **kwargs)
        if self.signal is not None:
            self.signal.touch()
        return out


def open_store(spec: str):
    if spec.startswith("local:"):
        from marginalia.storage.local import LocalStore

        return LocalStore(Path(spec[len("local:") :]))
    from marginalia.storage.s3 import S3Store

    return S3Store(endpoint_url=spec[len("s3:") :])


def wait_for(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.005)


def play(saver: JitteredSaver, role: str, thread: str, rng: random.Random, here: Path) -> None:
    config = {"configurable": {"thread_id": thread}}
    if role == "run":
        saver.signal = here / "running"
        loop_graph(saver, steps=4).invoke({"messages": [role]}, config, durability="sync")
    elif role == "fork":
        graph = loop_graph(saver, steps=4)
        history = list(graph.get_state_history(config))
        old = rng.choice(history[: max(1, len(history) - 1)])
        forked = graph.update_state(old.config, {"messages": ["fork"]})
        graph.invoke(None, forked, durability="sync")
    elif role == "resume":
        review_graph(saver).invoke(Command(resume="approve"), config, durability="sync")
    elif role == "delete":
        wait_for((here / "running").exists, "a runner")
        time.sleep(rng.uniform(0, 0.03))
        saver.delete_thread(thread)
    elif role != "idle":
        raise SystemExit(f"unknown role {role!r}")


def main() -> None:
    spec, bucket, prefix, plan_path, index, seed = sys.argv[1:7]
    me = int(index)
    plan_file = Path(plan_path)
    plan = json.loads(plan_file.read_text())
    workers = len(plan[0]["roles"])
    with JitteredSaver(open_store(spec), bucket, prefix, encryption_key="", compress="") as saver:
        for scenario in plan:
            here = plan_file.parent / scenario["name"]
            here.mkdir(exist_ok=True)
            (here / f"ready-{me}").touch()
            wait_for(lambda h=here: len(list(h.glob("ready-*"))) >= workers, f"the workers of {scenario['name']}")
            rng = random.Random(f"{seed}:{scenario['name']}:{me}")
            saver.rng, saver.signal = rng, None
            role = scenario["roles"][me]
            outcome = "ok"
            try:
                play(saver, role, scenario["thread"], rng, here)
            except (ThreadBusy, ThreadDeleted) as exc:
                outcome = type(exc).__name__
            print(json.dumps({"scenario": scenario["name"], "role": role, "outcome": outcome}), flush=True)


if __name__ == "__main__":
    main()
