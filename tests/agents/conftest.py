"""Fixtures of the agent tests: an isolated MARGINALIA_* environment per test, on both backends.

``agent_env`` points ``MARGINALIA_STORE`` at a fresh local directory (or at the project's S3 test
server) and ``MARGINALIA_STATE`` at a fresh state location, so threads, checkpoints and the thread
index of one test never leak into another, and a subprocess started with ``agent_env.env`` sees
exactly the same store. ``meetings`` are the real meeting transcripts the suite runs on.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

import marginalia
from marginalia import context, runtime
from marginalia.storage.base import Store
from marginalia.testing.fixtures import SHARED_FIXTURES as SHARED

REPO_FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "meetings"
SHARED_FIXTURES = SHARED / "meetings"
MEETING_SUFFIXES = {".json", ".vtt", ".srt", ".txt"}


def meeting_files() -> list[Path]:
    """Every meeting of ``tests/fixtures/meetings`` and, where it exists, ``../shared/fixtures/meetings``
    (not the gold lists kept beside them: ``gold_*.json`` are judgements, not transcripts)."""
    found: dict[str, Path] = {}
    for root in (REPO_FIXTURES, SHARED_FIXTURES):  # the repo's copy of a shared meeting counts once
        if root.is_dir():
            for p in sorted(root.rglob("*")):
                if p.is_file() and p.suffix in MEETING_SUFFIXES and not p.name.startswith("gold_"):
                    found.setdefault(p.name, p)
    return list(found.values())


@dataclass
class AgentEnv:
    kind: str  # "local" | "s3"
    store: Store
    env: dict[str, str]  # the environment a subprocess needs to see the same store and state
    bucket: str

    def put(self, key: str, body: bytes | Path) -> str:
        self.store.put_object(self.bucket, key, body)
        return f"s3://{self.bucket}/{key}"

    def annotation_names(self, key: str) -> list[str]:
        return [a.name for a in self.store.list_annotations(self.bucket, key)]

    def annotation(self, key: str, name: str) -> dict:
        return self.store.get_annotation(self.bucket, key, name).json()

    def run(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        """``python -m marginalia ARGS`` in a NEW process on the same store and state."""
        proc = subprocess.run(
            [sys.executable, "-m", "marginalia", *args], env=self.env, capture_output=True, text=True, timeout=120
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"marginalia {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def cli(self, *args: str) -> tuple[int, str, str]:
        """``marginalia ARGS`` in THIS process (exit status, stdout, stderr): fast, same handling."""
        from marginalia.testing.cli import run_cli

        return run_cli(*args)

    def python(self, code: str, *args: str):
        """Run ``code`` in a NEW Python process on the same store and state; its last line as JSON."""
        proc = subprocess.run(
            [sys.executable, "-c", code, *args], env=self.env, capture_output=True, text=True, timeout=180
        )
        if proc.returncode != 0:
            raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def index(self):
        from marginalia.threads import ThreadIndex

        return ThreadIndex(self.store, runtime.state_location(self.store))

    def state_objects(self) -> list[str]:
        """Every key under the state location (thread records, leases, checkpoints), [] if none."""
        from marginalia.config import DEFAULT_LOCAL_STATE, Settings
        from marginalia.uri import parse_uri

        state = parse_uri(Settings.from_env().state or DEFAULT_LOCAL_STATE, require_key=False)
        if not self.store.bucket_exists(state.bucket):
            return []
        return sorted(o.key for o in self.store.list_objects(state.bucket, state.key))

    def all_annotations(self) -> list[str]:
        """Names of every annotation on every object of the test bucket."""
        return [
            a.name
            for o in self.store.list_objects(self.bucket)
            for a in self.store.list_annotations(self.bucket, o.key)
        ]


def _isolated(monkeypatch, values: dict[str, str]) -> dict[str, str]:
    for name in ("MARGINALIA_STORE", "MARGINALIA_STATE", "MARGINALIA_ENGINE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(context, "_DEFAULTS", {})  # no store/engine cached from another test
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(Path(marginalia.__file__).parents[1]), env.get("PYTHONPATH", "")])
    env["COLUMNS"] = "200"
    return env


@pytest.fixture
def local_env(tmp_path, monkeypatch) -> AgentEnv:
    from marginalia.storage.local import LocalStore

    root = tmp_path / "store"
    store = LocalStore(root)
    env = _isolated(monkeypatch, {"MARGINALIA_STORE": f"local:{root}", "MARGINALIA_ENGINE": "offline"})
    store.create_bucket("meetings-bucket")
    yield AgentEnv("local", store, env, "meetings-bucket")
    store.close()


@pytest.fixture
def s3_env(s3_store, monkeypatch) -> AgentEnv:
    bucket, state = f"m-{uuid.uuid4().hex[:12]}", f"state-{uuid.uuid4().hex[:12]}"
    s3_store.create_bucket(bucket)
    s3_store.create_bucket(state)
    env = _isolated(
        monkeypatch,
        {
            "MARGINALIA_STORE": f"s3:{s3_store.client.meta.endpoint_url}",
            "MARGINALIA_STATE": f"s3://{state}/v1",
            "MARGINALIA_ENGINE": "offline",
        },
    )
    return AgentEnv("s3", s3_store, env, bucket)


@pytest.fixture(params=["local", "s3"])
def agent_env(request) -> AgentEnv:
    """Each agent test once on the local store and once on the S3 test server."""
    return request.getfixturevalue(f"{request.param}_env")


@pytest.fixture
def standup() -> Path:
    """The short sample meeting shipped in the package (fast: for tests of the agent's mechanics)."""
    path = Path(marginalia.__file__).parent / "samples" / "standup.vtt"
    assert path.is_file(), "the package's sample meeting src/marginalia/samples/standup.vtt is missing"
    return path


@pytest.fixture
def meetings() -> list[Path]:
    """The real meetings every agent test runs on (the CC BY ones in tests/fixtures/meetings: there
    are always some, so none found is a failure, not a skip)."""
    found = meeting_files()
    assert found, "no meeting fixtures in tests/fixtures/meetings"
    return found
