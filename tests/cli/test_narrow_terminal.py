"""At 80 columns a suggested command is never wrapped mid-command: a copied hint works.

Before, ``  edit:    marginalia approve THREAD --edit minutes.json  (a document or a JSON Patch)``
and the ``read one:`` line wrapped, so the copied command was cut."""

from __future__ import annotations

from marginalia.testing.cli import run_cli


def test_hints_stay_whole_at_80_columns(store_env, tmp_path, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert run_cli("samples", str(tmp_path / "in"))[0] == 0
    assert run_cli("mb", "demo")[0] == 0
    key = "meetings/2026/platform-team/weekly-standup-recording.vtt"
    assert run_cli("put", str(tmp_path / "in" / "standup.vtt"), f"s3://demo/{key}")[0] == 0
    thread = "minutes-standup-2026-06-09-platform"
    code, out, err = run_cli("minutes", f"s3://demo/{key}", "--thread", thread)
    assert code == 0, err
    lines = out.splitlines()
    assert f"  edit:    marginalia approve {thread} --edit minutes.json" in lines
    assert f'  reject:  marginalia reject {thread} --feedback "what to change"' in lines
    code, out, err = run_cli("approve", thread)
    assert code == 0, err
    assert f"  read one:     marginalia annotations s3://demo/{key} meeting_minutes" in out.splitlines()
