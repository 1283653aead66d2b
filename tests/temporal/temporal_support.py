"""Helpers of the Temporal tests (a module of its own: ``conftest`` names clash across test folders)."""

from __future__ import annotations

import time
from pathlib import Path

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "marginalia" / "samples"


def put_sample(store, bucket: str, key: str, sample: str) -> str:
    store.create_bucket(bucket, exist_ok=True)
    store.put_object(bucket, key, SAMPLES / sample)
    return f"s3://{bucket}/{key}"


def wait_for(predicate, *, what: str, timeout: float = 120.0, every: float = 0.3):
    """Poll ``predicate`` until it returns something truthy (a bound against hanging, not a timing test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")
