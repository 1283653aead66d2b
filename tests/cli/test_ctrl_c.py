"""Ctrl-C during a run leaves the thread ``interrupted`` (not ``failed · KeyboardInterrupt``), says how
to continue, and ``marginalia resume`` finishes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest


def _record(store_dir, thread_id):
    path_env = {**os.environ, "MARGINALIA_STORE": f"local:{store_dir}"}
    proc = subprocess.run(
        [sys.executable, "-m", "marginalia", "threads", "--json"], env=path_env, capture_output=True, text=True
    )
    return next((t for t in json.loads(proc.stdout or "[]") if t["thread_id"] == thread_id), None)


def _long_meeting(cues: int) -> str:
    """A long stand-up whose sentences all differ (nothing for the cleaner to drop as repeated)."""
    people = ["Priya Raman", "Marco Silva", "Ana Costa", "Tom Becker"]
    lines = ["WEBVTT", ""]
    for i in range(cues):
        start, end = divmod(i * 4, 60), divmod(i * 4 + 3, 60)
        lines += [
            f"00:{start[0] % 60:02d}:{start[1]:02d}.000 --> 00:{end[0] % 60:02d}:{end[1]:02d}.000",
            f"<v {people[i % 4]}>Item {i}: the cluster {i % 23} budget moves by {i * 7 % 101} percent, "
            f"and I will check region {i % 11} with the team before Friday number {i}.",
            "",
        ]
    return "\n".join(lines)


def _running(store_dir, thread_id) -> bool:
    from marginalia.storage.local import LocalStore
    from marginalia.threads import ThreadIndex
    from marginalia.uri import parse_uri

    if not (store_dir / "marginalia-state").exists() and not any(store_dir.glob("*")):
        return False
    try:
        with LocalStore(store_dir) as store:
            record = ThreadIndex(store, parse_uri("s3://marginalia-state/v1", require_key=False)).get(thread_id)
    except Exception:  # the store is being created by the run
        return False
    return record is not None and record.status == "running"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ctrl_c_leaves_an_interrupted_thread_that_resume_finishes(tmp_path):
    store_dir = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARGINALIA_", "LANGFUSE_"))}
    env.update(MARGINALIA_STORE=f"local:{store_dir}", COLUMNS="200")
    (tmp_path / "long.vtt").write_text(_long_meeting(1500), encoding="utf-8")
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
    while run.poll() is None and not _running(store_dir, "long-1"):  # wait until the graph is under way
        time.sleep(0.1)
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
