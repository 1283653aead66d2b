"""Fixtures shared by the whole suite: stores on every backend, a fresh bucket per test.

* ``local_store`` - a fresh :class:`LocalStore` in ``tmp_path``.
* ``s3_server`` - the project's moto-based S3 server with annotation routes (session-wide, 127.0.0.1).
* ``s3_store`` - an :class:`S3Store` talking to that server.
* ``store`` - parametrized over ``local``, ``s3`` and (only when ``MARGINALIA_TEST_S3_BUCKET`` and AWS
  credentials are set) ``aws``; contract tests take this one so every backend obeys the same rules.
* ``bucket`` / ``versioned_bucket`` - a fresh bucket on ``store`` (on ``aws``: the configured bucket(s)).
* ``key`` - a per-test unique key prefix helper, so tests never collide on a shared real bucket.

Non-AWS targets never touch the network: dummy credentials and region are set, and the instance
metadata service is disabled, before any boto3 client is created.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

AWS_BUCKET = os.environ.get("MARGINALIA_TEST_S3_BUCKET")
AWS_VERSIONED_BUCKET = os.environ.get("MARGINALIA_TEST_S3_VERSIONED_BUCKET")
AWS_ENABLED = bool(
    AWS_BUCKET
    and (
        os.environ.get("AWS_ACCESS_KEY_ID")
        or os.environ.get("AWS_PROFILE")
        or os.environ.get("AWS_WEB_IDENTITY_TOKEN_FILE")
    )
)

os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
if not AWS_ENABLED:
    # Dummy values so boto3 signs requests to the local server and never looks further.
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(name, None)
    os.environ["AWS_ACCESS_KEY_ID"] = "testing"
    os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    os.environ["AWS_CONFIG_FILE"] = os.devnull
    os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

STORE_KINDS = ["local", "s3", pytest.param("aws", marks=pytest.mark.aws)]


def unique_bucket_name(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def local_store(tmp_path: Path):
    from marginalia.storage.local import LocalStore

    store = LocalStore(tmp_path / "store")
    yield store
    store.close()


@pytest.fixture(scope="session")
def s3_server():
    # No skip on an import failure: a broken server module (or a missing 'testing' extra, which the
    # error names) fails every S3-backed test instead of hiding them.
    from marginalia.testing.s3_server import start_test_server

    server = start_test_server()
    yield server
    server.stop()


@pytest.fixture
def s3_store(s3_server):
    """A fresh client per test (S3Store shares the boto3 session, so only the first costs ~0.4 s);
    handlers a test registers on ``client.meta.events`` therefore never leak into the next test."""
    from marginalia.storage.s3 import S3Store

    store = S3Store(endpoint_url=s3_server.endpoint_url)
    yield store
    store.close()


@pytest.fixture(scope="session")
def aws_store():
    if not AWS_ENABLED:
        pytest.skip("live AWS tests need MARGINALIA_TEST_S3_BUCKET and AWS credentials")
    from marginalia.storage.s3 import S3Store

    store = S3Store()
    yield store
    store.close()


@pytest.fixture(params=STORE_KINDS)
def store(request):
    """Every backend in turn: the contract suite runs once per backend."""
    return request.getfixturevalue({"local": "local_store", "s3": "s3_store", "aws": "aws_store"}[request.param])


def _on_live_aws(request) -> bool:
    callspec = getattr(request.node, "callspec", None)
    return callspec is not None and callspec.params.get("store") == "aws"


@pytest.fixture
def bucket(request, store) -> str:
    """A fresh, empty, unversioned bucket on ``store`` (the configured bucket on live AWS)."""
    if _on_live_aws(request):
        return AWS_BUCKET
    name = unique_bucket_name()
    store.create_bucket(name)
    return name


@pytest.fixture
def versioned_bucket(request, store) -> str:
    """A fresh bucket with versioning enabled."""
    if _on_live_aws(request):
        if not AWS_VERSIONED_BUCKET:
            pytest.skip("set MARGINALIA_TEST_S3_VERSIONED_BUCKET to run versioning tests on AWS")
        return AWS_VERSIONED_BUCKET
    name = unique_bucket_name("v")
    store.create_bucket(name, versioned=True)
    return name


@pytest.fixture
def key() -> Callable[[str], str]:
    """``key("doc.txt")`` -> a key under a prefix unique to this test."""
    prefix = f"t{uuid.uuid4().hex[:10]}/"
    return lambda name="": prefix + name


@pytest.fixture
def store_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory for a LocalStore that tests open themselves (e.g. from subprocesses)."""
    path = tmp_path / "store"
    path.mkdir()
    yield path
