"""Help reads like the commands a user types: ``-h`` works, flags are flags, arguments are upper case."""

from __future__ import annotations

from marginalia.testing.cli import run_cli


def test_dash_h_is_help():
    code, out, _ = run_cli("summarize", "-h")
    assert code == 0 and "summarize [OPTIONS] URI" in out
    assert run_cli("-h")[0] == 0


def test_flags_show_no_value_and_arguments_are_upper_case(monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    _, out, _ = run_cli("summarize", "--help")
    assert "summarize [OPTIONS] URI" in out and "{uri}" not in out
    review = next(line for line in out.splitlines() if "--review" in line)
    assert "<bool>" not in review  # `--review true` is refused: help must not suggest a value
    assert "<bool>" not in out
    _, out, _ = run_cli("get", "--help")
    assert "get [OPTIONS] URI [FILE]" in out
