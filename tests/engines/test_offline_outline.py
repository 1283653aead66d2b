"""The offline engine's slide outlines, on the project's sample request and a SciDuet deck."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from marginalia.engines.offline_outline import draft_outline, is_fragment_title, parse_slide_count, request_context
from marginalia.errors import InvalidInput
from marginalia.samples import make_sample_pdf
from marginalia.schemas import Section, SourceContext

FIXTURES = Path(__file__).parents[1] / "fixtures"

REQUEST = (Path(make_sample_pdf.__file__).with_name("outline_request.txt")).read_text()


@pytest.fixture(scope="module")
def sample_source(sample_summary):
    """The sample report's summary as the outliner sees it, sections from the PDF's layout."""
    from marginalia.nodes.outline import context_from_summary
    from marginalia.tools.pdf import headings, sections

    found = sections(headings(make_sample_pdf.__file__.replace("make_sample_pdf.py", "sample_report.pdf")), 3)
    summary = sample_summary.model_copy(update={"sections": [Section.model_validate(s) for s in found]})
    return context_from_summary("s3://reports/q3-cost-review.pdf", summary.model_dump(mode="json"))


def _source_text(source: SourceContext) -> str:
    return " ".join([source.summary or "", *source.key_points, *(p for s in source.sections for p in s.points)])


def _assert_no_filler(outline, sources):
    """Every bullet is a sentence (or clause) of a source; no "part N" title; thin slides flagged."""
    text = " ".join(" ".join(_source_text(s) for s in sources).split())
    for slide in outline.slides:
        assert not re.search(r"\bpart \d+\b", slide.title, re.I), slide.title
        assert all(" ".join(b.split()) in text for b in slide.bullets), slide
        assert slide.thin == (len(slide.bullets) < 2)


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
    titles = [s.title for s in outline.slides]
    sections = ["Introduction", "EKS compute costs", "S3 storage costs", "Recommendations and owners", "Conclusion"]
    assert [t for t in titles if t in sections] == sections  # the report's own sections, in order
    assert titles[-1] == "Conclusion" and not any(is_fragment_title(t) for t in titles)
    assert all(s.title and s.notes for s in outline.slides)
    _assert_no_filler(outline, [sample_source])
    eks = outline.slides[titles.index("EKS compute costs")]
    assert any("EKS" in b or "cluster" in b for b in eks.bullets)
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


def test_outline_without_sources_is_thin_never_filler():
    outline = draft_outline('Make 6 slides about "Onboarding new engineers"', slides=None, sources=[])
    assert outline.title == "Onboarding new engineers" and len(outline.slides) == 6
    assert all(s.thin and not s.bullets and "say little" in s.notes for s in outline.slides)
    assert len({s.title for s in outline.slides}) == 6 and not any(is_fragment_title(s.title) for s in outline.slides)


def test_context_in_the_request_is_used_like_a_source():
    case = json.loads((FIXTURES / "outlines" / "sciduet_1204.json").read_text())
    context = request_context(case["prompt_with_context"])
    assert context is not None and "new NLI test set" in context.summary
    outline = draft_outline(case["prompt_with_context"], slides=None, sources=[])
    bullets = [b for s in outline.slides for b in s.bullets]
    request = " ".join(case["prompt_with_context"].split())
    assert len(bullets) >= 5 and all(" ".join(b.split()) in request for b in bullets)
    _assert_no_filler(outline, [context])
    assert request_context(case["prompt"]) is None  # the bare request has no material


@pytest.mark.parametrize(
    ("title", "fragment"),
    [("Express a negative", True), ("Paper introduces", True), ("Neural NLI models", False), ("Results", False)],
)
def test_fragment_titles(title, fragment):
    assert is_fragment_title(title) is fragment


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
    assert all("Karpenter" in b for b in added.bullets)  # what the sources say on it, or nothing:
    assert added.thin == (len(added.bullets) < 2) and (added.bullets or "say little" in added.notes)
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
