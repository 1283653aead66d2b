"""Savers for the checkpointer tests: on the local bucket and on the project's S3 test server.

``saver_factory(backend)`` builds a fresh :class:`S3Saver` on a fresh bucket of that backend; the
``saver`` fixture is parametrized over both, so every behaviour test runs on both stores.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from marginalia.checkpointers import S3Saver

BACKENDS = ["local", "s3"]


@pytest.fixture
def store_for(request) -> Callable[[str], object]:
    def get(backend: str):
        return request.getfixturevalue({"local": "local_store", "s3": "s3_store"}[backend])

    return get


@pytest.fixture
def make_saver(store_for) -> Callable[..., S3Saver]:
    """``make_saver(backend, **kwargs)`` → a saver on a new bucket (``bucket=`` to share one)."""
    savers: list[S3Saver] = []

    def make(backend: str = "local", *, bucket: str | None = None, prefix: str = "ckpt", **kwargs) -> S3Saver:
        store = store_for(backend)
        if bucket is None:
            bucket = f"cp-{uuid.uuid4().hex[:12]}"
            store.create_bucket(bucket)
        saver = S3Saver(store, bucket, prefix, **kwargs)
        savers.append(saver)
        return saver

    yield make
    for saver in savers:
        saver.close()


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def saver(make_saver, backend) -> S3Saver:
    return make_saver(backend, encryption_key="", compress="")
