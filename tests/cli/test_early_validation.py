"""A bad URI is refused by the parser, before the agent stack (LangGraph) is imported, and a local
path where a URI belongs gets the command that uploads it. Before, ``summarize foo.pdf`` imported
LangGraph first (1.3-10 s) and said only ``expected s3://bucket/key``."""

from __future__ import annotations

import subprocess
import sys

import pytest

PROBE = """
import sys
from marginalia.cli.app import run
sys.argv = ["marginalia", *sys.argv[1:]]
try:
    run()
except SystemExit as exc:
    print("exit", exc.code)
print("langgraph imported:", any(m == "langgraph" or m.startswith("langgraph.") for m in sys.modules))
"""


@pytest.mark.parametrize(
    "argv",
    [
        ["summarize", "foo.pdf"],
        ["minutes", "meetings/standup.vtt"],
        ["outline", "a deck", "--out", "deck.pptx"],
        ["outline", "a deck", "--out", "s3://demo/d.pptx", "--source", "q3.pdf"],
    ],
)
def test_local_path_is_refused_before_langgraph_with_a_put_hint(argv, tmp_path):
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert "exit 2" in proc.stdout and "langgraph imported: False" in proc.stdout, proc.stdout + proc.stderr
    assert "put it first: marginalia put " in proc.stderr and "s3://BUCKET/" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
