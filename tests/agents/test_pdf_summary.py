"""The PDF summariser end to end on real PDFs, on the local store and the S3 test server.

Every PDF goes: ingest -> plan -> map over page chunks -> merge -> approval interrupt (the
process returns) -> approve in a NEW process -> the ``summary`` annotation with provenance.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pypdf import PdfReader

import marginalia.api as api
from marginalia import api_documents as docs
from marginalia import runtime
from marginalia.errors import ObjectChanged
from marginalia.samples.make_sample_pdf import sample_report_bytes, text_pdf
from marginalia.schemas import DocumentSummary, Entity, KeyPoint
from marginalia.testing.fixtures import SHARED_FIXTURES
from marginalia.tracing import trace_id_for

REPO_PDFS = Path(__file__).resolve().parents[1] / "fixtures" / "pdfs"
SHARED_PDFS = SHARED_FIXTURES / "pdfs"


def fixture_pdfs() -> list[Path]:
    """Every PDF of ``tests/fixtures/pdfs`` and, on dev machines, of the shared fixtures (``marginalia.testing.fixtures.shared_fixtures()``: ``../shared/fixtures`` or ``$MARGINALIA_SHARED_FIXTURES``; by name, once)."""
    found: dict[str, Path] = {}
    for root in (REPO_PDFS, SHARED_PDFS):
        if root.is_dir():
            for path in sorted(root.glob("*.pdf")):
                found.setdefault(path.name, path)
    return list(found.values())


def references() -> dict[str, dict]:
    refs: dict[str, dict] = {}
    for root in (SHARED_PDFS, REPO_PDFS):
        if (root / "references.json").is_file():
            refs.update({r["file"]: r for r in json.loads((root / "references.json").read_text())})
    return refs


def content_words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z]{4,}", (text or "").lower())}


RESUME_ALL = """
import json, sys, marginalia.api as api
out = {}
for tid in sys.argv[1:]:
    r = api.resume(tid, action="approve", reviewer="subprocess")
    out[tid] = {"status": r.status, "annotations": [a.name for a in r.annotations], "iterations": r.iterations}
print(json.dumps(out))
"""


def test_every_pdf_waits_for_review_then_a_new_process_approves(agent_env):
    pdfs = fixture_pdfs()
    assert len(pdfs) >= 2, "the CC BY fixture PDFs are missing from tests/fixtures/pdfs"
    refs = references()
    started = {}
    for path in pdfs:
        key = f"reports/{path.name}"
        uri = agent_env.put(key, path)
        result = docs.summarize(uri, review=True)

        assert result.status == "waiting" and result.annotations == ()
        summary = DocumentSummary.model_validate(result.proposal)
        pages = len(PdfReader(path).pages)
        assert summary.page_count == pages and summary.status == "ok"
        assert summary.title and summary.summary.strip() and summary.key_points and summary.keywords
        assert summary.sections and all(1 <= p <= pages for s in summary.sections for p in s.pages)  # from layout
        assert json.dumps(result.proposal, ensure_ascii=False).encode("utf-8")  # valid UTF-8 all through
        cited = [p for k in summary.key_points for p in k.pages] + [p for e in summary.entities for p in e.pages]
        assert cited and all(1 <= p <= pages for p in cited), f"{path.name}: pages outside the document"
        ref = refs.get(path.name)
        if ref:
            assert ref["pages"] == pages
            overlap = content_words(ref["reference_summary"]) & content_words(summary.summary)
            assert len(overlap) >= 0.3 * len(content_words(ref["reference_summary"])), path.name
        assert agent_env.annotation_names(key) == []  # nothing written before approval
        started[result.thread_id] = (key, result)

    out = agent_env.python(RESUME_ALL, *started)

    for thread_id, (key, waiting) in started.items():
        assert out[thread_id] == {"status": "done", "annotations": ["summary"], "iterations": 1}
        stored = agent_env.annotation(key, "summary")
        prov = stored.pop("provenance")
        assert stored == waiting.proposal  # what was approved is what is stored
        assert prov["thread_id"] == thread_id and prov["trace_id"] == trace_id_for(thread_id)
        assert prov["agent"] == "pdf_summary" and prov["engine"] == "offline"
        assert prov["source_etag"] == agent_env.store.head_object(agent_env.bucket, key).etag
        assert agent_env.index().get(thread_id).status == "done"


LAST_PAGE_MARK = "Escalations go to zanzibar-desk@example.org before the audit closes."


def long_report(pages: int) -> bytes:
    """A report of ``pages`` pages, each on its own subject, a unique e-mail on the last page."""
    subjects = [
        "storage tiering",
        "cluster autoscaling",
        "reserved capacity",
        "network egress",
        "database licences",
        "log retention",
        "build minutes",
        "GPU reservations",
    ]
    body = []
    for n in range(1, pages + 1):
        subject = subjects[n % len(subjects)]
        text = (
            f"Section {n} reviews {subject} for business unit {n}. The {subject} spend of unit {n} rose by {n * 3}% "
            f"because workloads grew faster than planned. The team proposes to cut {subject} costs of unit {n} "
            f"by {10 + n % 9}% next quarter through better scheduling and clearer ownership."
        )
        # a running footer: dropped before ranking, so only stored page text could carry its token
        blocks = [
            ("heading", f"{n} {subject.title()} in unit {n}"),
            ("body", text),
            ("small", f"Page {n} of {pages} - ref QZXW{n}K"),
        ]
        if n == pages:
            blocks.append(("body", LAST_PAGE_MARK))
        body.append(blocks)
    body[0].insert(0, ("title", "Annual Platform Cost Report"))
    return text_pdf(body, title="Annual Platform Cost Report", authors=["Ana Ruiz"])


def test_long_document_is_map_reduced_over_page_chunks_never_truncated(local_env):
    from marginalia.runtime import state_location

    key = "long/annual.pdf"
    uri = local_env.put(key, long_report(48))
    chunks = []
    result = docs.summarize(
        uri, chunk_pages=6, on_update=lambda node, _: chunks.append(node) if node == "summarize_chunk" else None
    )
    assert result.status == "done" and chunks.count("summarize_chunk") == 8
    summary = local_env.annotation(key, "summary")
    assert summary["page_count"] == 48 and summary["title"] == "Annual Platform Cost Report"
    # the last chunk was read: its unique e-mail is an entity found on page 48
    assert {"text": "zanzibar-desk@example.org", "type": "EMAIL", "pages": [48]} in summary["entities"]
    assert max(p for k in summary["key_points"] for p in k["pages"]) > 42
    # page text never reaches the checkpoints: they hold page ranges and chunk summaries only
    state = state_location(local_env.store)
    for obj in local_env.store.list_objects(state.bucket, state.key):
        data, _ = local_env.store.get_object(state.bucket, obj.key)
        assert b"QZXW" not in data, obj.key


def test_page_ranges_stream_with_bounded_memory(local_store):
    """Pages are read one at a time: memory grows by pypdf's per-page bookkeeping only.

    pypdf keeps every page's dictionary once the page tree is read; the text and the parsed
    content stream of a page are dropped after it is read. Measured: ~12 KiB a page here, so a
    10,000-page PDF stays under ~160 MiB whatever its text.
    """
    import io
    import tracemalloc

    from marginalia.nodes.pdf import iter_page_range

    def peak(pages: int, _label: str) -> int:
        data = long_report(pages)
        tracemalloc.start()
        count = sum(1 for _ in iter_page_range(io.BytesIO(data), 1, pages, password=None, name="big.pdf"))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert count == pages
        return top - len(data)

    small, large = peak(20, "small"), peak(120, "large")
    assert (large - small) / 100 < 16 * 1024, "more than 16 KiB kept per page"


def test_reject_with_feedback_then_edit_keeps_every_iteration(local_env):
    key = "review/q3.pdf"
    uri = local_env.put(key, sample_report_bytes())
    first = docs.summarize(uri, review=True)
    second = api.resume(first.thread_id, action="reject", feedback="Make it shorter.")
    assert second.status == "waiting" and second.iterations == 1
    assert len(second.proposal["summary"].split()) < len(first.proposal["summary"].split())
    assert local_env.annotation_names(key) == []

    patch = [
        {"op": "replace", "path": "/title", "value": "Q3 review (edited)"},
        {"op": "add", "path": "/keywords/-", "value": "finops"},
    ]
    done = api.resume(first.thread_id, action="edit", patch=patch, reviewer="maria")
    assert done.status == "done" and done.iterations == 2
    stored = local_env.annotation(key, "summary")
    assert stored["title"] == "Q3 review (edited)" and stored["keywords"][-1] == "finops"
    assert stored["summary"] == second.proposal["summary"]

    from marginalia.graph.pdf_summary import build_pdf_summary_graph

    graph = build_pdf_summary_graph(
        checkpointer=runtime.open_checkpointer(local_env.store, runtime.state_location(local_env.store))
    )
    iterations = graph.get_state({"configurable": {"thread_id": first.thread_id}}).values["iterations"]
    assert [i["action"] for i in iterations] == ["reject", "edit"]
    assert iterations[0]["proposal"] == first.proposal and iterations[0]["feedback"] == "Make it shorter."
    assert iterations[1]["reviewer"] == "maria"


def test_reject_without_feedback_writes_nothing(local_env):
    key = "discard/q3.pdf"
    first = docs.summarize(local_env.put(key, sample_report_bytes()), review=True)
    result = api.resume(first.thread_id, action="reject")
    assert result.status == "rejected" and result.annotations == ()
    assert local_env.annotation_names(key) == []


def test_pdf_replaced_during_review_writes_nothing(agent_env):
    key = "race/q3.pdf"
    waiting = docs.summarize(agent_env.put(key, sample_report_bytes()), review=True)
    agent_env.put(key, long_report(3))
    with pytest.raises(ObjectChanged, match="nothing was written"):
        api.resume(waiting.thread_id, action="approve")
    assert agent_env.annotation_names(key) == []


def test_cli_summarize_review_then_approve_in_another_process(local_env):
    key = "cli/q3.pdf"
    uri = local_env.put(key, sample_report_bytes())
    started = local_env.run("summarize", uri, "--review", check=True)
    assert "Waiting for approval" in started.stdout and "Q3 Platform Cost Review" in started.stdout
    thread_id = next(
        line.split("approve ", 1)[1].split()[0] for line in started.stdout.splitlines() if "marginalia approve" in line
    )
    assert local_env.annotation_names(key) == []
    approved = local_env.run("approve", thread_id, check=True)
    assert "wrote summary" in approved.stdout
    assert local_env.annotation(key, "summary")["provenance"]["thread_id"] == thread_id

    direct = local_env.run("summarize", local_env.put("cli/again.pdf", sample_report_bytes()), check=True)
    assert "wrote summary" in direct.stdout and "Key points" in direct.stdout


async def test_async_twin_gives_the_same_summary(local_env):
    waiting = await docs.asummarize(local_env.put("async/a.pdf", sample_report_bytes()), review=True)
    sync = docs.summarize(local_env.put("async/b.pdf", sample_report_bytes()), review=True)
    assert waiting.status == "waiting" and waiting.proposal == sync.proposal
    done = await api.aresume(waiting.thread_id, action="approve")
    assert done.status == "done" and local_env.annotation("async/a.pdf", "summary")["title"] == sync.proposal["title"]


def test_llm_path_with_a_scripted_chat_model(local_env):
    from marginalia.engines.chat import ChatModelEngine
    from marginalia.testing.chat_models import ScriptedChatModel

    part1 = DocumentSummary(
        title="Q3 Platform Cost Review",
        authors=["Maria Lopez"],
        summary="Spend rose 18%.",
        key_points=[KeyPoint(text="EKS grew by $41,900", pages=[1, 7])],
        entities=[Entity(text="Amazon EKS", type="ORG", pages=[1])],
        keywords=["eks"],
    )
    part2 = DocumentSummary(summary="Actions have owners.", key_points=[KeyPoint(text="Dev owns Graviton", pages=[3])])
    merged = DocumentSummary(
        title="Q3 Platform Cost Review",
        authors=["Maria Lopez", "Dev Patel"],
        summary="Spend rose 18%; three actions save $96,500 a quarter.",
        key_points=[KeyPoint(text="EKS grew by $41,900", pages=[1]), KeyPoint(text="Dev owns Graviton", pages=[3])],
        keywords=["eks", "s3"],
    )
    revised = merged.model_copy(update={"summary": "Spend rose 18% (EKS, S3); actions save $96,500 a quarter."})
    model = ScriptedChatModel(replies=[part1, part2, merged, revised])
    engine = ChatModelEngine(model)

    key = "llm/q3.pdf"
    waiting = docs.summarize(local_env.put(key, sample_report_bytes()), engine=engine, review=True, chunk_pages=2)
    assert len(model.calls) == 3  # two chunks (in parallel, either order), then one merge
    chunk_calls = sorted(model.calls[:2], key=lambda c: "=== page 1 ===" not in c.human)
    assert "<document" in chunk_calls[0].human and "=== page 2 ===" in chunk_calls[0].human
    assert "412,380" in chunk_calls[0].human and "=== page 3 ===" not in chunk_calls[0].human
    assert "=== page 3 ===" in chunk_calls[1].human and "=== page 1 ===" not in chunk_calls[1].human
    assert "Dev owns Graviton" in model.calls[2].human and "EKS grew by $41,900" in model.calls[2].human
    assert waiting.proposal["summary"] == merged.summary and waiting.proposal["page_count"] == 3
    assert all(p <= 3 for k in waiting.proposal["key_points"] for p in k["pages"])  # page 7 was made up: dropped

    again = api.resume(waiting.thread_id, action="reject", feedback="Name the services.", engine=engine)
    assert again.proposal["summary"] == revised.summary and "Name the services." in model.calls[3].human
    api.resume(waiting.thread_id, action="approve", engine=engine)
    prov = local_env.annotation(key, "summary")["provenance"]
    assert prov["engine"] == engine.name and prov["model"] == engine.model
