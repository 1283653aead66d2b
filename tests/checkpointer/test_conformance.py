"""LangGraph's checkpointer conformance suite (langgraph-checkpoint-conformance) against S3Saver.

It runs every capability (the five base ones and the optional delete_for_runs, copy_thread and
prune) on the local bucket and on the S3 test server, once through the async API (what the
suite drives) and once through the sync API via :class:`SyncDriven`, which implements every async
method by calling the saver's *sync* method in a worker thread.
"""

from __future__ import annotations

import asyncio

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.conformance import checkpointer_test, validate
from langgraph.checkpoint.conformance.capabilities import ALL_CAPABILITIES

from marginalia.checkpointers import S3Saver

# Number of tests per capability in langgraph-checkpoint-conformance 0.0.2.
EXPECTED = {
    "put": 17,
    "put_writes": 10,
    "get_tuple": 10,
    "list": 16,
    "delete_thread": 5,
    "delete_for_runs": 7,
    "copy_thread": 8,
    "prune": 8,
}


class SyncDriven(BaseCheckpointSaver):
    """Exposes ``inner``'s sync methods as the async API the conformance suite calls."""

    def __init__(self, inner: S3Saver):
        super().__init__(serde=inner.serde)
        self.inner = inner

    async def aget_tuple(self, config):
        return await asyncio.to_thread(self.inner.get_tuple, config)

    async def alist(self, config, *, filter=None, before=None, limit=None):
        for item in await asyncio.to_thread(
            lambda: list(self.inner.list(config, filter=filter, before=before, limit=limit))
        ):
            yield item

    async def aput(self, config, checkpoint, metadata, new_versions):
        return await asyncio.to_thread(self.inner.put, config, checkpoint, metadata, new_versions)

    async def aput_writes(self, config, writes, task_id, task_path=""):
        return await asyncio.to_thread(self.inner.put_writes, config, writes, task_id, task_path)

    async def adelete_thread(self, thread_id):
        return await asyncio.to_thread(self.inner.delete_thread, thread_id)

    async def adelete_for_runs(self, run_ids):
        return await asyncio.to_thread(self.inner.delete_for_runs, run_ids)

    async def acopy_thread(self, source_thread_id, target_thread_id):
        return await asyncio.to_thread(self.inner.copy_thread, source_thread_id, target_thread_id)

    async def aprune(self, thread_ids, *, strategy="keep_latest"):
        return await asyncio.to_thread(self.inner.prune, thread_ids, strategy=strategy)


@pytest.mark.parametrize("api", ["async", "sync"])
async def test_conformance_suite_passes_every_capability(make_saver, backend, api):
    def factory_saver():
        saver = make_saver(backend, encryption_key="", compress="")
        return saver if api == "async" else SyncDriven(saver)

    @checkpointer_test(name=f"S3Saver-{backend}-{api}")
    async def factory():
        yield factory_saver()

    report = await validate(factory)
    assert set(report.results) == {c.value for c in ALL_CAPABILITIES}
    for capability, result in report.results.items():
        assert result.detected, f"{capability} not detected as implemented"
        assert result.failures == [], f"{capability}: {result.failures}"
        assert (result.tests_passed, result.tests_failed) == (EXPECTED[capability], 0), capability
