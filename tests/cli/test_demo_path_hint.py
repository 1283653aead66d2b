"""After ``.venv/bin/marginalia demo`` the hints say bare ``marginalia``: when it is not on PATH the
demo says how to activate the environment (item 2 of issue 14)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_says_to_activate_when_marginalia_is_not_on_path(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARGINALIA_", "LANGFUSE_"))}
    env.update(PATH="/usr/bin:/bin", XDG_DATA_HOME=str(tmp_path / "data"), COLUMNS="200")
    proc = subprocess.run(
        [sys.executable, "-m", "marginalia", "demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    assert f"activate its environment first: . {sys.prefix}/bin/activate" in proc.stdout
