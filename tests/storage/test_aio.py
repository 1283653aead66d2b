"""AsyncStore: the async twins run the same store code (in worker threads) and keep its errors."""

from __future__ import annotations

import asyncio
import inspect
import time

import pytest

from marginalia.errors import AnnotationNotFound, InvalidAnnotationName
from marginalia.storage.aio import AsyncStore
from marginalia.storage.base import Store


def _public_methods(cls: type) -> dict[str, object]:
    return {n: v for n, v in vars(cls).items() if callable(v) and not n.startswith("_")}


def test_every_store_method_has_a_typed_async_twin():
    """The twins are written out; they must list exactly the Store's methods, with its parameters
    (names, kinds, defaults, annotations) and its return type (an iterator becomes an async one)."""
    store_methods, twins = _public_methods(Store), _public_methods(AsyncStore)
    assert sorted(twins) == sorted(store_methods)
    for name, sync in store_methods.items():
        twin = twins[name]
        sync_sig, twin_sig = inspect.signature(sync), inspect.signature(twin)
        assert list(twin_sig.parameters.values()) == list(sync_sig.parameters.values()), name
        returns = str(sync_sig.return_annotation)
        assert returns != str(inspect.Signature.empty), f"Store.{name} has no return annotation"
        assert twin_sig.return_annotation == returns.replace("Iterator[", "AsyncIterator["), name
        if returns.startswith("Iterator["):
            assert inspect.isasyncgenfunction(twin), name
        else:
            assert inspect.iscoroutinefunction(twin), name


async def test_async_round_trip_on_the_event_loop(local_store):
    store = AsyncStore(local_store)
    assert store.kind == "local"
    await store.create_bucket("abkt")
    body = b"z" * (3 * 1024 * 1024 + 5)
    info = await store.put_object("abkt", "doc", body)
    # Many concurrent annotation writes from one loop; the loop stays responsive meanwhile.
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    put = local_store.put_annotation
    during: list[int] = []  # ticks of the loop while each write was in progress

    def slow_put(*args, **kwargs):
        before = ticks
        time.sleep(0.02)  # a slow disk: the loop must go on ticking meanwhile (nothing is timed)
        result = put(*args, **kwargs)
        during.append(ticks - before)
        return result

    local_store.put_annotation = slow_put  # AsyncStore looks the method up at each call
    tick_task = asyncio.create_task(ticker())
    await asyncio.gather(
        *(store.put_annotation("abkt", "doc", f"a{i:02d}", str(i), if_match=info.etag) for i in range(30))
    )
    tick_task.cancel()
    del local_store.put_annotation
    assert len(during) == 30 and max(during) > 0  # 0 for every write if they ran on the loop itself
    names = [a.name async for a in store.list_annotations("abkt", "doc", page_size=7)]
    assert names == [f"a{i:02d}" for i in range(30)]
    chunks, head = await store.open_object("abkt", "doc")
    assert b"".join([c async for c in chunks]) == body and head.etag == info.etag
    assert [o.key async for o in store.list_objects("abkt")] == ["doc"]
    assert (await store.get_annotation("abkt", "doc", "a07")).payload == b"7"
    with pytest.raises(AnnotationNotFound):
        await store.get_annotation("abkt", "doc", "missing")
    with pytest.raises(InvalidAnnotationName):
        await store.put_annotation("abkt", "doc", "aws.reserved", "x")
    assert await store.reindex() == 30  # backend extras are awaitable too
