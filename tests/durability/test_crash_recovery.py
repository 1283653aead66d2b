"""SIGKILL an agent run at chosen and random moments, resume it in a new process, verify.

Per backend (local bucket directory, S3 test server) and agent (minutes; PDF summary), three
trials: a kill inside a node (after the model call), kills around annotation and checkpoint
writes, and a random plan mixing those with kills at random times. What is verified is listed
in :mod:`crashkit` (final annotations equal an uninterrupted run's; completed nodes ran once;
no torn or undecodable object). ``benchmarks/crash.py --trials 100`` runs many more.
"""

from __future__ import annotations

import random

import crashkit
import pytest

pytestmark = pytest.mark.timeout(240)


def fixed_plans(counts: dict[str, int]) -> list[list[str]]:
    last_annotation = counts["annotation"]
    return [
        ["engine:1"],  # inside extract_chunk / summarize_chunk: the model answered, the node did not return
        [
            f"annotation:{last_annotation}:before",
            f"checkpoint:{max(1, counts['checkpoint'] // 2)}:after",
            "annotation:1:after",
        ],  # mid-annotate; right after a checkpoint; after the transcript/first write
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
        {
            "ev": "write",
            "phase": "end",
            "pid": 1,
            "op": "put_object",
            "bucket": "s",
            "key": "v1/checkpoints/x/-/g/w/t1/r",
        },
        {"ev": "engine", "pid": 2, "method": "extract_minutes", "node": "extract_chunk", "task": "t9", "step": 3},
    ]
    problems = crashkit.check_executions(events, 2, want, {})
    assert problems and "extract_chunk" in problems[0]
    # the same second call is fine when the first process died before saving the task's writes
    assert not [
        p for p in crashkit.check_executions(events[::2], 2, want, {}) if "ran more" in p and "extract_minutes" in p
    ]
    # an annotation written by two executions (a repeated node that did not find its first write)
    twice = [
        {
            "ev": "write",
            "phase": "end",
            "pid": pid,
            "op": "put_annotation",
            "bucket": "d-x",
            "name": "transcript",
            "node": "transcript",
            "task": task,
            "step": 1,
        }
        for pid, task in ((1, "a"), (2, "b"))
    ]
    assert any("more than once" in p and "transcript" in p for p in crashkit.check_executions(twice, 2, want, {}))


def test_a_save_killed_before_its_end_line_counts_when_it_landed(tmp_path):
    """A kill between a pending-writes save and its ``end`` log line (benchmark trial: ``time:31.76``
    on the 37-chunk meeting) left the save in the store and the next process rightly did not
    run the task again; verification counts it as saved, unless another process wrote that key
    (it ran the task again) or the object is not there (the kill came before it landed)."""
    from marginalia.storage.local import LocalStore

    store = LocalStore(tmp_path)
    store.create_bucket("state")
    landed, rewritten, lost = (f"v1/checkpoints/x/-/g/w/{t}/r" for t in ("t1", "t2", "t3"))
    store.put_object("state", landed, b"writes")
    store.put_object("state", rewritten, b"writes")

    def begin(pid, key):
        return {"ev": "write", "phase": "begin", "pid": pid, "op": "put_object", "bucket": "state", "key": key}

    events = [
        begin(1, landed),
        begin(1, rewritten),
        begin(1, lost),
        begin(2, rewritten),
        {**begin(2, rewritten), "phase": "end"},
    ]
    assert [(e["pid"], e["key"]) for e in crashkit.landed_writes(store, events)] == [(1, landed)]
    store.close()


# The map step's checkpoint (record N: records are saved in order, one per superstep from step -1)
# and the step of its engine call, per agent.
MAP_STEP_RECORD = {"minutes": ("record:6:after:hold", 4), "summary": ("record:5:after:hold", 3)}


@pytest.mark.parametrize("agent", ["minutes", "summary"])
def test_a_map_step_checkpointed_before_its_task_writes_is_not_run_again(local_target, agent):
    """Regression (benchmark trials 29 and 89: ``checkpoint:11:after``, ``checkpoint:13:after``):
    LangGraph (``durability="async"``) saved the checkpoint of the map step, which holds the
    chunk's result, and the process died before the chunk task's own pending writes were saved.
    The resumed run starts after that step, so the one model call must count as done once, in the
    killed process; it was counted nowhere ("less ... extract_chunk: 1")."""
    spec, step = MAP_STEP_RECORD[agent]
    trial = crashkit.run_trial(
        crashkit.Trial(agent, local_target, f"mapstep-{agent}-{random.randrange(1 << 30):x}", [spec])
    )
    assert trial.exit_codes[0] == -9 and trial.survived, trial.problems
    events = crashkit.EventLog.read(local_target.root / f"{trial.name}.log")
    killed = events[0]["pid"]
    calls = [e for e in events if e["ev"] == "engine" and e["pid"] == killed]
    saved_tasks = {
        crashkit.writes_key_task(e.get("key"))
        for e in events
        if e["ev"] == "write" and e["phase"] == "end" and e["pid"] == killed
    }
    # the exact shape: the map task's model call ran at `step`, its writes were never saved...
    assert calls and {e["step"] for e in calls} == {step}
    assert not {e["task"] for e in calls} & saved_tasks
    # ...but the checkpoint of that step was, and no later process repeated the call
    store = local_target.open()
    try:
        assert crashkit.record_steps(store, events)[(killed, "")] == step
    finally:
        store.close()
    assert not [e for e in events if e["ev"] == "engine" and e["pid"] != killed and e["step"] == step]


def test_a_checkpoint_of_the_tasks_step_counts_its_work_and_still_catches_a_rerun(local_target):
    """``completed`` counts a killed execution whose step was checkpointed (same graph namespace
    only), and a second execution of the same task after that checkpoint is still reported."""
    want = crashkit.reference_work("minutes", local_target)
    calls = [n for (node, what), n in want.items() if what == "engine:extract_minutes"]
    first = [
        {
            "ev": "engine",
            "pid": 1,
            "method": "extract_minutes",
            "node": "extract_chunk",
            "task": f"t{i}",
            "step": 4,
            "graph_ns": "",
        }
        for i in range(sum(calls))
    ]
    merge = [
        {"ev": "engine", "pid": 2, "method": m, "node": node, "task": "m", "step": 5, "graph_ns": ""}
        for (node, what), n in want.items()
        if what.startswith("engine:") and node != "extract_chunk"
        for m in [what.split(":", 1)[1]] * n
    ]
    ok = crashkit.check_executions(first + merge, 2, want, {(1, ""): 4})
    assert not ok
    # the checkpoint of the previous step, or of another graph, does not make the work durable
    for steps in ({(1, ""): 3}, {(1, "sub:x"): 4}):
        assert any("less {('extract_chunk'" in p for p in crashkit.check_executions(first + merge, 2, want, steps))
    # the same task run again by the next process after the checkpoint of its step: caught
    again = [{**first[0], "pid": 2, "task": "t-again"}]
    assert any(
        "ran more {('extract_chunk', 'engine:extract_minutes'): 1}" in p
        for p in crashkit.check_executions(first + merge + again, 2, want, {(1, ""): 4})
    )
