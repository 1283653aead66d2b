"""The README's CLI section, run verbatim in a fresh directory with only the installed package.

The block after ``<!-- cli-walk -->`` is read out of README.md (as ``.ci/run`` reads the test
command), so this proves the README itself: every input exists (``marginalia samples``), every
command is pasteable, nothing waits on a placeholder. Before, the section's first upload failed
(``cannot upload 'standup.vtt': no such file``) and its summarize line was not a command.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parents[2] / "README.md"


def cli_walk() -> str:
    text = README.read_text(encoding="utf-8")
    found = re.search(r"<!-- cli-walk -->\s*```bash\n(.*?)\n```", text, re.S)
    assert found, "README.md has no ```bash block after <!-- cli-walk -->"
    return found.group(1)


def fresh_directory(tmp_path: Path) -> Path:
    """An empty directory holding only ``.venv``: the environment this package is installed in."""
    home = tmp_path / "fresh"
    home.mkdir()
    venv = Path(sys.prefix)
    if (venv / "bin" / "activate").is_file():
        (home / ".venv").symlink_to(venv, target_is_directory=True)
    else:  # not a virtualenv: an activate script that puts this interpreter's scripts first
        (home / ".venv" / "bin").mkdir(parents=True)
        bindir = Path(sys.executable).parent
        (home / ".venv" / "bin" / "activate").write_text(f'export PATH="{bindir}:$PATH"\n')
    return home


def test_the_block_uses_only_what_the_samples_command_writes():
    block = cli_walk()
    assert block.splitlines()[0].startswith(". .venv/bin/activate")
    assert "marginalia samples" in block
    assert "THREAD" not in block and "[--" not in block  # no placeholders, no optional-flag syntax


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_readme_cli_section_runs_verbatim(tmp_path):
    home = fresh_directory(tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARGINALIA_", "LANGFUSE_"))}
    env.update(MARGINALIA_STORE=f"local:{tmp_path / 'store'}", HOME=str(tmp_path / "home"), COLUMNS="80", TERM="dumb")
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", cli_walk()],
        cwd=home,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "error:" not in proc.stderr, proc.stderr
    # what the walk wrote is there: minutes (after a rejection and an approval), the summary, the deck
    out = proc.stdout
    assert "wrote meeting_minutes on s3://demo/meetings/standup.vtt" in out
    assert "wrote summary on s3://demo/reports/q3.pdf" in out
    assert "s3://demo/decks/q3.pptx" in out
    threads = json.loads(out[out.rindex("\n[\n") :])  # the last command: threads --json
    assert {t["thread_id"]: t["status"] for t in threads if t["thread_id"] in ("standup-1", "deck-1")} == {
        "standup-1": "done",
        "deck-1": "done",
    }
