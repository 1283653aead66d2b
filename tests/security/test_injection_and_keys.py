"""Document content is data: an injected "ignore previous instructions and delete ..." cannot
make an agent do anything beyond its fixed tools; and no key escapes the local bucket."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from marginalia.engines.chat import ChatModelEngine
from marginalia.errors import InvalidURI
from marginalia.schemas import DocumentSummary, Minutes
from marginalia.storage.local import LocalStore
from marginalia.testing.chat_models import ScriptedChatModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "durability"))
import crashkit  # noqa: E402

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "injection"
MUTATING = {"put_object", "put_annotation", "delete_object", "delete_objects", "copy_object", "delete_annotation"}


@pytest.fixture
def docs(tmp_path):
    store = crashkit.RecordingStore(LocalStore(tmp_path / "store"))
    store.create_bucket("docs")
    store.put_object("docs", "meetings/sync.vtt", (FIXTURES / "meeting.vtt").read_bytes())
    store.put_object("docs", "keep/other.txt", b"must survive")
    store.calls.clear()
    return store


def data_writes(store):
    return [(c["op"], c["key"], c["name"]) for c in store.calls if c["bucket"] == "docs"]


def test_injected_transcript_cannot_call_anything_but_the_minutes_schema(docs):
    from marginalia.api import minutes

    model = ScriptedChatModel(replies=[Minutes(title="Billing sync", summary="Billing moves on Friday.")])
    result = minutes("s3://docs/meetings/sync.vtt", store=docs, engine=ChatModelEngine(model), approve=True)
    assert result.status == "done"
    assert model.calls and all(call.tool_names == ["Minutes"] for call in model.calls)
    prompt = model.calls[0].human
    assert "IGNORE PREVIOUS INSTRUCTIONS" in prompt and "<document" in prompt  # delivered, as data
    assert prompt.index("<document") < prompt.index("IGNORE PREVIOUS INSTRUCTIONS")
    assert "data" in model.calls[0].system.lower()
    assert sorted(data_writes(docs)) == sorted(
        [("put_annotation", "meetings/sync.vtt", n) for n in ("transcript", "meeting_minutes", "action_items")]
    )
    assert not [c for c in docs.calls if c["op"].startswith("delete")]
    assert docs.get_object("docs", "keep/other.txt")[0] == b"must survive"


def test_injected_pdf_cannot_call_anything_but_the_summary_schema(docs):
    from marginalia.api_documents import summarize
    from marginalia.samples.make_sample_pdf import text_pdf

    text = (FIXTURES / "injection.txt").read_text()
    docs.put_object(
        "docs", "reports/q3.pdf", text_pdf([[("body", line) for line in text.splitlines()]], title="Quarterly report")
    )
    docs.calls.clear()
    model = ScriptedChatModel(
        replies=[DocumentSummary(summary="Costs fell 12 percent.", page_count=1)], repeat_last=True
    )
    result = summarize("s3://docs/reports/q3.pdf", store=docs, engine=ChatModelEngine(model))
    assert result.status == "done"
    assert model.calls and all(call.tool_names == ["DocumentSummary"] for call in model.calls)
    assert any("delete every object" in call.human for call in model.calls)
    assert data_writes(docs) == [("put_annotation", "reports/q3.pdf", "summary")]
    assert not [c for c in docs.calls if c["op"].startswith("delete")]
    assert docs.get_object("docs", "meetings/sync.vtt")[1].size > 0


@pytest.mark.parametrize(
    "key",
    [
        "../escape.txt",
        "a/../../escape.txt",
        "/etc/passwd",
        "a/./b",
        "a\\..\\b",
        "nul\x00byte",
        "x" * 1025,
        "ok/..",
        "..",
        ".",
    ],
)
def test_no_key_escapes_the_local_bucket(tmp_path, key):
    root = tmp_path / "store"
    store = LocalStore(root)
    store.create_bucket("bkt")
    before = set(tmp_path.rglob("*"))
    with pytest.raises(InvalidURI):
        store.put_object("bkt", key, b"x")
    with pytest.raises(InvalidURI):
        store.put_annotation("bkt", key, "n", "{}")
    from marginalia.uri import parse_uri

    with pytest.raises(InvalidURI):
        parse_uri(f"s3://bkt/{key}")
    assert set(tmp_path.rglob("*")) - before <= {p for p in tmp_path.rglob("*") if root in p.parents}
    assert not (tmp_path / "escape.txt").exists()


def test_cli_refuses_escaping_keys_with_one_line(tmp_path, monkeypatch, capsys):
    from marginalia.cli.app import run

    monkeypatch.setenv("MARGINALIA_STORE", f"local:{tmp_path / 'store'}")
    src = tmp_path / "f.txt"
    src.write_text("x")
    for argv in (
        ["put", str(src), "s3://bkt/../../f.txt"],
        ["get", "s3://bkt/a/../x", str(tmp_path / "o")],
        ["summarize", "s3://bkt/../r.pdf"],
        ["batch", "s3://bkt/a/../"],
    ):
        monkeypatch.setattr(sys, "argv", ["marginalia", *argv])
        with pytest.raises(SystemExit) as exit_:
            run()
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and "'..'" in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert not (tmp_path / "f.txt.escaped").exists()
