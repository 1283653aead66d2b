"""The default store is one per user (platformdirs' data directory), whatever the working directory;
MARGINALIA_STORE overrides it; "not found" names the store it looked in.

Before, the default was ``./.marginalia``: from another directory ``threads`` said "no threads" and
``approve`` "no thread", with no word on where they had looked.
"""

from __future__ import annotations

from marginalia.testing.cli import run_cli


def test_commands_from_two_directories_share_the_per_user_store(tmp_path, monkeypatch):
    monkeypatch.delenv("MARGINALIA_STORE", raising=False)
    monkeypatch.delenv("MARGINALIA_STATE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.chdir(tmp_path / "a")
    assert run_cli("samples", ".")[0] == 0
    assert run_cli("mb", "demo")[0] == 0
    assert run_cli("put", "standup.vtt", "s3://demo/standup.vtt")[0] == 0
    monkeypatch.chdir(tmp_path / "b")
    code, out, err = run_cli("ls", "s3://demo")
    assert code == 0 and "standup.vtt" in out, err
    assert not (tmp_path / "a" / ".marginalia").exists() and not (tmp_path / "b" / ".marginalia").exists()
    assert (tmp_path / "data" / "marginalia" / "store").is_dir()


def test_not_found_names_the_store(tmp_path, monkeypatch):
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{tmp_path / 'elsewhere'}")
    monkeypatch.delenv("MARGINALIA_STATE", raising=False)
    code, _, err = run_cli("approve", "minutes-0123456789abcdef")
    assert code == 3 and str(tmp_path / "elsewhere") in err
    code, out, _ = run_cli("threads")
    assert code == 0 and f"no threads in the store local:{tmp_path / 'elsewhere'}" in out


READ_OR_FAIL = [
    ("threads",),
    ("threads", "--pending", "--json"),
    ("threads", "unlock", "minutes-0123456789abcdef"),
    ("approve", "minutes-0123456789abcdef"),
    ("resume", "minutes-0123456789abcdef"),
    ("ls", "s3://demo"),
    ("get", "s3://demo/standup.vtt"),
    ("annotations", "s3://demo/standup.vtt"),
    ("find", "--name", "meeting_minutes"),
    ("search", "SELECT object_key FROM annotation_table"),
    ("trace", "minutes-0123456789abcdef"),
    ("put", "standup.vtt", "s3://demo/standup.vtt"),  # fails: no bucket demo
    ("minutes", "s3://demo/standup.vtt"),
    ("batch", "s3://demo/", "--yes"),
]


def test_reading_or_failing_never_creates_the_store(tmp_path, monkeypatch):
    """Before, every command created ``.marginalia/`` (or the named store) wherever it ran, even
    `threads` or a refused `put`; now only `mb` and `demo` create a store."""
    store = tmp_path / "never"
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{store}")
    monkeypatch.delenv("MARGINALIA_STATE", raising=False)
    monkeypatch.chdir(tmp_path)
    assert run_cli("samples", ".")[0] == 0
    for args in READ_OR_FAIL:
        code, out, err = run_cli(*args)
        assert not store.exists(), args
        if args[0] == "threads" and "unlock" not in args:
            assert code == 0 and (out.strip() == "[]" or f"no threads in the store local:{store}" in out), args
        else:
            assert code == 3 and f"the local store {store} does not exist" in err, (args, err)
    assert run_cli("mb", "demo")[0] == 0 and store.is_dir()
