"""Fixtures of the durability tests: one crash target per backend for the whole session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import crashkit  # noqa: E402


@pytest.fixture(scope="session")
def local_target(tmp_path_factory) -> crashkit.Target:
    return crashkit.Target("local", tmp_path_factory.mktemp("crash-local"))


@pytest.fixture(scope="session")
def s3_target(tmp_path_factory, s3_server) -> crashkit.Target:
    """Children reach the parent's test server through AWS_ENDPOINT_URL_S3 (it outlives them)."""
    return crashkit.Target("s3", tmp_path_factory.mktemp("crash-s3"), s3_server.endpoint_url)


@pytest.fixture(params=["local", "s3"])
def crash_target(request) -> crashkit.Target:
    return request.getfixturevalue(f"{request.param}_target")
