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


def test_ls_threads_and_find_never_fold_keys_uris_or_thread_ids_at_80_columns(store_env, tmp_path, monkeypatch):
    """Before, `ls` folded long keys over several lines and `threads`/`find` folded their object and
    key columns, so a copied key or URI was cut; now those stay whole on one line, other columns
    are cut with "…", and a listing whose keys fit stays within 80 columns."""
    monkeypatch.setenv("COLUMNS", "80")
    assert run_cli("samples", str(tmp_path / "in"))[0] == 0
    assert run_cli("mb", "demo")[0] == 0
    key = "meetings/2026/platform-team/weekly-standup-recording-of-the-whole-organisation.vtt"  # 83 characters
    odd = "notes/a[bold]b.vtt"  # markup-looking: shown as it is
    for k in (key, odd):
        assert run_cli("put", str(tmp_path / "in" / "standup.vtt"), f"s3://demo/{k}")[0] == 0
    thread = "minutes-standup-2026-06-09-platform-team-weekly-of-the-organisation"
    assert run_cli("minutes", f"s3://demo/{key}", "--thread", thread, "--yes")[0] == 0

    def one_line_holds(out: str, *pieces: str) -> None:
        assert any(all(p in line for p in pieces) for line in out.splitlines()), (pieces, out)

    code, out, err = run_cli("ls", "s3://demo", "--recursive")
    assert code == 0, err
    one_line_holds(out, key, "3,384")
    one_line_holds(out, odd)
    code, out, err = run_cli("ls", "s3://demo/notes/")
    assert code == 0 and max(len(line) for line in out.splitlines()) <= 80, out
    one_line_holds(out, odd)

    code, out, err = run_cli("threads")
    assert code == 0, err
    one_line_holds(out, thread, f"s3://demo/{key}", "done")

    code, out, err = run_cli("find", "--name", "meeting_minutes")
    assert code == 0, err
    one_line_holds(out, "demo", key, "meeting_minutes")


def test_batch_keeps_object_uris_and_thread_ids_whole_at_80_columns(store_env, tmp_path, monkeypatch):
    """Before, batch's table folded every column, object URIs and thread ids included."""
    monkeypatch.setenv("COLUMNS", "80")
    assert run_cli("samples", str(tmp_path / "in"))[0] == 0
    assert run_cli("mb", "demo")[0] == 0
    key = "meetings/2026/platform-team/weekly-standup-recording-of-the-whole-organisation.vtt"
    assert run_cli("put", str(tmp_path / "in" / "standup.vtt"), f"s3://demo/{key}")[0] == 0
    code, out, err = run_cli("batch", "s3://demo/meetings/", "--yes")
    assert code == 0, err
    row = next(line for line in out.splitlines() if f"s3://demo/{key}" in line)
    assert "done" in row and "minutes-" in row
    thread = next(word for word in row.split() if word.startswith("minutes-"))
    assert run_cli("trace", thread, "--json")[0] == 0  # the id on the line is the whole id
