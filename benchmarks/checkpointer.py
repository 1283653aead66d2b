"""Checkpointer benchmark: S3Saver next to the savers users would otherwise pick.

One local S3 test server (moto + request counting by S3 operation, 127.0.0.1) serves every
S3-based saver. Each saver runs the same graph: 3 nodes in a loop writing 3 channels (a growing
message list, a counter, the last node), ``--steps`` super-steps on ``--threads`` threads,
``durability="sync"``. Reported per saver:

* requests per super-step by operation (PutObject, GetObject, ListObjectsV2, HeadObject, ...);
* bytes stored per super-step (bucket size, SQLite file size, DynamoDB item sizes as returned);
* median and p90 milliseconds per super-step;
* ``get_tuple`` of a thread's latest checkpoint with 10, 100 and 1,000 checkpoints: requests
  without pending writes (the head a finished step leaves) and with one pending write, each read by
  a fresh saver instance; latency (median of 5) with the write;
* history at ``--history`` checkpoints (5,000), each read by a fresh saver: ``list(limit=10)``,
  ``list(before=<the middle one>, limit=10)`` and ``list(filter={"step": <one step>})``: requests;
* several writers on one thread without a lease (two saver instances, as two processes have):
  what each saver does when both continue one head, both start one new thread, and a thread is
  deleted while a run still writes it.

Third-party savers are optional: ``pip install --no-deps langgraph-checkpoint-tigris
langgraph-checkpoint-s3 langgraph-checkpoint-aws`` into the venv (``--no-deps`` keeps the
project's boto3/botocore: their async extras pin an older botocore through aiobotocore; only their
sync, boto3-based savers are measured). Savers that cannot run here are listed with the reason.

    python benchmarks/checkpointer.py            # full run (50 steps, 5 threads, 10/100/1000, 5,000)
    python benchmarks/checkpointer.py --quick    # 10 steps, 2 threads, 10/100, 500
"""

from __future__ import annotations

import argparse
import operator
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_SESSION_TOKEN"):
    os.environ.pop(_name, None)

from langgraph.checkpoint.base import BaseCheckpointSaver, empty_checkpoint  # noqa: E402
from langgraph.graph import END, START, StateGraph  # noqa: E402

OPS = ("PutObject", "GetObject", "ListObjectsV2", "HeadObject", "DeleteObjects", "CopyObject")


class State(TypedDict, total=False):
    messages: Annotated[list[str], operator.add]
    counter: int
    last: str


def build_graph(saver: BaseCheckpointSaver, steps: int):
    """3 nodes in a loop; each super-step appends one message and updates 2 more channels."""
    nxt = {"a": "b", "b": "c", "c": "a"}

    def make(name: str):
        def node(state: State) -> State:
            n = state.get("counter", 0) + 1
            return {"messages": [f"{name}{n}: " + "lorem ipsum " * 8], "counter": n, "last": name}

        return node

    g = StateGraph(State)
    for name in "abc":
        g.add_node(name, make(name))
        g.add_conditional_edges(
            name, lambda s, _n=nxt[name]: END if s.get("counter", 0) >= steps else _n, [nxt[name], END]
        )
    g.add_edge(START, "a")
    return g.compile(checkpointer=saver)


# --- savers ------------------------------------------------------------------------------------
class Target:
    """One saver under test: how to make it, count its requests and measure what it stored."""

    def __init__(self, name: str, make: Callable[[], BaseCheckpointSaver], *, counts=None, stored=None):
        self.name = name
        self.make = make
        self.counted = counts is not None
        self.counts = counts or (lambda: {})
        self.reset = lambda: None
        self.stored = stored or (lambda: None)


def s3_bucket_size(store, bucket: str) -> int:
    return sum(o.size for o in store.list_objects(bucket))


def make_targets(server, tmp: Path) -> tuple[list[Target], list[tuple[str, str]]]:
    from marginalia.checkpointers import S3Saver
    from marginalia.storage.s3 import S3Store

    store = S3Store(endpoint_url=server.endpoint_url)
    targets: list[Target] = []
    skipped: list[tuple[str, str]] = []

    def server_counts() -> dict[str, int]:
        return dict(server.request_counts())

    def new_bucket(tag: str) -> str:
        name = f"bench-{tag}-{uuid.uuid4().hex[:8]}"
        store.create_bucket(name)
        return name

    b_ours = new_bucket("ours")
    t = Target(
        "S3Saver (marginalia)",
        lambda: S3Saver(store, b_ours, "ckpt", encryption_key="", compress=""),
        counts=server_counts,
        stored=lambda: s3_bucket_size(store, b_ours),
    )
    t.reset = server.reset_counts
    targets.append(t)

    from langgraph.checkpoint.memory import InMemorySaver

    memory = InMemorySaver()
    targets.append(Target("InMemorySaver", lambda: memory))

    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    db = tmp / "bench.sqlite"
    conn = sqlite3.connect(db, check_same_thread=False)
    sqlite_saver = SqliteSaver(conn)
    targets.append(Target("SqliteSaver (file)", lambda: sqlite_saver, stored=lambda: db.stat().st_size))

    import boto3

    def s3_client():
        return boto3.client("s3", endpoint_url=server.endpoint_url, region_name="us-east-1")

    try:
        from langgraph.checkpoint.tigris import TigrisSaver

        b_tigris = new_bucket("tigris")
        t = Target(
            "TigrisSaver (langgraph-checkpoint-tigris)",
            lambda: TigrisSaver(b_tigris, client=s3_client(), prefix="ckpt/"),
            counts=server_counts,
            stored=lambda: s3_bucket_size(store, b_tigris),
        )
        t.reset = server.reset_counts
        targets.append(t)
    except ImportError as exc:
        skipped.append(("langgraph-checkpoint-tigris", f"not installed ({exc})"))

    try:
        from langgraph_checkpoint_s3 import S3CheckpointSaver  # 0.1.3 calls serde.dumps(), gone in checkpoint 4.x

        b_s3 = new_bucket("lcs3")
        t = Target(
            "S3CheckpointSaver (langgraph-checkpoint-s3)",
            lambda: S3CheckpointSaver(b_s3, prefix="ckpt/", s3_client=s3_client()),
            counts=server_counts,
            stored=lambda: s3_bucket_size(store, b_s3),
        )
        t.reset = server.reset_counts
        targets.append(t)
    except ImportError as exc:
        skipped.append(("langgraph-checkpoint-s3", f"not installed ({exc})"))

    try:
        targets.append(dynamodb_target(server))
    except Exception as exc:  # noqa: BLE001 - reported as a skip with its reason
        skipped.append(("langgraph-checkpoint-aws DynamoDBSaver", f"{type(exc).__name__}: {exc}"[:160]))

    skipped.append(
        (
            "langgraph-checkpoint-objectstorage",
            "needs s3fs -> aiobotocore, which pins botocore<1.43.118 and would downgrade the project's "
            "boto3/botocore 1.44 (S3 Annotations); it cannot share this venv",
        )
    )
    return targets, skipped


def dynamodb_target(server) -> Target:
    """DynamoDBSaver against the same moto server (moto serves DynamoDB too); counted client-side."""
    import boto3
    from langgraph_checkpoint_aws import DynamoDBSaver

    table = f"bench{uuid.uuid4().hex[:8]}"
    ddb = boto3.client("dynamodb", endpoint_url=server.endpoint_url, region_name="us-east-1")
    ddb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "PK", "KeyType": "HASH"}, {"AttributeName": "SK", "KeyType": "RANGE"}],
        AttributeDefinitions=[
            {"AttributeName": "PK", "AttributeType": "S"},
            {"AttributeName": "SK", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
    calls: Counter[str] = Counter()
    savers: list[Any] = []

    def make():
        saver = DynamoDBSaver(table_name=table, region_name="us-east-1", endpoint_url=server.endpoint_url)
        saver.client.meta.events.register(
            "before-call.dynamodb", lambda model, **_: calls.__setitem__(model.name, calls[model.name] + 1)
        )
        savers.append(saver)
        return saver

    def stored() -> int:
        size, kwargs = 0, {"TableName": table}
        while True:
            page = ddb.scan(**kwargs, ReturnConsumedCapacity="NONE")
            size += sum(len(str(item)) for item in page["Items"])
            if "LastEvaluatedKey" not in page:
                return size
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    probe = make()
    probe.get_tuple({"configurable": {"thread_id": "probe", "checkpoint_ns": ""}})
    t = Target("DynamoDBSaver (langgraph-checkpoint-aws)", make, counts=lambda: dict(calls), stored=stored)
    t.reset = calls.clear
    return t


# --- measurements ------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


def run_graph(target: Target, steps: int, threads: int) -> dict[str, Any]:
    saver = target.make()
    graph = build_graph(saver, steps)
    before_stored = target.stored() or 0
    target.reset()
    durations: list[float] = []
    configs = []
    for t in range(threads):
        config = {"configurable": {"thread_id": f"bench-{t}-{uuid.uuid4().hex[:6]}"}}
        last = time.perf_counter()
        n = 0
        for _ in graph.stream({"messages": []}, config, stream_mode="updates", durability="sync"):
            now = time.perf_counter()
            durations.append((now - last) * 1000)
            last = now
            n += 1
        configs.append(config)
    counts = target.counts()  # before the checks below, which read
    for config in configs:
        final = graph.get_state(config).values
        assert final["counter"] == steps and len(final["messages"]) == steps, (target.name, final["counter"])
    total_steps = steps * threads
    stored = target.stored()
    return {
        "per_step": {op: v / total_steps for op, v in counts.items() if v},
        "bytes_per_step": None if stored is None else (stored - before_stored) / total_steps,
        "p50": statistics.median(durations),
        "p90": pct(durations, 0.9),
    }


def latest_lookup(target: Target, sizes: list[int]) -> dict[int, tuple[float, dict[str, int]]]:
    out = {}
    writer = target.make()
    for n in sizes:
        thread = f"hist-{n}-{uuid.uuid4().hex[:6]}"
        config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        state = State(messages=["m"], counter=0, last="a")
        for step in range(n):
            cp = empty_checkpoint()
            cp["channel_values"] = dict(state, counter=step)
            cp["channel_versions"] = {"messages": writer.get_next_version(None, None), "counter": step + 1}
            config = writer.put(config, cp, {"source": "loop", "step": step, "parents": {}}, {})
        lookup = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
        # First the head as a finished step leaves it (no pending writes), then with one pending
        # write on it (a step under way or an interrupted one): each read by a fresh saver.
        target.reset()
        tup = target.make().get_tuple(lookup)
        bare = {k: v for k, v in target.counts().items() if v}
        assert tup is not None and tup.metadata["step"] == n - 1, (target.name, n, tup and tup.metadata)
        writer.put_writes(config, [("messages", ["pending"])], "task-1")
        reader = target.make()
        target.reset()
        tup = reader.get_tuple(lookup)
        counts = {k: v for k, v in target.counts().items() if v}
        assert tup is not None and tup.metadata["step"] == n - 1, (target.name, n, tup and tup.metadata)
        assert [w[2] for w in tup.pending_writes] == [["pending"]], (target.name, tup.pending_writes)
        times = []
        for _ in range(5):
            start = time.perf_counter()
            reader.get_tuple(lookup)
            times.append((time.perf_counter() - start) * 1000)
        out[n] = (statistics.median(times), bare, counts)
    return out


def history_costs(target: Target, n: int) -> dict[str, dict[str, int]]:
    """Requests of list(limit=10), list(before=middle, limit=10) and list(filter=one step) at n checkpoints."""
    writer = target.make()
    thread = f"long-{n}-{uuid.uuid4().hex[:6]}"
    config = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    ids = []
    for step in range(n):
        cp = empty_checkpoint()
        cp["channel_values"] = {"counter": step}
        config = writer.put(config, cp, {"source": "loop", "step": step, "parents": {}}, {})
        ids.append(config["configurable"]["checkpoint_id"])
        if step % 2:
            writer.put_writes(config, [("messages", ["pending"])], "task-1")
    lookup = {"configurable": {"thread_id": thread, "checkpoint_ns": ""}}
    middle = {"configurable": {"thread_id": thread, "checkpoint_ns": "", "checkpoint_id": ids[n // 2]}}
    calls = {
        "limit=10": lambda s: list(s.list(lookup, limit=10)),
        "before=middle, limit=10": lambda s: list(s.list(lookup, before=middle, limit=10)),
        "filter={step}": lambda s: list(s.list(lookup, filter={"step": n // 3})),
    }
    expect = {
        "limit=10": lambda got: [t.metadata["step"] for t in got] == list(range(n - 1, n - 11, -1)),
        "before=middle, limit=10": lambda got: (
            [t.metadata["step"] for t in got] == list(range(n // 2 - 1, n // 2 - 11, -1))
        ),
        "filter={step}": lambda got: [t.metadata["step"] for t in got] == [n // 3],
    }
    out = {}
    for name, call in calls.items():
        reader = target.make()
        target.reset()
        start = time.perf_counter()
        got = call(reader)
        ms = (time.perf_counter() - start) * 1000
        assert expect[name](got), (target.name, name, [t.metadata["step"] for t in got][:12])
        out[name] = {**{k: v for k, v in target.counts().items() if v}, "_ms": round(ms)}
    return out


def multiwriter_outcomes(target: Target) -> dict[str, str]:
    """What two writers without a lease get: one head continued twice, one new thread started
    twice, a thread deleted while a run writes it (two saver instances, as two processes have)."""
    from langgraph.checkpoint.base import empty_checkpoint as fresh

    def meta(step: int) -> dict:
        return {"source": "loop", "step": step, "parents": {}}

    def attempt(fn) -> str:
        try:
            fn()
            return "saved"
        except Exception as exc:  # noqa: BLE001 - the outcome is the finding
            return type(exc).__name__

    out = {}
    # 1. both continue the same head
    a, b = target.make(), target.make()
    t = {"configurable": {"thread_id": f"mw-head-{uuid.uuid4().hex[:6]}", "checkpoint_ns": ""}}
    a.get_tuple(t)
    head = a.put(t, fresh(), meta(0), {})
    ha, hb = a.get_tuple(t), b.get_tuple(t)
    first = attempt(lambda: a.put(ha.config, fresh(), meta(1), {}))
    second = attempt(lambda: b.put(hb.config, fresh(), meta(1), {}))
    children = [
        x
        for x in target.make().list(t)
        if (x.parent_config or {}).get("configurable", {}).get("checkpoint_id") == head["configurable"]["checkpoint_id"]
    ]
    out["two writers continue one head"] = (
        f"second: {second}; {len(children)} children of the head" if first == "saved" else f"first: {first}"
    )
    # 2. both start one new thread
    a, b = target.make(), target.make()
    t = {"configurable": {"thread_id": f"mw-new-{uuid.uuid4().hex[:6]}", "checkpoint_ns": ""}}
    a.get_tuple(t), b.get_tuple(t)
    first = attempt(lambda: a.put(t, fresh(), meta(-1), {}))
    second = attempt(lambda: b.put(t, fresh(), meta(-1), {}))
    roots = [x for x in target.make().list(t) if x.parent_config is None]
    out["two writers start one new thread"] = f"second: {second}; {len(roots)} roots"
    # 3. delete during a run: the run writes its next checkpoint after the delete
    runner, admin = target.make(), target.make()
    t = {"configurable": {"thread_id": f"mw-del-{uuid.uuid4().hex[:6]}", "checkpoint_ns": ""}}
    runner.get_tuple(t)
    config = runner.put(t, fresh(), meta(0), {})
    config = runner.put(config, fresh(), meta(1), {})
    admin.delete_thread(t["configurable"]["thread_id"])
    late = attempt(lambda: runner.put(config, fresh(), meta(2), {}))
    back = target.make().get_tuple(t) is not None
    out["delete while a run writes"] = f"late write: {late}; thread {'came back' if back else 'stays deleted'}"
    return out


def fmt_counts(counts: dict[str, float], digits: int = 2) -> str:
    if not counts:
        return "n/a (no requests: in-process)"
    parts = [f"{op} {counts[op]:.{digits}f}" for op in OPS if counts.get(op)]
    parts += [f"{op} {v:.{digits}f}" for op, v in sorted(counts.items()) if op not in OPS]
    total = sum(counts.values())
    return f"{total:.{digits}f} = " + ", ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 steps, 2 threads, histories of 10 and 100")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--only", help="comma-separated substrings of saver names to run")
    parser.add_argument("--history", type=int, help="checkpoints for the list costs (5,000; --quick: 500)")
    args = parser.parse_args(argv)
    steps = args.steps or (10 if args.quick else 50)
    threads = args.threads or (2 if args.quick else 5)
    sizes = [10, 100] if args.quick else [10, 100, 1000]
    history = args.history or (500 if args.quick else 5000)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from marginalia.testing.s3_server import start_test_server

    server = start_test_server()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            targets, skipped = make_targets(server, Path(tmp))
            if args.only:
                wanted = [w.strip().lower() for w in args.only.split(",")]
                targets = [t for t in targets if any(w in t.name.lower() for w in wanted)]
            print(f"graph: 3 nodes in a loop, 3 channels, {steps} super-steps x {threads} threads, durability=sync")
            print(f"server: {server.endpoint_url} (moto S3 + request counting)\n")
            rows = []
            for target in targets:
                try:
                    result = run_graph(target, steps, threads)
                    lookups = latest_lookup(target, sizes)
                    costs = history_costs(target, history) if target.counted else {}
                    outcomes = multiwriter_outcomes(target)
                except Exception as exc:  # noqa: BLE001 - a saver that breaks is reported, not fatal
                    skipped.append((target.name, f"failed: {type(exc).__name__}: {exc}"[:200]))
                    continue
                rows.append((target, result, lookups, costs, outcomes))
                print(f"== {target.name}")
                print(f"   requests/super-step: {fmt_counts(result['per_step'])}")
                b = result["bytes_per_step"]
                print(f"   bytes stored/super-step: {'n/a' if b is None else f'{b:,.0f}'}")
                print(f"   ms/super-step: median {result['p50']:.2f}, p90 {result['p90']:.2f}")
                for n, (ms, bare, counts) in lookups.items():
                    print(
                        f"   get_tuple(latest) @ {n:>4} checkpoints: {ms:7.2f} ms; requests without pending "
                        f"writes {fmt_counts(bare, 0)}; with one pending write {fmt_counts(counts, 0)}"
                    )
                for name, c in costs.items():
                    ms = c.pop("_ms")
                    print(f"   list({name}) @ {history} checkpoints: {fmt_counts(c, 0)} ({ms} ms)")
                    c["_ms"] = ms
                for name, what in outcomes.items():
                    print(f"   {name}: {what}")
                print(flush=True)
            print(
                "| saver | requests/step (by op) | bytes/step | ms/step p50 / p90 | "
                + " | ".join(f"latest @{n}: ms (req bare/with writes)" for n in sizes)
                + f" | requests @{history}: limit=10 / before=middle, limit=10 / filter"
                + " |"
            )
            print("|---|---|---|---|" + "---|" * (len(sizes) + 1))
            for target, result, lookups, costs, _outcomes in rows:
                b = result["bytes_per_step"]
                cells = (
                    [
                        target.name,
                        fmt_counts(result["per_step"]),
                        "n/a" if b is None else f"{b:,.0f}",
                        f"{result['p50']:.1f} / {result['p90']:.1f}",
                    ]
                    + [
                        f"{ms:.1f} ({sum(bare.values()) if bare else 0}/{sum(c.values()) if c else 0})"
                        for ms, bare, c in lookups.values()
                    ]
                    + [" / ".join(str(sum(v for k, v in c.items() if k != "_ms")) for c in costs.values()) or "n/a"]
                )
                print("| " + " | ".join(cells) + " |")
            print("\n| saver | " + " | ".join(rows[0][4]) + " |" if rows else "")
            print("|---|" + "---|" * len(rows[0][4]) if rows else "")
            for target, *_rest, outcomes in rows:
                print(f"| {target.name} | " + " | ".join(outcomes.values()) + " |")
            if skipped:
                print("\nnot measured:")
                for name, why in skipped:
                    print(f"- {name}: {why}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
