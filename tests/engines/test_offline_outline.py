"""The offline engine's slide outlines, on the project's sample request and a SciDuet deck."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from marginalia.engines.offline_outline import draft_outline, parse_slide_count
from marginalia.errors import InvalidInput
from marginalia.samples import make_sample_pdf
from marginalia.schemas import SourceContext

FIXTURES = Path(__file__).parents[1] / "fixtures"

REQUEST = (Path(make_sample_pdf.__file__).with_name("outline_request.txt")).read_text()


@pytest.fixture(scope="module")
def sample_source(sample_summary):
    return SourceContext(
        uri="s3://reports/q3-cost-review.pdf",
        kind="summary",
        title=sample_summary.title,
        summary=sample_summary.summary,
        key_points=[k.text for k in sample_summary.key_points],
        keywords=sample_summary.keywords,
    )


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("Make a 10-slide deck", 10),
        ("deck --slides 7 please", 7),
        ("twelve slides on X", 12),
        ("slides: 5", 5),
        ("a 12 slide talk", 12),
        ("a talk on X", None),
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
    assert grounded and all(
        any(b in kp or b in sample_source.summary for kp in sample_source.key_points) for b in grounded
    )
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
        REQUEST,
        slides=None,
        sources=[sample_source],
        previous=first,
        feedback="Add a slide on Karpenter right-sizing. Fewer bullets.",
    )
    assert revised != first and len(revised.slides) == len(first.slides) + 1
    added = next(s for s in revised.slides if s.title == "Karpenter right-sizing")
    assert any("Karpenter" in b for b in added.bullets)
    assert max(len(s.bullets) for s in revised.slides) <= 2
    assert revised.slides[-1].title == first.slides[-1].title  # added before the conclusion


def test_outline_feedback_rename_and_count(sample_source):
    first = draft_outline(REQUEST, slides=None, sources=[sample_source])
    renamed = draft_outline(
        REQUEST, slides=None, sources=[sample_source], previous=first, feedback='Rename title to "Cutting cloud spend".'
    )
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
