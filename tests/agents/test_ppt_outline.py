"""The PPT outliner end to end: request (+ sources) -> outline -> approval -> .pptx + annotations.

Every outline request of the fixtures runs on the local store and the S3 test server, stops at
the approval interrupt, and is approved in a NEW process; the deck is then read back with
python-pptx (and converted by LibreOffice where ``soffice`` exists) and must say exactly what
was approved.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

import marginalia
import marginalia.api as api
from marginalia import api_documents as docs
from marginalia import context, runtime
from marginalia.errors import InvalidInput, ObjectNotFound, UnsupportedInput
from marginalia.samples.make_sample_pdf import sample_report_bytes
from marginalia.schemas import Outline, Slide
from marginalia.testing.fixtures import SHARED_FIXTURES
from marginalia.tools.slides import read_pptx
from marginalia.tracing import trace_id_for

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
SHARED_OUTLINES = SHARED_FIXTURES / "outlines" / "sciduet"
SAMPLE_REQUEST = Path(marginalia.__file__).parent / "samples" / "outline_request.txt"
VTT = """WEBVTT

00:00:01.000 --> 00:00:05.000
<v Alice>We decided to move the batch clusters to Graviton next month.

00:00:05.500 --> 00:00:09.000
<v Bob>I will write the migration plan by Friday.
"""


def outline_requests() -> list[tuple[str, str, int | None]]:
    """``(name, request, slide count the reference deck has)`` for every fixture request."""
    found: dict[str, Path] = {}
    for root in (FIXTURES / "outlines", SHARED_OUTLINES):
        if root.is_dir():
            for path in sorted(root.glob("*.json")):
                found.setdefault(path.name, path)
    requests = []
    for name, path in found.items():
        data = json.loads(path.read_text())
        requests.append((Path(name).stem, data["prompt_with_context"], data["reference"]["slide_count"]))
    requests.append(("sample_request", SAMPLE_REQUEST.read_text(), 10))
    return requests


def deck(env, key: str) -> tuple[Outline, object]:
    data, info = env.store.get_object(env.bucket, key)
    return read_pptx(io.BytesIO(data), name=key), info


RESUME_ALL = """
import json, sys, marginalia.api as api
out = {}
for tid in sys.argv[1:]:
    r = api.resume(tid, action="approve", reviewer="subprocess")
    out[tid] = {"status": r.status, "annotations": [a.name for a in r.annotations], "deck": r.object_uri}
print(json.dumps(out))
"""


def test_every_outline_request_waits_then_a_new_process_approves(agent_env):
    requests = outline_requests()
    assert len(requests) >= 2
    started = {}
    for name, request, reference_slides in requests:
        key = f"decks/{name}.pptx"
        result = docs.outline(request, out=f"s3://{agent_env.bucket}/{key}")
        assert result.status == "waiting" and result.annotations == ()
        proposal = Outline.model_validate(result.proposal)
        assert proposal.title and all(s.title for s in proposal.slides)
        assert proposal.slide_count == len(proposal.slides) == reference_slides  # the count the request asks for
        with pytest.raises(ObjectNotFound):  # no deck before approval
            agent_env.store.head_object(agent_env.bucket, key)
        started[result.thread_id] = (key, request, result)

    out = agent_env.python(RESUME_ALL, *started)

    for thread_id, (key, request, waiting) in started.items():
        assert out[thread_id] == {
            "status": "done",
            "annotations": ["outline", "generation_context"],
            "deck": f"s3://{agent_env.bucket}/{key}",
        }
        rendered, info = deck(agent_env, key)
        stored = agent_env.annotation(key, "outline")
        written = {**stored["outline"], "slides": [{**s, "thin": False} for s in stored["outline"]["slides"]]}
        assert rendered.model_dump(mode="json") == written  # the deck says what was approved (thin: record only)
        assert stored["outline"]["slides"] == waiting.proposal["slides"]
        assert stored["slide_count"] == len(rendered.slides) and stored["topics"] == rendered.topics
        context = agent_env.annotation(key, "generation_context")
        assert context["request"] == request.strip() and context["sources"] == []
        assert [i["action"] for i in context["iterations"]] == ["approve"]
        assert context["iterations"][0]["outline"] == waiting.proposal
        prov = context["provenance"]
        assert prov == stored["provenance"] and prov["source_etag"] == info.etag
        assert prov["thread_id"] == thread_id and prov["trace_id"] == trace_id_for(thread_id)
        assert prov["agent"] == "ppt_outline" and context["engine"] == "offline"
        assert info.content_type.endswith("presentationml.presentation")


def test_grounded_in_sources_annotations_or_summarised_first(local_env):
    # a PDF already summarised, a PDF not yet summarised, a meeting with minutes, a text file
    summarised = local_env.put("src/q3.pdf", sample_report_bytes())
    docs.summarize(summarised)
    before = local_env.annotation("src/q3.pdf", "summary")
    fresh = local_env.put("src/copy.pdf", sample_report_bytes())
    meeting = local_env.put("src/sync.vtt", VTT.encode())
    api.minutes(meeting, approve=True)
    notes = local_env.put(
        "src/notes.md",
        b"# Notes\n\nThe finance team asks for a monthly cost report per team. "
        b"Dashboards should show spend by cost-center tag.",
    )

    result = docs.outline(
        "Q3 cost optimisation review for the platform team",
        slides=6,
        out=f"s3://{local_env.bucket}/decks/q3.pptx",
        sources=[summarised, fresh, meeting, notes],
        approve=True,
    )
    assert result.status == "done"
    context = local_env.annotation("decks/q3.pptx", "generation_context")
    assert [(s["uri"], s["kind"], s["origin"]) for s in context["sources"]] == [
        (summarised, "summary", "annotation"),
        (fresh, "summary", "summarised"),
        (meeting, "meeting_minutes", "annotation"),
        (notes, "text", "read"),
    ]
    assert local_env.annotation("src/q3.pdf", "summary") == before  # used, not rewritten
    written = local_env.annotation("src/copy.pdf", "summary")  # summarised first, and kept for next time
    assert written["title"] == before["title"] and written["provenance"]["agent"] == "pdf_summary"
    assert written["provenance"]["thread_id"] == result.thread_id
    assert local_env.annotation_names("src/notes.md") == []  # a text source is read, not annotated
    # the bullets come from what the sources say
    bullets = " ".join(b for s in result.proposal["slides"] for b in s["bullets"])
    assert any(k["text"][:40] in bullets for k in before["key_points"])


def test_the_approval_payload_flags_thin_slides(local_env):
    source = local_env.put("src/q3.pdf", sample_report_bytes())
    waiting = docs.outline(
        SAMPLE_REQUEST.read_text(), out=f"s3://{local_env.bucket}/decks/thin.pptx", slides=10, sources=[source]
    )
    thin = [f"/slides/{i}" for i, s in enumerate(waiting.proposal["slides"]) if s["thin"]]
    assert waiting.draft["label"] == "offline extractive draft"  # the reviewer sees what it is
    assert thin and [f["path"] for f in waiting.draft["flags"]] == thin  # and which slides have little behind them


def test_feedback_revises_edit_is_rendered_and_every_iteration_is_kept(local_env):
    key = "decks/iter.pptx"
    request = SAMPLE_REQUEST.read_text()
    source = local_env.put("src/q3.pdf", sample_report_bytes())
    first = docs.outline(request, out=f"s3://{local_env.bucket}/{key}", slides=5, sources=[source])
    second = api.resume(first.thread_id, action="reject", feedback="Fewer bullets, please.")
    assert second.status == "waiting" and second.proposal != first.proposal
    assert sum(len(s["bullets"]) for s in second.proposal["slides"]) < sum(
        len(s["bullets"]) for s in first.proposal["slides"]
    )

    edited = dict(second.proposal, title="Q3 costs: what we change")
    edited["slides"] = [
        dict(second.proposal["slides"][0], notes="Open with the overrun:\n$62,380 over budget.")
    ] + second.proposal["slides"][1:]
    done = api.resume(first.thread_id, action="edit", edited=edited, reviewer="dev")
    assert done.status == "done"
    rendered, _ = deck(local_env, key)
    assert rendered.title == "Q3 costs: what we change"
    assert rendered.slides[0].notes == "Open with the overrun:\n$62,380 over budget."
    assert [s.title for s in rendered.slides] == [s["title"] for s in second.proposal["slides"]]

    iterations = local_env.annotation(key, "generation_context")["iterations"]
    assert [(i["action"], i["feedback"]) for i in iterations] == [("reject", "Fewer bullets, please."), ("edit", None)]
    assert iterations[0]["outline"] == first.proposal and iterations[1]["outline"] == second.proposal
    assert iterations[1]["approved"]["title"] == "Q3 costs: what we change" and iterations[1]["reviewer"] == "dev"


def test_deck_bytes_do_not_depend_on_the_clock(monkeypatch):
    from marginalia.nodes.outline import deck_bytes

    outline = Outline(title="T", slides=[Slide(title="A", bullets=["one", "two"], notes="n")])
    now = deck_bytes(outline)
    later = time.localtime(time.time() + 86_400 * 400)
    monkeypatch.setattr(zipfile.time, "localtime", lambda *_: later)
    assert deck_bytes(outline) == now
    assert deck_bytes(outline.model_copy(update={"title": "U"})) != now


def test_render_again_after_a_crash_uploads_no_second_deck(local_env):
    from marginalia.graph.ppt_outline import build_ppt_outline_graph

    key = "decks/retry.pptx"
    done = docs.outline("A 3-slide update on log retention", out=f"s3://{local_env.bucket}/{key}", approve=True)
    info = local_env.store.head_object(local_env.bucket, key)
    annotations = {n: local_env.annotation(key, n) for n in ("outline", "generation_context")}
    graph = build_ppt_outline_graph(
        checkpointer=runtime.open_checkpointer(local_env.store, runtime.state_location(local_env.store))
    )
    config = {"configurable": {"thread_id": done.thread_id}}
    before_render = next(s for s in graph.get_state_history(config) if s.next == ("render",))
    list(graph.stream(None, before_render.config, context=context.AgentContext(store=local_env.store)))
    again = local_env.store.head_object(local_env.bucket, key)
    assert (again.etag, again.last_modified) == (info.etag, info.last_modified)  # not uploaded again
    assert {n: local_env.annotation(key, n) for n in annotations} == annotations


def test_an_existing_deck_is_only_replaced_with_overwrite(agent_env):
    key = "decks/taken.pptx"
    uri = agent_env.put(key, b"somebody's deck")
    with pytest.raises(InvalidInput, match="already exists: pass --overwrite"):
        docs.outline("A 2-slide note", out=uri)
    assert agent_env.store.get_object(agent_env.bucket, key)[0] == b"somebody's deck"
    assert agent_env.all_annotations() == []
    assert agent_env.index().list() == []  # refused before a thread was recorded
    done = docs.outline("A 2-slide note", out=uri, overwrite=True, approve=True)
    assert done.status == "done" and deck(agent_env, key)[0].slide_count == 2


@pytest.mark.parametrize(
    "kwargs, error, words",
    [
        ({"request": "  "}, InvalidInput, "request is empty"),
        ({"out": "s3://meetings-bucket/decks/q3.pdf"}, InvalidInput, "must be a .pptx"),
        ({"slides": 0}, InvalidInput, "1 to 60 slides"),
        ({"out": "s3://no-such-bucket-here/d.pptx"}, InvalidInput, "bucket no-such-bucket-here does not exist"),
        ({"sources": ["s3://meetings-bucket/missing.pdf"]}, ObjectNotFound, "missing.pdf"),
        ({"sources": ["s3://meetings-bucket/src/photo.png"]}, UnsupportedInput, "neither a PDF nor a text file"),
        ({"sources": ["s3://meetings-bucket/src/scan.pdf"]}, UnsupportedInput, "no text layer"),
    ],
)
def test_bad_requests_are_named_and_write_nothing(local_env, kwargs, error, words):
    from test_pdf_summary_inputs import image_only

    local_env.put("src/photo.png", b"\x89PNG\r\n\x1a\n not text")
    local_env.put("src/scan.pdf", image_only())
    arguments = {"request": "Q3 review", "out": f"s3://{local_env.bucket}/decks/bad.pptx", **kwargs}
    with pytest.raises(error, match=words):
        docs.outline(arguments.pop("request"), **arguments)
    assert local_env.all_annotations() == []
    assert [o.key for o in local_env.store.list_objects(local_env.bucket)] == ["src/photo.png", "src/scan.pdf"]


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice (soffice) is not installed")
def test_the_deck_opens_in_libreoffice_with_the_same_text(tmp_path):
    from marginalia.engines.offline import OfflineEngine
    from marginalia.nodes.outline import deck_bytes

    outline = OfflineEngine().draft_outline(SAMPLE_REQUEST.read_text(), slides=6, sources=[])
    source = tmp_path / "deck.pptx"
    source.write_bytes(deck_bytes(outline))
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            "soffice",
            "--headless",
            "--norestore",
            f"-env:UserInstallation=file://{tmp_path}/lo-profile",
            "--convert-to",
            "odp",
            "--outdir",
            str(out),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and (out / "deck.odp").is_file(), proc.stderr
    # back to .pptx through LibreOffice's own filter, then read with python-pptx
    again = subprocess.run(
        [
            "soffice",
            "--headless",
            "--norestore",
            f"-env:UserInstallation=file://{tmp_path}/lo-profile",
            "--convert-to",
            "pptx",
            "--outdir",
            str(tmp_path / "back"),
            str(out / "deck.odp"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    seen = read_pptx(tmp_path / "back" / "deck.pptx")
    assert seen.title == outline.title
    assert [(s.title, s.bullets) for s in seen.slides] == [(s.title, s.bullets) for s in outline.slides]
    assert [s.notes for s in seen.slides] == [s.notes for s in outline.slides]


def test_llm_path_with_a_scripted_chat_model(local_env):
    from marginalia.engines.chat import ChatModelEngine
    from marginalia.testing.chat_models import ScriptedChatModel

    draft = Outline(
        title="Q3 costs",
        slides=[
            Slide(title="Why we overspent", bullets=["EKS idle nodes"], notes="n1"),
            Slide(title="What we change", bullets=["Graviton", "Log lifecycle"]),
        ],
    )
    revised = draft.model_copy(update={"slides": draft.slides + [Slide(title="Owners", bullets=["Dev: Savings Plan"])]})
    model = ScriptedChatModel(replies=[draft, revised])
    engine = ChatModelEngine(model)
    source = local_env.put("src/q3.pdf", sample_report_bytes())
    docs.summarize(source)  # offline summary annotation: what the model is shown

    key = "decks/llm.pptx"
    waiting = docs.outline(
        "Q3 cost review for finance", slides=3, out=f"s3://{local_env.bucket}/{key}", sources=[source], engine=engine
    )
    assert waiting.proposal["title"] == "Q3 costs" and waiting.proposal["slide_count"] == 2
    prompt = model.calls[0].human + model.calls[0].system
    assert "Q3 cost review for finance" in prompt and "Q3 Platform Cost Review" in prompt

    again = api.resume(waiting.thread_id, action="reject", feedback="Add a slide on owners.", engine=engine)
    assert [s["title"] for s in again.proposal["slides"]][-1] == "Owners"
    assert "Add a slide on owners." in model.calls[1].human + model.calls[1].system
    api.resume(waiting.thread_id, action="approve", engine=engine)
    assert [s.title for s in deck(local_env, key)[0].slides] == ["Why we overspent", "What we change", "Owners"]
    context = local_env.annotation(key, "generation_context")
    assert context["engine"] == engine.name and context["model"] == engine.model and len(model.calls) == 2


def test_cli_outline_then_approve(local_env, tmp_path):
    from typer.testing import CliRunner

    from marginalia.cli import app

    request = tmp_path / "request.txt"
    request.write_text(SAMPLE_REQUEST.read_text())
    pdf = local_env.put("src/q3.pdf", sample_report_bytes())
    out = f"s3://{local_env.bucket}/decks/cli.pptx"
    runner = CliRunner()
    started = runner.invoke(app, ["outline", f"@{request}", "--slides", "4", "--out", out, "--source", pdf])
    assert started.exit_code == 0, started.output
    assert "Waiting for approval" in started.output and "1. " in started.output
    thread_id = next(
        line.split("approve ", 1)[1].split()[0] for line in started.output.splitlines() if "marginalia approve" in line
    )
    approved = runner.invoke(app, ["approve", thread_id])
    said = " ".join(approved.output.split())
    assert approved.exit_code == 0 and f"wrote outline on {out}" in said
    assert deck(local_env, "decks/cli.pptx")[0].slide_count == 4

    bad = runner.invoke(app, ["outline", "@/no/such/file.txt", "--out", out])
    assert bad.exit_code != 0 and "request file /no/such/file.txt does not exist" in str(bad.exception)


def test_demo_summarises_the_sample_and_grounds_the_deck_in_its_summary(local_env):
    from typer.testing import CliRunner

    from marginalia.cli import app
    from marginalia.cli.document_cmds import DEMO_DECK_KEY, DEMO_PDF_KEY

    for _ in range(2):  # runs again over its own results
        result = CliRunner().invoke(app, ["demo"])
        assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"marginalia annotations s3://demo/{DEMO_PDF_KEY}" in said
    assert f"marginalia get s3://demo/{DEMO_DECK_KEY}" in said
    store = local_env.store
    summary = store.get_annotation("demo", DEMO_PDF_KEY, "summary").json()
    context = store.get_annotation("demo", DEMO_DECK_KEY, "generation_context").json()
    assert [(s["uri"], s["origin"]) for s in context["sources"]] == [(f"s3://demo/{DEMO_PDF_KEY}", "annotation")]
    assert summary["title"] == "Q3 Platform Cost Review"
    assert [s["title"] for s in summary["sections"]][:2] == ["1 Introduction", "2 EKS compute costs"]
    data, _ = store.get_object("demo", DEMO_DECK_KEY)
    deck = read_pptx(io.BytesIO(data))
    assert deck.slide_count == 10
    outline = store.get_annotation("demo", DEMO_DECK_KEY, "outline").json()["outline"]
    placeholder = re.compile(r"\bpart \d+\b|key facts about|how .* relates to|main takeaway$", re.I)
    for slide, written in zip(deck.slides, outline["slides"], strict=True):  # no placeholder slide
        assert not placeholder.search(slide.title) and not any(placeholder.search(b) for b in slide.bullets)
        assert written["thin"] == (len(written["bullets"]) < 2)  # thin slides stay flagged in the record
