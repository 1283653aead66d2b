"""Annotation throughput of both storage backends, and how listing scales with the count per object.

    .venv/bin/python benchmarks/annotations.py            # full run
    .venv/bin/python benchmarks/annotations.py --quick    # a few seconds

Backends: ``local`` (LocalStore in a temp dir, durable: fsync on every commit) and ``s3`` (S3Store,
boto3, against the project's moto-based S3 test server on 127.0.0.1 — so the figure is dominated
by HTTP + request signing + moto, not by AWS latency). Each operation is run sequentially from one
thread; payloads are ~200-byte JSON documents, like the agents' results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from marginalia.storage.base import Store  # noqa: E402
from marginalia.storage.local import LocalStore  # noqa: E402

PAYLOAD = json.dumps({"summary": "Decisions: ship the parser; owners: Ana, Li. " * 3, "score": 0.87, "n": 1})


def rate(operation: Callable[[int], object], count: int) -> float:
    """Operations per second of ``operation(i)`` for i in range(count)."""
    start = time.perf_counter()
    for i in range(count):
        operation(i)
    return count / (time.perf_counter() - start)


def list_seconds(store: Store, bucket: str, key: str, repeats: int) -> float:
    """Median wall time of listing every annotation of one object (all pages)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        entries = list(store.list_annotations(bucket, key))
        times.append(time.perf_counter() - start)
    assert entries is not None
    return statistics.median(times)


def bench(store: Store, bucket: str, ops: int, counts: list[int], repeats: int) -> dict[str, float]:
    store.create_bucket(bucket)
    store.put_object(bucket, "doc", b"object body")
    results = {
        "put/s": rate(lambda i: store.put_annotation(bucket, "doc", f"agent.r{i:04d}", PAYLOAD), ops),
        "get/s": rate(lambda i: store.get_annotation(bucket, "doc", f"agent.r{i % ops:04d}"), ops),
        "list/s": rate(lambda i: store.list_annotations_page(bucket, "doc", max_results=10), ops),
        "put-object/s": rate(lambda i: store.put_object(bucket, f"objs/{i:04d}", PAYLOAD.encode()), ops),
    }
    for n in counts:
        key = f"many-{n}"
        store.put_object(bucket, key, b"x")
        for i in range(n):
            store.put_annotation(bucket, key, f"n{i:04d}", "v")
        results[f"list {n}"] = list_seconds(store, bucket, key, repeats)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer operations (a few seconds)")
    args = parser.parse_args()
    ops, counts, repeats = (100, [10, 100, 1000], 3) if args.quick else (500, [10, 100, 1000], 7)
    os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

    rows: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        with LocalStore(Path(tmp)) as store:
            rows["local"] = bench(store, "bench-local", ops, counts, repeats)
    try:
        from marginalia.storage.s3 import S3Store
        from marginalia.testing.s3_server import start_test_server
    except ImportError as exc:
        print(f"(s3 backend skipped: {exc})")
    else:
        server = start_test_server()
        try:
            with S3Store(endpoint_url=server.endpoint_url) as store:
                rows["s3 (test server)"] = bench(store, "bench-s3", ops, counts, repeats)
            requests = server.request_counts()
        finally:
            server.stop()
        print(f"test server saw {sum(requests.values()):,} requests: "
              + ", ".join(f"{k} {v:,}" for k, v in sorted(requests.items(), key=lambda kv: -kv[1])[:6]))  # fmt: skip

    columns = ["put/s", "get/s", "list/s", "put-object/s"] + [f"list {n}" for n in counts]
    header = f"{'backend':<18}" + "".join(f"{c:>14}" for c in columns)
    print(f"\n{ops} sequential ops each; 'list N' = median seconds to list N annotations ({repeats} runs)")
    print(header)
    print("-" * len(header))
    for backend, values in rows.items():
        cells = [f"{values[c]:>14,.0f}" if c.endswith("/s") else f"{values[c] * 1000:>12.1f}ms" for c in columns]
        print(f"{backend:<18}" + "".join(cells))


if __name__ == "__main__":
    main()
