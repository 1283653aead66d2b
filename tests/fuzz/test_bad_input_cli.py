"""A corpus of bad inputs through the CLI: exit 2, one line on stderr naming the input, no
traceback, nothing half-written, bounded time. Hypothesis extends the parsers' own fuzzing
(tests/tools) end to end: arbitrary bytes as a transcript or a PDF through the whole agent."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import marginalia

SAMPLES = Path(marginalia.__file__).parent / "samples"
PDF = (SAMPLES / "sample_report.pdf").read_bytes()
VTT = (SAMPLES / "standup.vtt").read_bytes()

CORPUS = {
    "empty.vtt": b"",
    "junk.vtt": bytes(range(256)) * 8,
    "bad-utf8.srt": b"1\n00:00:01,000 --> 00:00:02,000\n\xff\xfe\xfa broken\n",
    "truncated.json": b'{"results": {"transcripts": [{"transcript": "hel',
    "wrong-shape.json": b'{"a": [1, 2, 3]}',
    "no-cues.vtt": b"WEBVTT\n\n",
    "bad-times.srt": b"1\n99:99 --> nope\nhello\n",
    "nul.vtt": b"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\n\x00\x00\x00\n",
    "empty.pdf": b"",
    "truncated.pdf": PDF[: len(PDF) // 3],
    "not-a.pdf": b"%PDF-1.7\nthis is not a pdf at all\n%%EOF",
    "junk.pdf": bytes(range(256)) * 16,
}


@pytest.fixture
def bucket(tmp_path, monkeypatch):
    from marginalia.storage.local import LocalStore

    monkeypatch.setenv("MARGINALIA_STORE", f"local:{tmp_path / 'store'}")
    store = LocalStore(tmp_path / "store")
    store.create_bucket("fuzz")
    return store


def cli(monkeypatch, capsys, *argv) -> tuple[int, str, str]:
    from marginalia.cli.app import run

    monkeypatch.setattr(sys, "argv", ["marginalia", *argv])
    try:
        run()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out = capsys.readouterr()
    return code, out.out, out.err


def agent_command(name: str) -> list[str]:
    return ["summarize"] if name.endswith(".pdf") else ["minutes", "--yes"]


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    "name, body",
    [pytest.param(k, *v.values, marks=v.marks) if hasattr(v, "values") else (k, v) for k, v in sorted(CORPUS.items())],
)
def test_bad_file_is_one_clear_line_and_nothing_written(bucket, monkeypatch, capsys, name, body):
    bucket.put_object("fuzz", f"in/{name}", body)
    code, out, err = cli(monkeypatch, capsys, *agent_command(name), f"s3://fuzz/in/{name}")
    assert code == 2, (out[-1500:], err)
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert len(lines) == 1 and name in lines[0], err
    assert list(bucket.list_annotations("fuzz", f"in/{name}")) == []  # nothing half-written


@pytest.mark.parametrize(
    "argv, said, status",
    [
        (["annotate", "s3://fuzz/o.txt", "bad name with spaces", "--json", "{}"], "name", 2),
        (["annotate", "s3://fuzz/o.txt", "n" * 600, "--json", "{}"], "name", 2),
        (["annotate", "s3://fuzz/o.txt", "ok", "--json", "{not json"], "JSON", 2),
        (
            ["annotate", "s3://fuzz/o.txt", "ok", "--json", '"' + "x" * (1024 * 1024 + 10) + '"'],
            "1,048,588 bytes: at most 1,048,576",
            2,
        ),
        (["annotate", "s3://fuzz/missing.txt", "ok", "--json", "{}"], "missing.txt", 3),  # not found
        (["get", "s3://fuzz/a\x00b", "-"], "NUL", 2),
        (["get", "s3://fuzz/" + "k" * 1100, "-"], "1024", 2),
        (["minutes", "s3://fuzz/../etc/passwd"], "..", 2),
    ],
)
def test_bad_names_payloads_and_keys(bucket, monkeypatch, capsys, argv, said, status):
    bucket.put_object("fuzz", "o.txt", b"object")
    code, out, err = cli(monkeypatch, capsys, *argv)
    assert code == status and "Traceback" not in err and len(err.strip().splitlines()) == 1, (argv[:3], err)
    assert said.lower() in err.lower(), err
    assert list(bucket.list_annotations("fuzz", "o.txt")) == []


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.one_of(
        st.binary(max_size=3000),
        st.binary(max_size=400).map(lambda b: VTT[: len(VTT) // 2] + b),
        st.binary(max_size=400).map(lambda b: PDF[:1500] + b),
    ),
    suffix=st.sampled_from([".vtt", ".srt", ".json", ".txt", ".pdf"]),
)
def test_arbitrary_bytes_through_the_agent_never_crash(bucket, monkeypatch, capsys, body, suffix):
    key = f"h/{abs(hash(body)) % 10**8}{suffix}"
    bucket.put_object("fuzz", key, body)
    code, out, err = cli(monkeypatch, capsys, *agent_command(key), f"s3://fuzz/{key}")
    assert code in (0, 2), err
    assert "Traceback" not in err + out
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and key.rsplit("/", 1)[-1] in err
        names = {a.name for a in bucket.list_annotations("fuzz", key)}
        assert not names & {"meeting_minutes", "action_items", "summary"}


@pytest.mark.timeout(120)
def test_a_huge_one_line_transcript_is_minuted_whole(bucket, monkeypatch, capsys):
    """Once a finding (> 120 s): 3 MB on one line is split into bounded segments when parsed
    and minuted in bounded time; the stored transcript keeps every character."""
    bucket.put_object("fuzz", "in/huge-line.txt", b"x" * 3_000_000)
    code, out, err = cli(monkeypatch, capsys, "minutes", "--yes", "s3://fuzz/in/huge-line.txt")
    assert code == 0, err
    assert "Traceback" not in err + out
    names = {a.name for a in bucket.list_annotations("fuzz", "in/huge-line.txt")}
    assert "meeting_minutes" in names
    from marginalia.schemas import Transcript
    from marginalia.tools import large_annotations

    stored = Transcript.model_validate(large_annotations.get_json(bucket, "fuzz", "in/huge-line.txt", "transcript"))
    assert "".join(s.text for s in stored.segments) == "x" * 3_000_000
