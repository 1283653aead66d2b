"""Fixtures of the observability tests: an OTLP receiver standing in for Langfuse, isolated stores.

Langfuse keeps ONE client per public key per process and its first construction fixes the server
URL, so the receiver is session-wide and every test in this process uses the same keys
(:data:`PUBLIC_KEY`, :data:`SECRET_KEY`). Keys are only in the environment while a test that asks
for ``langfuse_env`` runs: every other test of the suite sees tracing off.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from marginalia import context
from marginalia.storage.base import Store

sys.path.insert(0, str(Path(__file__).parent))
from observability_constants import PUBLIC_KEY, SECRET_KEY, SRC, STANDUP  # noqa: E402,F401
from otlp_receiver import OTLPReceiver  # noqa: E402


@dataclass
class Env:
    """A local store with its MARGINALIA_* environment, shared with the subprocesses tests start."""

    store: Store
    env: dict[str, str]
    bucket: str
    root: Path

    def put(self, key: str, body: bytes | Path) -> str:
        self.store.put_object(self.bucket, key, body)
        return f"s3://{self.bucket}/{key}"

    def run(
        self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess:
        """``python -m marginalia ARGS`` in a new process on the same store and state."""
        env = {**self.env, **(extra_env or {})}
        return subprocess.run(
            [sys.executable, "-m", "marginalia", *args], env=env, capture_output=True, text=True, timeout=timeout
        )


@pytest.fixture(scope="session")
def receiver():
    server = OTLPReceiver().start()
    yield server
    server.stop()


@pytest.fixture
def obs_env(tmp_path, monkeypatch) -> Env:
    from marginalia.storage.local import LocalStore

    root = tmp_path / "store"
    store = LocalStore(root)
    for name in (
        "MARGINALIA_STATE",
        "MARGINALIA_ENGINE",
        "LANGFUSE_PUBLIC_KEY",
        "LANGFUSE_SECRET_KEY",
        "LANGFUSE_BASE_URL",
        "LANGFUSE_HOST",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{root}")
    monkeypatch.setenv("MARGINALIA_ENGINE", "offline")
    monkeypatch.setattr(context, "_DEFAULTS", {})
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([SRC, env.get("PYTHONPATH", "")])
    env["COLUMNS"] = "200"
    store.create_bucket("meetings")
    yield Env(store, env, "meetings", root)
    store.close()


@pytest.fixture
def langfuse_env(obs_env: Env, receiver: OTLPReceiver, monkeypatch) -> Env:
    """``obs_env`` with Langfuse keys pointing at the receiver (here and in subprocesses)."""
    keys = {
        "LANGFUSE_PUBLIC_KEY": PUBLIC_KEY,
        "LANGFUSE_SECRET_KEY": SECRET_KEY,
        "LANGFUSE_BASE_URL": receiver.base_url,
        "LANGFUSE_TIMEOUT": "2",
    }
    for name, value in keys.items():
        monkeypatch.setenv(name, value)
    obs_env.env.update(keys)
    return obs_env
