"""The offline engine's summaries and outlines, on real papers and the project's sample report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from marginalia.testing.fixtures import SHARED_FIXTURES
from marginalia.engines import text as nlp
from marginalia.engines.offline_documents import (
    SUMMARY_WORDS,
    detect_language,
    draft_outline,
    merge_summaries,
    parse_slide_count,
    revise_summary,
    summarize_pages,
)
from marginalia.errors import InvalidInput
from marginalia.samples import make_sample_pdf
from marginalia.schemas import SourceContext
from marginalia.tools.pdf import abstract_text, pdf_info, read_pages, remove_abstract

FIXTURES = Path(__file__).parents[1] / "fixtures"
SHARED = SHARED_FIXTURES / "pdfs"
SAMPLE = Path(make_sample_pdf.__file__).with_name("sample_report.pdf")
REQUEST = (Path(make_sample_pdf.__file__).with_name("outline_request.txt")).read_text()


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture(scope="module")
def sample_pages():
    return read_pages(SAMPLE)


@pytest.fixture(scope="module")
def sample_summary(sample_pages):
    return summarize_pages(sample_pages, info=pdf_info(SAMPLE))


@pytest.fixture(scope="module")
def sample_source(sample_summary):
    return SourceContext(
        uri="s3://reports/q3-cost-review.pdf", kind="summary", title=sample_summary.title,
        summary=sample_summary.summary, key_points=[k.text for k in sample_summary.key_points],
        keywords=sample_summary.keywords,
    )


def _assert_grounded(summary, pages):
    """Every key point is a sentence of the page it cites; every entity is on its pages."""
    by_number = {n: _flat(t) for n, t in pages}
    assert summary.key_points
    for point in summary.key_points:
        assert point.pages and all(p in by_number for p in point.pages)
        assert any(_flat(point.text) in by_number[p] or point.text in (summary.abstract or "") for p in point.pages)
    assert summary.entities
    for entity in summary.entities:
        assert entity.pages and all(p in by_number for p in entity.pages)
        if entity.type == "DATE":  # normalised to ISO
            continue
        # "{simianer,riezler}@cl.uni-heidelberg.de" is expanded: user and domain are on the page
        parts = entity.text.split("@") if entity.type == "EMAIL" else [entity.text]
        assert all(part.lower() in by_number[p].lower() for p in entity.pages for part in parts), entity


# --- summaries -------------------------------------------------------------------------------
def test_sample_summary_uses_its_abstract(sample_pages, sample_summary):
    assert sample_summary.abstract == abstract_text(sample_pages[0][1])
    assert sample_summary.summary == sample_summary.abstract
    assert sample_summary.title == "Q3 Platform Cost Review"
    assert sample_summary.authors == ["Maria Lopez", "Dev Patel"]
    assert sample_summary.page_count == 3 and sample_summary.language == "en" and sample_summary.status == "ok"
    _assert_grounded(sample_summary, sample_pages)


def test_sample_entities(sample_summary):
    found = {(e.type, e.text): e.pages for e in sample_summary.entities}
    assert found[("MONEY", "$412,380")] == [1]
    assert found[("EMAIL", "finops@example.com")] == [1, 3]
    assert found[("DATE", "2025-10-31")] == [2, 3]
    assert found[("ACRONYM", "EKS")] == [1, 2, 3]
    assert ("PERSON", "Dev Patel") in found and ("PERSON", "Maria Lopez") in found
    assert found[("URL", "https://wiki.example.com/platform/cost-review")] == [3]
    assert ("ORG", "Platform Engineering") in found


def test_sample_keywords(sample_summary):
    assert sample_summary.keywords
    joined = " ".join(sample_summary.keywords).lower()
    assert "savings plan" in joined or "eks" in joined


def test_without_abstract_falls_back_to_lexrank(sample_pages):
    pages = remove_abstract(sample_pages)
    summary = summarize_pages(pages)
    assert summary.abstract is None
    assert 0 < nlp.word_count(summary.summary) <= SUMMARY_WORDS
    body = _flat(" ".join(t for _, t in pages))
    for sentence in nlp.split_sentences(summary.summary):
        assert _flat(sentence) in body  # extractive: whole sentences of the document
    _assert_grounded(summary, pages)


def test_no_text_status():
    summary = summarize_pages([(1, ""), (2, "   ")])
    assert summary.status == "no_text" and summary.summary == "" and summary.page_count == 2


REFERENCES = json.loads((FIXTURES / "pdfs" / "references.json").read_text())


@pytest.mark.parametrize("entry", REFERENCES, ids=lambda e: e["file"])
def test_cc_by_paper_summary(entry):
    path = FIXTURES / "pdfs" / entry["file"]
    pages = read_pages(path)
    summary = summarize_pages(pages, info=pdf_info(path))
    assert summary.abstract, "the paper states an abstract"
    reference = set(re.findall(r"[a-z]+", entry["reference_summary"].lower()))
    got = set(re.findall(r"[a-z]+", summary.summary.lower()))
    assert len(reference & got) >= 0.9 * len(reference)
    assert summary.title and len(summary.title.split()) >= 5
    assert len(summary.authors) >= 4
    assert summary.keywords and summary.page_count == entry["pages"]
    _assert_grounded(summary, pages)


@pytest.mark.skipif(not SHARED.is_dir(), reason="non-commercial ACL PDFs only on dev machines")
@pytest.mark.parametrize("name", ["science-parse__dyer12.pdf", "science-parse__roark13.pdf", "science-parse__P14-1059.pdf"])
def test_acl_paper_summary(name):
    pages = read_pages(SHARED / name)
    info = pdf_info(SHARED / name)
    summary = summarize_pages(pages, info=info)
    assert summary.abstract and summary.title == info["title"]
    _assert_grounded(summary, pages)
    stripped = summarize_pages(remove_abstract(pages), info=info)
    assert stripped.abstract is None and stripped.summary


def test_detect_language():
    english = "The committee agreed that the budget for the next quarter should be reviewed by the finance team."
    german = "Der Ausschuss hat beschlossen, dass das Budget für das nächste Quartal von der Finanzabteilung geprüft wird."
    assert detect_language(english * 2) == "en"
    assert detect_language(german * 2) == "de"
    assert detect_language("| 12 | 13 | 14 |" * 20) is None


# --- map-reduce ------------------------------------------------------------------------------
def test_merge_keeps_every_chunk(sample_pages):
    first = summarize_pages(sample_pages[:1])
    rest = summarize_pages(sample_pages[1:], first_page_abstract=False)
    merged = merge_summaries([first, rest], page_count=3)
    assert merged.page_count == 3
    assert merged.summary == first.summary == first.abstract
    assert merged.title == first.title and rest.title is None
    assert {p for k in merged.key_points for p in k.pages} >= {1, 2, 3}
    assert len(merged.key_points) == len({k.text for k in first.key_points + rest.key_points})
    dates = {e.text: e.pages for e in merged.entities if e.type == "DATE"}
    assert dates["2025-10-31"] == [2, 3]


def test_merge_without_abstract_gives_each_chunk_a_voice(sample_pages):
    pages = remove_abstract(sample_pages)
    parts = [summarize_pages(pages[i : i + 1], first_page_abstract=(i == 0)) for i in range(3)]
    merged = merge_summaries(parts, page_count=3)
    for part in parts:
        assert any(_flat(s) in _flat(merged.summary) for s in nlp.split_sentences(part.summary))


# --- revision --------------------------------------------------------------------------------
def test_revise_shorter(sample_summary, sample_pages):
    revised = revise_summary(sample_summary, "Too long, make it shorter.", sample_pages)
    assert nlp.word_count(revised.summary) < nlp.word_count(sample_summary.summary)
    assert len(revised.key_points) < len(sample_summary.key_points)


def test_revise_focus(sample_summary, sample_pages):
    revised = revise_summary(sample_summary, "Please focus on Karpenter.", sample_pages)
    assert "Karpenter" not in sample_summary.summary and "Karpenter" in revised.summary
    assert any("Karpenter" in k.text for k in revised.key_points)


def test_revise_title_and_removal(sample_summary, sample_pages):
    revised = revise_summary(sample_summary, 'Title should be "Cloud spend, Q3 2025". Remove Graviton.', sample_pages)
    assert revised.title == "Cloud spend, Q3 2025"
    assert "Graviton" not in revised.summary
    assert all("Graviton" not in k.text for k in revised.key_points)


def test_revise_always_changes(sample_summary, sample_pages):
    revised = revise_summary(sample_summary, "zzqx", sample_pages)
    assert revised != sample_summary
    assert revise_summary(sample_summary, "zzqx", sample_pages) == revised  # deterministic


# --- outlines --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Make a 10-slide deck", 10), ("deck --slides 7 please", 7), ("twelve slides on X", 12),
        ("slides: 5", 5), ("a 12 slide talk", 12), ("a talk on X", None),
    ],
)
def test_parse_slide_count(text, count):
    assert parse_slide_count(text) == count


def test_outline_from_sample_request(sample_source):
    outline = draft_outline(REQUEST, slides=None, sources=[sample_source])
    assert outline.slide_count == len(outline.slides) == 10
    assert outline.title.lower().startswith("q3 platform cost review")
    assert outline.slides[0].title == "Agenda" and outline.slides[-1].title == "Conclusion and next steps"
    assert all(s.title and s.bullets and s.notes for s in outline.slides)
    grounded = [b for s in outline.slides[1:] for b in s.bullets if "$" in b]
    assert grounded and all(any(b in kp or b in sample_source.summary for kp in sample_source.key_points) for b in grounded)
    assert draft_outline(REQUEST, slides=None, sources=[sample_source]) == outline  # deterministic


@pytest.mark.parametrize("count", [1, 2, 3, 5, 6, 9, 15])
def test_outline_honours_slide_count(count, sample_source):
    outline = draft_outline("A 4-slide talk on cloud costs", slides=count, sources=[sample_source])
    assert len(outline.slides) == outline.slide_count == count
    assert len({s.title for s in outline.slides}) == count


def test_outline_without_sources():
    outline = draft_outline('Make 6 slides about "Onboarding new engineers"', slides=None, sources=[])
    assert outline.title == "Onboarding new engineers" and len(outline.slides) == 6
    assert all(s.bullets for s in outline.slides)


def test_outline_refuses_impossible_counts(sample_source):
    with pytest.raises(InvalidInput, match="1 to"):
        draft_outline("x", slides=0, sources=[sample_source])
    with pytest.raises(InvalidInput):
        draft_outline("a 500-slide deck", slides=None, sources=[sample_source])


def test_outline_feedback_add_slide_and_fewer_bullets(sample_source):
    first = draft_outline(REQUEST, slides=None, sources=[sample_source])
    revised = draft_outline(
        REQUEST, slides=None, sources=[sample_source], previous=first,
        feedback="Add a slide on Karpenter right-sizing. Fewer bullets.",
    )
    assert revised != first and len(revised.slides) == len(first.slides) + 1
    added = next(s for s in revised.slides if s.title == "Karpenter right-sizing")
    assert any("Karpenter" in b for b in added.bullets)
    assert max(len(s.bullets) for s in revised.slides) <= 2
    assert revised.slides[-1].title == first.slides[-1].title  # added before the conclusion


def test_outline_feedback_rename_and_count(sample_source):
    first = draft_outline(REQUEST, slides=None, sources=[sample_source])
    renamed = draft_outline(REQUEST, slides=None, sources=[sample_source], previous=first,
                            feedback='Rename title to "Cutting cloud spend".')
    assert renamed.title == "Cutting cloud spend" and renamed.slides == first.slides
    shorter = draft_outline(REQUEST, slides=None, sources=[sample_source], previous=first, feedback="Make it 6 slides.")
    assert len(shorter.slides) == shorter.slide_count == 6


def test_outline_unknown_feedback_still_changes(sample_source):
    first = draft_outline(REQUEST, slides=None, sources=[sample_source])
    revised = draft_outline(REQUEST, slides=None, sources=[sample_source], previous=first, feedback="zzqx")
    assert revised != first


def test_sciduet_request_slide_count():
    case = json.loads((FIXTURES / "outlines" / "sciduet_1204.json").read_text())
    reference = case["reference"] if isinstance(case["reference"], dict) else json.loads(case["reference"])
    outline = draft_outline(case["prompt"], slides=None, sources=[])
    assert len(outline.slides) == reference["slide_count"]
    assert outline.title == "Breaking NLI Systems with Sentences that Require Simple Lexical Inferences"
