"""Crash recovery: SIGKILL agent runs at random points, resume them, count the trials survived.

    .venv/bin/python benchmarks/crash.py --trials 100 [--targets local,s3] [--agents minutes,summary] [--seed 1]
    .venv/bin/python benchmarks/crash.py --trials 6 --targets local --agents minutes-long   # 37 chunks

Each trial kills a run 1-3 times (at the Nth engine call, before/after the Nth store, annotation
or checkpoint write, or at a random time), resumes it in a new process each time, and verifies
the result exactly as ``tests/durability`` does (see ``tests/durability/crashkit.py``). Trials
are spread evenly over the targets and agents. Prints ``survived/total`` per target and overall,
and the work redone per kill: model calls beyond an uninterrupted run's, counted from the event
log outside the killed processes (``minutes-long`` is a generated 37-chunk meeting; the goal is at
most the chunks in flight per kill).
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
    combos = [(t, a) for t in targets for a in agents]
    totals: dict[str, list[int]] = {}
    failures = []
    started = time.monotonic()
    try:
        for i in range(args.trials):
            target, agent = combos[i % len(combos)]
            plan = crashkit.plan_kills(rng, crashkit.reference_counts(agent, target))
            trial = crashkit.run_trial(crashkit.Trial(agent, target, f"b{i}", plan))
            row = totals.setdefault(f"{target.kind}/{agent}", [0, 0, 0, 0])
            row[0] += trial.survived
            row[1] += 1
            row[2] += trial.killed
            redone = crashkit.redone_engine_calls(trial)
            row[3] += redone
            if not trial.survived:
                failures.append((trial.name, plan, trial.problems))
            print(
                f"trial {i + 1:3d} {target.kind:5s} {agent:8s} kills={trial.killed} redone={redone} {plan} "
                f"{'ok' if trial.survived else 'FAILED ' + '; '.join(trial.problems)[:300]}",
                flush=True,
            )
    finally:
        if server is not None:
            server.stop()
    print(f"\n{'target/agent':20s} survived/total  kills delivered  model calls redone  per kill")
    for name, (ok, n, kills, redone) in totals.items():
        print(f"{name:20s} {ok:4d}/{n:<4d}       {kills:15d}  {redone:18d}  {redone / max(kills, 1):8.2f}")
    ok = sum(v[0] for v in totals.values())
    n = sum(v[1] for v in totals.values())
    print(f"\ntrials survived: {ok}/{n} in {time.monotonic() - started:.0f} s")
    return 0 if ok == n else 1


if __name__ == "__main__":
    sys.exit(main())
