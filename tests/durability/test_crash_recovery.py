"""SIGKILL an agent run at chosen and random moments, resume it in a new process, verify.

Per backend (local bucket directory, S3 test server) and agent (minutes; PDF summary), three
trials: a kill inside a node (after the model call), kills around annotation and checkpoint
writes, and a random plan mixing those with kills at random times. What is verified is listed
in :mod:`crashkit` (final annotations equal an uninterrupted run's; completed nodes ran once;
no torn or undecodable object). ``benchmarks/crash.py --trials 100`` runs many more.
"""

from __future__ import annotations

import random

import pytest

import crashkit

pytestmark = pytest.mark.timeout(240)


def fixed_plans(counts: dict[str, int]) -> list[list[str]]:
    last_annotation = counts["annotation"]
    return [
        ["engine:1"],  # inside extract_chunk / summarize_chunk: the model answered, the node did not return
        [f"annotation:{last_annotation}:before", f"checkpoint:{max(1, counts['checkpoint'] // 2)}:after",
         "annotation:1:after"],  # mid-annotate; right after a checkpoint; after the transcript/first write
    ]


@pytest.mark.parametrize("agent", ["minutes", "summary"])
def test_killed_runs_resume_to_the_uninterrupted_result(crash_target, agent):
    counts = crashkit.reference_counts(agent, crash_target)
    assert counts["engine"] >= 1 and counts["annotation"] >= 1 and counts["checkpoint"] >= 3
    seed = random.randrange(1 << 20)
    plans = fixed_plans(counts) + [crashkit.plan_kills(random.Random(seed), counts, max_kills=2)]
    failures, kills = [], 0
    for i, plan in enumerate(plans):
        name = f"{agent}-{crash_target.kind}-{seed:x}-{i}"
        trial = crashkit.run_trial(crashkit.Trial(agent, crash_target, name, plan))
        kills += trial.killed
        if not trial.survived:
            failures.append(f"{plan} (exit codes {trial.exit_codes}): {trial.problems}")
    assert not failures, f"seed {seed}: " + "; ".join(failures)
    assert kills >= len(plans)  # every trial was really interrupted at least once


def test_verification_catches_a_node_that_ran_twice(local_target):
    """The execution check is not vacuous: a completed task's work seen again fails it."""
    want = crashkit.reference_work("minutes", local_target)
    events = [
        {"ev": "engine", "pid": 1, "method": "extract_minutes", "node": "extract_chunk", "task": "t1", "step": 3},
        {"ev": "write", "phase": "end", "pid": 1, "op": "put_object", "bucket": "s", "key": "v1/checkpoints/x/-/g/w/t1/r"},
        {"ev": "engine", "pid": 2, "method": "extract_minutes", "node": "extract_chunk", "task": "t9", "step": 3},
    ]
    problems = crashkit.check_executions(events, 2, want, {})
    assert problems and "extract_chunk" in problems[0]
    # the same second call is fine when the first process died before saving the task's writes
    assert not [p for p in crashkit.check_executions(events[::2], 2, want, {}) if "ran more" in p
                and "extract_minutes" in p]
    # an annotation written by two executions (a repeated node that did not find its first write)
    twice = [{"ev": "write", "phase": "end", "pid": pid, "op": "put_annotation", "bucket": "d-x", "name": "transcript",
              "node": "transcript", "task": task, "step": 1} for pid, task in ((1, "a"), (2, "b"))]
    assert any("more than once" in p and "transcript" in p for p in crashkit.check_executions(twice, 2, want, {}))
