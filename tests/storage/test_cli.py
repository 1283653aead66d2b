"""The storage commands, driven through typer's CliRunner on a real LocalStore, plus one run of the
installed console script to check exit status 2 and a one-line error for bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from marginalia.cli import app
from marginalia.errors import (
    AnnotationNotFound,
    BucketNotFound,
    InvalidAnnotationName,
    InvalidInput,
    InvalidURI,
    PayloadTooLarge,
    PreconditionFailed,
)
from marginalia.storage.local import LocalStore

CONSOLE_SCRIPT = Path(sys.executable).with_name("marginalia")


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """Run ``marginalia <args>`` in-process against a fresh local store; returns (runner, store)."""
    root = tmp_path / "store"
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{root}")
    monkeypatch.setenv("COLUMNS", "160")  # rich tables fit the terminal; give them a wide one
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def run(*args: str, input: bytes | str | None = None, ok: bool = True):
        result = runner.invoke(app, list(args), input=input)
        if ok and result.exit_code != 0:
            raise AssertionError(f"marginalia {' '.join(args)} failed: {result.exception!r}\n{result.output}")
        return result

    run("mb", "docs")
    store = LocalStore(root)
    yield run, store
    store.close()


def test_put_ls_get_round_trip(cli, tmp_path):
    run, store = cli
    src = tmp_path / "notes.txt"
    src.write_bytes(b"line one\nline two\n")
    out = run("put", str(src), "s3://docs/meetings/notes.txt").output
    assert "s3://docs/meetings/notes.txt" in out and "18 bytes" in out
    assert store.get_object("docs", "meetings/notes.txt")[0] == src.read_bytes()

    listing = json.loads(run("ls", "s3://docs/meetings/", "--json").output)
    assert [o["key"] for o in listing["objects"]] == ["meetings/notes.txt"]
    assert listing["objects"][0]["size"] == 18
    assert json.loads(run("ls", "s3://docs", "--json").output)["prefixes"] == ["meetings/"]
    table = run("ls", "s3://docs", "-r").output
    assert "meetings/notes.txt" in table and store.head_object("docs", "meetings/notes.txt").etag in table

    assert run("get", "s3://docs/meetings/notes.txt").stdout_bytes == src.read_bytes()
    run("get", "s3://docs/meetings/notes.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_bytes() == src.read_bytes()
    (tmp_path / "outdir").mkdir()
    run("get", "s3://docs/meetings/notes.txt", str(tmp_path / "outdir"))
    assert (tmp_path / "outdir" / "notes.txt").exists()

    run("put", "-", "s3://docs/from-stdin", input=b"piped bytes")
    assert store.get_object("docs", "from-stdin")[0] == b"piped bytes"


def test_annotate_list_print_and_remove(cli, tmp_path):
    run, store = cli
    store.put_object("docs", "a.pdf", b"%PDF-1.7 ...")
    run("annotate", "s3://docs/a.pdf", "agent.summary", "--json", '{ "title": "Café",  "pages": 3 }')
    assert store.get_annotation("docs", "a.pdf", "agent.summary").payload == '{"title":"Café","pages":3}'.encode()
    payload_file = tmp_path / "kw.txt"
    payload_file.write_text("alpha, beta", encoding="utf-8")
    run("annotate", "s3://docs/a.pdf", "agent.keywords", "--file", str(payload_file))
    run("annotate", "s3://docs/a.pdf", "note", "-", input="from stdin")

    listed = json.loads(run("annotations", "s3://docs/a.pdf", "--json").output)
    assert [a["name"] for a in listed] == ["agent.keywords", "agent.summary", "note"]
    assert listed[0]["size"] == len("alpha, beta")
    table = run("annotations", "s3://docs/a.pdf").output
    assert "agent.keywords" in table and listed[1]["etag"] in table
    only = json.loads(run("annotations", "s3://docs/a.pdf", "--prefix", "agent.", "--json").output)
    assert [a["name"] for a in only] == ["agent.keywords", "agent.summary"]

    assert run("annotations", "s3://docs/a.pdf", "note").stdout_bytes == b"from stdin\n"
    one = json.loads(run("annotations", "s3://docs/a.pdf", "agent.summary", "--json").output)
    assert one["payload"] == {"title": "Café", "pages": 3}  # JSON, not a string holding JSON

    run("unannotate", "s3://docs/a.pdf", "note")
    run("unannotate", "s3://docs/a.pdf", "note")  # idempotent
    assert [a.name for a in store.list_annotations("docs", "a.pdf")] == ["agent.keywords", "agent.summary"]


def test_cp_rm_and_versions(cli):
    run, store = cli
    store.put_object("docs", "src", b"body")
    store.put_annotation("docs", "src", "agent.summary", "s")
    assert "1 annotation(s)" in run("cp", "s3://docs/src", "s3://docs/dst").output
    run("cp", "s3://docs/src", "s3://docs/bare", "--exclude-annotations")
    assert [a.name for a in store.list_annotations("docs", "dst")] == ["agent.summary"]
    assert list(store.list_annotations("docs", "bare")) == []
    run("rm", "s3://docs/dst")
    assert [o.key for o in store.list_objects("docs")] == ["bare", "src"]

    run("mb", "s3://history", "--versioned")
    assert store.is_versioned("history")
    v1 = store.put_object("history", "k", b"one")
    store.put_object("history", "k", b"two")
    assert run("get", "s3://history/k", "--version-id", v1.version_id).stdout_bytes == b"one"
    run("annotate", "s3://history/k", "old", "--json", "1", "--version-id", v1.version_id)
    assert store.get_annotation("history", "k", "old", version_id=v1.version_id).payload == b"1"
    run("rm", "s3://history/k", "--version-id", v1.version_id)
    assert store.get_object("history", "k")[0] == b"two"


@pytest.mark.parametrize(
    "args, error",
    [
        (["annotate", "s3://docs/a.pdf", "aws.reserved", "--json", "{}"], InvalidAnnotationName),
        (["annotate", "s3://docs/a.pdf", "ok", "--json", "{not json"], InvalidInput),
        (["annotate", "s3://docs/a.pdf", "ok"], InvalidInput),  # no payload source
        (["annotate", "s3://docs/a.pdf", "ok", "--json", "1", "--file", "x"], InvalidInput),  # two sources
        (["annotate", "s3://docs/a.pdf", "ok", "--json", "1", "--if-match", '"0"'], PreconditionFailed),
        (["annotations", "s3://docs/a.pdf", "missing"], AnnotationNotFound),
        (["get", "s3://nobucket/x"], BucketNotFound),
        (["get", "docs/a.pdf"], InvalidURI),
        (["put", "no-such-file", "s3://docs/x"], InvalidInput),
        (["ls", "s3://docs/../x"], InvalidURI),
        (["mb", "Bad_Bucket"], InvalidURI),
    ],
)
def test_bad_input_raises_one_project_error(cli, args, error):
    run, store = cli
    store.put_object("docs", "a.pdf", b"x")
    result = run(*args, ok=False)
    assert isinstance(result.exception, error), result.exception


def test_oversized_payload_file_is_refused_without_reading_it_all(cli, tmp_path):
    run, store = cli
    store.put_object("docs", "a.pdf", b"x")
    big = tmp_path / "big.json"
    with big.open("wb") as f:
        f.truncate(50 * 1024 * 1024)  # sparse 50 MiB: reading it whole would be wasteful
    result = run("annotate", "s3://docs/a.pdf", "big", "--file", str(big), ok=False)
    assert isinstance(result.exception, InvalidInput) and "1 MiB" in str(result.exception)
    exact = tmp_path / "exact.txt"
    exact.write_bytes(b"a" * (1024 * 1024 + 1))
    result = run("annotate", "s3://docs/a.pdf", "big", "--file", str(exact), ok=False)
    assert isinstance(result.exception, (InvalidInput, PayloadTooLarge))


@pytest.mark.skipif(not CONSOLE_SCRIPT.exists(), reason="console script not installed in this environment")
def test_console_script_exit_codes(tmp_path):
    env = {**os.environ, "MARGINALIA_STORE": f"local:{tmp_path / 'store'}", "NO_COLOR": "1"}

    def marginalia(*args: str, input: bytes | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([str(CONSOLE_SCRIPT), *args], env=env, input=input, capture_output=True, timeout=60)

    with LocalStore(tmp_path / "store") as store:  # set up in-process: each script start costs seconds
        store.create_bucket("docs")
        store.put_object("docs", "k", b"body")
    ok = marginalia("annotate", "s3://docs/k", "agent.note", "-", input=b"hello")
    assert ok.returncode == 0, ok.stderr
    bad = marginalia("annotate", "s3://docs/k", "s3.reserved", "-", input=b"x")
    assert bad.returncode == 2
    lines = bad.stderr.decode().strip().splitlines()
    assert len(lines) == 1 and "s3.reserved" in lines[0] and "R6.3" in lines[0]
    assert b"Traceback" not in bad.stderr
    with LocalStore(tmp_path / "store") as store:
        assert store.get_annotation("docs", "k", "agent.note").payload == b"hello"
        assert [a.name for a in store.list_annotations("docs", "k")] == ["agent.note"]


def test_empty_listings_say_so_instead_of_crashing(cli):
    run, _ = cli
    result = run("ls", "s3://docs/nothing-here/")
    assert "(nothing under s3://docs/nothing-here/)" in result.stdout
    run("put", "-", "s3://docs/bare.txt", input=b"x")
    result = run("annotations", "s3://docs/bare.txt")
    assert "(no annotations on s3://docs/bare.txt)" in result.stdout


def test_version_and_help_panels():
    from importlib.metadata import version

    runner = CliRunner()
    shown = runner.invoke(app, ["--version"])
    assert shown.exit_code == 0 and shown.stdout.strip() == f"marginalia {version('marginalia')}"
    helped = runner.invoke(app, ["--help"], env={"COLUMNS": "100", "NO_COLOR": "1"})
    assert helped.exit_code == 0
    panels = [line.strip("╭─ ").split(" ")[0] for line in helped.stdout.splitlines() if line.startswith("╭─")]
    assert panels == ["Options", "Storage", "Annotations", "Agents", "Search", "Operations"], panels
