"""Hostile input gets one clear line: redaction that masks values only, keys that cannot fool a
terminal, --file on what is not a file, JSON that is not JSON (NaN, deep nesting, 5,000-digit
numbers), out-of-range SRT times, and a partly corrupt catalogue under reindex."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from marginalia.errors import InvalidInput
from marginalia.redact import printable, redact
from marginalia.storage.local import LocalStore
from marginalia.testing.cli import cli_local_store
from marginalia.testing.cli import run_cli as cli
from marginalia.tools.transcripts import parse_transcript


@pytest.fixture
def store(tmp_path, monkeypatch) -> LocalStore:
    store = cli_local_store(tmp_path / "store", monkeypatch, "bkt")
    store.put_object("bkt", "doc.txt", b"hello")
    return store


def one_line(code: int, out: str, err: str) -> str:
    assert code == 2, (out, err)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return err


# --- redaction masks values, never the words around them --------------------------------------
@pytest.mark.parametrize(
    "text",
    [
        "invalid key a/../../etc/passwd: no such file, and '..' is refused",
        "password= is required by Python",
        "the token: expired yesterday",
        "Basic authentication failed for this endpoint",
    ],
)
def test_redaction_leaves_prose_alone(text):
    assert redact(text, {}) == text


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("password=Python", "password=***"),
        ("password: hunter22 in the log", "password: *** in the log"),
        ("db.password=s3cr3t;", "db.password=***;"),
        ("api_key: 'plain words'", "api_key: ***"),
        ("password: correcthorsebatterystaple", "password: ***"),
        ("Authorization: Basic dXNlcjpwYXNzd29yZA==", "Authorization: ***"),
    ],
)
def test_redaction_still_masks_values(text, masked):
    assert redact(text, {}) == masked


def test_cli_error_keeps_the_words_around_a_path(store):
    code, out, err = cli("put", "/nonexistent/etc/passwd", "s3://bkt/x")
    assert "/etc/passwd" in one_line(code, out, err) and "***" not in err


# --- keys that could fool a terminal ------------------------------------------------------------
@pytest.mark.parametrize("hidden", ["\u202e", "\u2066", "\u200b", "\u0085", "\u009b", "\ufeff"])
def test_keys_with_bidi_c1_or_zero_width_characters_print_escaped(store, hidden):
    key = f"reports/invoice{hidden}fdp.exe"
    store.put_object("bkt", key, b"x")
    code, out, err = cli("ls", "s3://bkt/reports/")
    assert code == 0, err
    assert hidden not in out and printable(hidden) in out
    code, out, err = cli("annotations", f"s3://bkt/{key}x")
    assert hidden not in err and printable(hidden) in err, err


# --- --file on what is not a regular file ----------------------------------------------------
def test_file_on_a_directory_or_a_device_says_so(store, tmp_path):
    err = one_line(*cli("annotate", "s3://bkt/doc.txt", "note", "--file", str(tmp_path)))
    assert "is a directory" in err
    err = one_line(*cli("annotate", "s3://bkt/doc.txt", "note", "--file", "/dev/null"))
    assert "device" in err
    err = one_line(*cli("put", str(tmp_path), "s3://bkt/dir"))
    assert "is a directory" in err


# --- JSON that is not JSON -------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ('{"score": NaN}', "NaN is not JSON"),
        ("[Infinity]", "Infinity is not JSON"),
        ("[" * 5000 + "]" * 5000, "nested 5000 levels"),
        ('{"n": ' + "7" * 5000 + "}", "digits"),
    ],
)
def test_annotate_json_refuses_what_is_not_usable_json(store, payload, reason):
    err = one_line(*cli("annotate", "s3://bkt/doc.txt", "note", "--json", payload))
    assert reason in err
    assert [a.name for a in store.list_annotations("bkt", "doc.txt")] == []


# --- SRT times no clock shows ----------------------------------------------------------------------
@pytest.mark.parametrize(
    "cue",
    ["00:99:01,000 --> 00:99:02,000", "00:00:01,000 --> 00:00:75,000", "00:00:09,000 --> 00:00:02,000"],
)
def test_srt_timestamps_out_of_range_are_refused(cue):
    text = f"1\n00:00:00,000 --> 00:00:01,000\nhello there\n\n2\n{cue}\nlater words\n"
    with pytest.raises(InvalidInput, match="malformed SRT"):
        parse_transcript(text.encode(), filename="meeting.srt")


# --- reindex on a partly corrupt catalogue -----------------------------------------------------
def test_reindex_on_a_partly_corrupt_catalogue_is_one_line(store):
    for i in range(60):
        store.put_object("bkt", f"k{i:02d}", b"x")
        store.put_annotation("bkt", f"k{i:02d}", "summary", "y" * 400)
    store.close()
    catalog = Path(store.catalog_path)
    size = catalog.stat().st_size
    with open(catalog, "r+b") as f:
        f.seek(size // 2 - 4096)
        f.write(os.urandom(8 * 4096))
    err = one_line(*cli("reindex"))
    assert "damaged" in err and "store repair" in err
