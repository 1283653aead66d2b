"""``marginalia demo`` in a fresh directory: embedded defaults, sample meeting, annotations written."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_runs_in_an_empty_directory_and_says_where_to_look(tmp_path, monkeypatch):
    env = {k: v for k, v in os.environ.items() if not k.startswith("MARGINALIA_")}
    env["COLUMNS"] = "200"
    env["XDG_DATA_HOME"] = str(tmp_path / "data")  # the per-user data directory (platformdirs on Linux)
    default = tmp_path / "data" / "marginalia" / "store"
    proc = subprocess.run(
        [sys.executable, "-m", "marginalia", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert proc.returncode == 0, proc.stderr
    assert "marginalia annotations s3://demo/meetings/standup.vtt" in proc.stdout
    assert "wrote meeting_minutes" in proc.stdout

    from marginalia.storage.local import LocalStore

    with LocalStore(default) as store:  # the embedded default location
        names = {a.name for a in store.list_annotations("demo", "meetings/standup.vtt")}
        assert {"transcript", "meeting_minutes", "action_items"} <= names
        minutes = store.get_annotation("demo", "meetings/standup.vtt", "meeting_minutes").json()
        assert minutes["provenance"]["engine"] == "offline" and minutes["action_items"]

    # runs again over its own earlier results (in this process: the same command, faster)
    import contextlib
    import io

    from marginalia import context
    from marginalia.cli.app import run

    monkeypatch.chdir(tmp_path)
    for name in [k for k in os.environ if k.startswith("MARGINALIA_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setattr(context, "_DEFAULTS", {})
    monkeypatch.setattr(sys, "argv", ["marginalia", "demo"])
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
        run()
    assert out.getvalue().count("wrote meeting_minutes") == 1
    with LocalStore(default) as store:
        threads = [o for o in store.list_objects("marginalia-state", "v1/threads/") if "/minutes-" in o.key]
        assert len(threads) == 2  # one minutes thread per demo run, each done
