"""Crash recovery: SIGKILL agent runs at random points, resume them, count the trials survived.

    .venv/bin/python benchmarks/crash.py --trials 100 [--targets local,s3] [--agents minutes,summary] [--seed 1]
    .venv/bin/python benchmarks/crash.py --trials 6 --targets local --agents minutes-long   # 37 chunks
    .venv/bin/python benchmarks/crash.py --trials 6 --targets local --agents minutes-long --drivers sync,async

Each trial kills a run 1-3 times (at the Nth engine call, before/after the Nth store, annotation
or checkpoint write, or at a random time), resumes it in a new process each time, and verifies
the result exactly as ``tests/durability`` does (see ``tests/durability/crashkit.py``). Trials
are spread evenly over the targets and agents. Prints ``survived/total`` per target and overall,
and the work redone per kill: model calls beyond an uninterrupted run's, counted from the event
log outside the killed processes (``minutes-long`` is a generated 37-chunk meeting; the goal is at
most the chunks in flight per kill). Of those, ``saving`` were chunks whose save was under way at
the kill, and ``lost`` finished chunks whose save had not even begun (redone minus those, minus the
call an ``engine:N`` kill fires after): 0 when each chunk is saved as it ends. Calls a kill cut
short are counted apart (``cut``: they never returned, so they are in flight, not redone).
``--drivers`` spreads the trials over ``drive`` (sync) and ``adrive`` (async) as well.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "durability"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--targets", default="local,s3")
    parser.add_argument("--agents", default="minutes,summary")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--drivers", default="sync", help="sync,async: the children run drive or adrive")
    args = parser.parse_args()
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_EC2_METADATA_DISABLED="true",
    )
    import crashkit

    root = Path(tempfile.mkdtemp(prefix="marginalia-crash-"))
    server = None
    targets = []
    for kind in args.targets.split(","):
        if kind == "s3":
            from marginalia.testing.s3_server import start_test_server

            server = start_test_server()
            targets.append(crashkit.Target("s3", root / "s3", server.endpoint_url))
        else:
            targets.append(crashkit.Target("local", root / "local"))
        targets[-1].root.mkdir(parents=True, exist_ok=True)
    agents = args.agents.split(",")
    rng = random.Random(args.seed)
    combos = [(t, a, d) for t in targets for a in agents for d in args.drivers.split(",")]
    totals: dict[str, list[int]] = {}
    worst: dict[str, int] = {}
    failures = []
    started = time.monotonic()
    try:
        for i in range(args.trials):
            target, agent, driver = combos[i % len(combos)]
            plan = crashkit.plan_kills(rng, crashkit.reference_counts(agent, target))
            trial = crashkit.run_trial(crashkit.Trial(agent, target, f"b{i}", plan, driver=driver))
            name = f"{target.kind}/{agent}/{driver}"
            row = totals.setdefault(name, [0, 0, 0, 0, 0, 0, 0])
            redone = crashkit.redone_engine_calls(trial)
            cut, killer, saving = crashkit.in_flight_engine_calls(trial)
            lost = redone - killer - saving
            for j, n in enumerate((trial.survived, 1, trial.killed, redone, lost, cut, saving)):
                row[j] += n
            if trial.killed:
                worst[name] = max(worst.get(name, 0), -(-redone // trial.killed))
            if not trial.survived:
                failures.append((trial.name, plan, trial.problems))
            print(
                f"trial {i + 1:3d} {name:26s} kills={trial.killed} redone={redone} saving={saving} lost={lost} "
                f"cut={cut} "
                f"{plan} {'ok' if trial.survived else 'FAILED ' + '; '.join(trial.problems)[:300]}",
                flush=True,
            )
    finally:
        if server is not None:
            server.stop()
    from marginalia.nodes.minutes import CHUNKS_AT_ONCE

    print("\nmodel calls per kill: redone (worst trial); of them, saving: the chunk's save was under way at the")
    print("kill; lost: its save had not begun (queued behind other work); cut: calls a kill cut short")
    print(f"goal: redone per kill <= the chunks in flight (computing, {CHUNKS_AT_ONCE} at once, or saving), lost 0\n")
    print(f"{'target/agent/driver':26s} survived/total  kills  redone  per kill (worst)  saving  lost  cut")
    for name, (ok, n, kills, redone, lost, cut, saving) in totals.items():
        print(
            f"{name:26s} {ok:4d}/{n:<4d}       {kills:5d}  {redone:6d}  {redone / max(kills, 1):8.2f} ({worst.get(name, 0):3d})"
            f"  {saving:6d}  {lost:4d}  {cut:3d}"
        )
    ok = sum(v[0] for v in totals.values())
    n = sum(v[1] for v in totals.values())
    print(f"\ntrials survived: {ok}/{n} in {time.monotonic() - started:.0f} s")
    return 0 if ok == n else 1


if __name__ == "__main__":
    sys.exit(main())
