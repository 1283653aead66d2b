"""A realistic local store for the search tests: recordings, PDFs and what the agents would write.

The agents are not run here; their outputs are built from the shared pydantic schemas (the same
contract the agents use) and written through the real :class:`LocalStore` API, so the catalogue's
``annotation`` and ``journal`` tables are filled exactly as in production.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from marginalia.schemas import (
    ActionItem,
    Decision,
    DocumentSummary,
    KeyPoint,
    Minutes,
    Segment,
    Transcript,
)
from marginalia.storage.local import LocalStore

BUCKET = "team-meetings.2026"  # '-' and '.' both appear: namespace b_team_meetings_2026
OTHER = "archive-bucket"


def _transcript(*lines: tuple[str, str]) -> dict:
    segments = [Segment(id=i, speaker=s, start=i * 10.0, end=i * 10.0 + 9, text=t) for i, (s, t) in enumerate(lines)]
    return Transcript(
        language="en", speakers=sorted({s for s, _ in lines}), segments=segments, source_format="vtt"
    ).model_dump()


def _minutes(date, title, topics, owners_tasks, summary, attendees=("Alice", "Bob", "Chen")) -> dict:
    return Minutes(
        date=date,
        title=title,
        attendees=list(attendees),
        topics=list(topics),
        decisions=[Decision(text=f"Go ahead with {topics[0]}", evidence=[1])],
        action_items=[ActionItem(owner=o, task=t, due="2026-07-01", evidence=[2]) for o, t in owners_tasks],
        summary=summary,
    ).model_dump()


def _summary(title, summary, pages, keywords) -> dict:
    return DocumentSummary(
        title=title, authors=["R. Writer"], summary=summary, page_count=pages, keywords=list(keywords),
        key_points=[KeyPoint(text=summary.split(".")[0], pages=[1])], language="en",
    ).model_dump()  # fmt: skip


MEETINGS = {
    "meetings/2026-06-10-eks-upgrade.mp4": (
        _transcript(
            ("Alice", "We upgrade EKS to 1.31 next week."),
            ("Bob", "Node groups first."),
            ("Alice", "I'll write the runbook."),
        ),
        _minutes(
            "2026-06-10",
            "EKS upgrade planning",
            ["EKS upgrade", "node groups"],
            [("Alice", "Write the EKS upgrade runbook"), ("Bob", "Drain the old node groups")],
            "The team planned the EKS 1.31 upgrade.",
        ),
    ),
    "meetings/2026-06-01-eks-kickoff.mp4": (
        _transcript(
            ("Chen", "Kick-off for the EKS migration."), ("Alice", "Budget is approved."), ("Chen", "Start in June.")
        ),
        _minutes(
            "2026-06-01",
            "EKS migration kick-off",
            ["EKS migration"],
            [("Chen", "Book the migration window")],
            "Kick-off of the EKS migration.",
        ),
    ),
    "meetings/2026-06-12-budget.mp4": (
        _transcript(
            ("Bob", "Budget review for Q3."), ("Chen", "Cloud costs went up."), ("Bob", "Alice owns the forecast.")
        ),
        _minutes(
            "2026-06-12",
            "Q3 budget review",
            ["budget", "cloud costs"],
            [("Alice Martin", "Update the Q3 forecast"), ("Bob", "Send the cost report")],
            "Budget review; cloud costs rose.",
        ),
    ),
    "meetings/2026-06-15-standup.mp4": (
        _transcript(("Alice", "Stand-up: EKS nodes are healthy."), ("Bob", "No blockers.")),
        None,  # transcribed, not yet minuted
    ),
}

PDFS = {
    "reports/q2-results.pdf": _summary("Q2 results", "Revenue grew 12%. EKS costs fell.", 14, ["revenue", "EKS"]),
    "reports/architecture.pdf": None,  # not summarised yet
    "reports/2025/annual.pdf": None,
    "reports/notes.txt": None,  # not a PDF
    "papers/attention.pdf": _summary("Attention", "A transformer paper.", 11, ["attention"]),
}


def build_corpus(root: Path) -> LocalStore:
    store = LocalStore(root)
    store.create_bucket(BUCKET)
    store.create_bucket(OTHER, versioned=True)
    for key, (transcript, minutes) in MEETINGS.items():
        store.put_object(BUCKET, key, b"\x00\x00\x00 ftypmp42 fake video", content_type="video/mp4")
        store.put_json_annotation(BUCKET, key, "transcript", transcript)
        if minutes:
            store.put_json_annotation(BUCKET, key, "meeting_minutes", minutes)
    for key, summary in PDFS.items():
        store.put_object(BUCKET, key, b"%PDF-1.7 fake", content_type="application/pdf")
        if summary:
            store.put_json_annotation(BUCKET, key, "summary", summary)
    # plain-text and other JSON annotations in the same table (R18.1: must not break JSON filters)
    store.put_annotation(BUCKET, "reports/notes.txt", "note", "EKS is mentioned here in plain text, date 2026-06-30")
    store.put_annotation(BUCKET, "reports/notes.txt", "meeting_minutes", "draft: EKS notes, not JSON")
    store.put_json_annotation(
        BUCKET, "meetings/2026-06-10-eks-upgrade.mp4", "mediainfo", {"audio_tracks": 10, "codec": "aac"}
    )
    store.put_json_annotation(
        BUCKET, "meetings/2026-06-12-budget.mp4", "mediainfo", {"audio_tracks": 2, "codec": "aac"}
    )
    store.put_json_annotation(BUCKET, "reports/q2-results.pdf", "pipeline_status", {"status": "FAILED", "stage": "ocr"})
    store.put_json_annotation(BUCKET, "papers/attention.pdf", "pipeline_status", {"status": "OK"})
    # another bucket with a matching meeting: only unscoped queries may see it
    store.put_object(OTHER, "2026/eks-retro.mp4", b"video")
    store.put_json_annotation(OTHER, "2026/eks-retro.mp4", "transcript", _transcript(("Dana", "EKS retro.")))
    store.put_json_annotation(
        OTHER, "2026/eks-retro.mp4", "meeting_minutes",
        _minutes("2026-06-20", "EKS retro", ["EKS"], [("Dana", "Write the retro")], "Retro of the EKS upgrade.", ("Dana",)),
    )  # fmt: skip
    return store


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> LocalStore:
    store = build_corpus(tmp_path_factory.mktemp("corpus"))
    yield store
    store.close()


@pytest.fixture(scope="session")
def corpus_builder():
    """:func:`build_corpus`, for a test that needs its own copy of the corpus to change (a test
    module cannot import it: ``from conftest import`` finds whichever folder's conftest came first)."""
    return build_corpus


@pytest.fixture(scope="module")
def searcher(corpus):
    from marginalia.search.local import LocalSearch

    with LocalSearch(corpus) as s:
        yield s
