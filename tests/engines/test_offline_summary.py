"""The offline engine's summaries, on real papers and the project's sample report."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from marginalia.engines import text as nlp
from marginalia.engines.offline_summary import (
    SUMMARY_WORDS,
    detect_language,
    merge_summaries,
    revise_summary,
    summarize_pages,
)
from marginalia.testing.fixtures import SHARED_FIXTURES
from marginalia.tools.pdf import abstract_text, pdf_info, read_pages, remove_abstract

FIXTURES = Path(__file__).parents[1] / "fixtures"
SHARED = SHARED_FIXTURES / "pdfs"


def _flat(text: str) -> str:
    return " ".join(text.split())


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
@pytest.mark.parametrize(
    "name", ["science-parse__dyer12.pdf", "science-parse__roark13.pdf", "science-parse__P14-1059.pdf"]
)
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
    german = (
        "Der Ausschuss hat beschlossen, dass das Budget für das nächste Quartal von der Finanzabteilung geprüft wird."
    )
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


def test_without_abstract_summary_comes_from_introduction_and_conclusion_not_boilerplate():
    """example2 (BMC) ends with authors' contributions, acknowledgements and a licence: none of it
    may reach the summary; its sentences come from the Background, Discussion and Conclusions."""
    pages = remove_abstract(read_pages(FIXTURES / "pdfs" / "CERMINE__example2.pdf"))
    summary = summarize_pages(pages)
    assert summary.abstract is None and nlp.word_count(summary.summary) <= SUMMARY_WORDS
    text = summary.summary + " ".join(k.text for k in summary.key_points)
    for boilerplate in ("read and approved", "Creative Commons", "properly cited", "We thank", "competing"):
        assert boilerplate.lower() not in text.lower()
    lines = "\n".join(t for _, t in pages)
    methods, discussion = lines.index("\nMethods\n"), lines.index("\nDiscussion\n")
    body = " ".join(lines.split())
    methods, discussion = len(" ".join(lines[:methods].split())), len(" ".join(lines[:discussion].split()))
    for sentence in nlp.split_sentences(summary.summary):
        at = body.find(" ".join(sentence.split())[:60])
        assert at != -1 and (at < methods or at > discussion), sentence  # not Methods or Results
