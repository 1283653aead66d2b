"""``MARGINALIA_STORE=s3 marginalia demo`` says it runs on the local store (it did so silently), its
hints read that store, and it points at waiting threads only when some wait."""

from __future__ import annotations

from marginalia.testing.cli import run_cli


def test_demo_with_an_s3_store_says_so_and_hints_the_local_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # the demo falls back to the per-user store: keep it in the test's directory, not the real one
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("MARGINALIA_STORE", "s3")
    monkeypatch.delenv("MARGINALIA_STATE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    code, out, err = run_cli("demo")
    assert code == 0, err
    assert "MARGINALIA_STORE=s3 is not used: the demo runs on the local store" in out
    where_to_look = out[out.index("where to look") :]
    hint = next(line for line in where_to_look.splitlines() if "annotations s3://demo/meetings/standup.vtt" in line)
    assert hint.strip().startswith(f"MARGINALIA_STORE=local:{tmp_path / 'data'}")  # a bare `annotations` reads S3
    assert "threads --pending" not in out  # every demo thread is approved: nothing waits
