"""Ctrl-C during a run leaves the thread ``interrupted`` (not ``failed · KeyboardInterrupt``), says how
to continue, and ``marginalia resume`` finishes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from importlib.resources import files

import pytest


def _record(store_dir, thread_id):
    path_env = {**os.environ, "MARGINALIA_STORE": f"local:{store_dir}"}
    proc = subprocess.run(
        [sys.executable, "-m", "marginalia", "threads", "--json"], env=path_env, capture_output=True, text=True
    )
    return next((t for t in json.loads(proc.stdout or "[]") if t["thread_id"] == thread_id), None)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ctrl_c_leaves_an_interrupted_thread_that_resume_finishes(tmp_path):
    store_dir = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARGINALIA_", "LANGFUSE_"))}
    env.update(MARGINALIA_STORE=f"local:{store_dir}", COLUMNS="200")
    vtt = (files("marginalia") / "samples" / "standup.vtt").read_text(encoding="utf-8")
    cues = vtt.split("\n\n", 1)[1]
    (tmp_path / "long.vtt").write_text("WEBVTT\n\n" + "\n\n".join([cues] * 60), encoding="utf-8")
    cli = [sys.executable, "-m", "marginalia"]
    assert subprocess.run([*cli, "mb", "demo"], env=env, capture_output=True).returncode == 0
    assert subprocess.run([*cli, "put", str(tmp_path / "long.vtt"), "s3://demo/long.vtt"], env=env).returncode == 0

    run = subprocess.Popen(
        [*cli, "minutes", "s3://demo/long.vtt", "--thread", "long-1", "--yes"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    record = None
    while run.poll() is None:  # wait until the graph is under way: a checkpoint of the thread exists
        if any((store_dir).rglob("*")) and (record := _record(store_dir, "long-1")) and record["status"] == "running":
            break
        time.sleep(0.2)
    assert run.poll() is None, "the run ended before it could be interrupted"
    time.sleep(1.0)  # inside a node
    os.killpg(run.pid, signal.SIGINT)  # what Ctrl-C sends to the terminal's process group
    _, err = run.communicate(timeout=300)
    assert run.returncode == 130, err
    assert "interrupted; continue it with: marginalia resume long-1" in err and "Traceback" not in err

    record = _record(store_dir, "long-1")
    assert record["status"] == "interrupted" and not record["error"]
    threads = subprocess.run([*cli, "threads"], env=env, capture_output=True, text=True)
    assert "marginalia resume long-1" in threads.stdout

    resumed = subprocess.run([*cli, "resume", "long-1"], env=env, capture_output=True, text=True, timeout=500)
    assert resumed.returncode == 0, resumed.stderr
    assert _record(store_dir, "long-1")["status"] == "done"
