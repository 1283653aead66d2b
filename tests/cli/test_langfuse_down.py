"""With Langfuse keys set and the server down, a run prints one warning line on stderr (before: the
exporter's retry messages and a failure line per batch)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys


def test_a_dead_langfuse_is_one_warning_line(tmp_path):
    with socket.socket() as s:  # a loopback port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARGINALIA_", "LANGFUSE_"))}
    env.update(MARGINALIA_STORE=f"local:{tmp_path / 'store'}")
    cli = [sys.executable, "-m", "marginalia"]
    for argv in (["samples", str(tmp_path)], ["mb", "demo"], ["put", str(tmp_path / "standup.vtt"), "s3://demo/s.vtt"]):
        assert subprocess.run([*cli, *argv], env=env, capture_output=True).returncode == 0
    env.update(
        LANGFUSE_PUBLIC_KEY="pk-lf-test",
        LANGFUSE_SECRET_KEY="sk-lf-test-secret",
        LANGFUSE_BASE_URL=f"http://127.0.0.1:{port}",
        LANGFUSE_TIMEOUT="2",
    )
    proc = subprocess.run(
        [*cli, "minutes", "s3://demo/s.vtt", "--json"], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "waiting"
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: traces not exported"), proc.stderr
    assert "sk-lf-test-secret" not in proc.stderr
