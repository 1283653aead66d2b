"""Outlines to .pptx and back: exact round trip, atomic files, clear errors, a real viewer."""

from __future__ import annotations

import io
import shutil
import subprocess
import zipfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marginalia.errors import InvalidInput
from marginalia.schemas import Outline, Slide
from marginalia.tools.pdf import read_pages
from marginalia.tools.slides import preview_text, read_pptx, render_pptx, renderable

OUTLINE = Outline(
    title="Q3 Platform Cost Review",
    topics=["EKS compute", "S3 storage"],
    slides=[
        Slide(title="Agenda", bullets=["Why spend went up", "What we change"], notes="Welcome everyone."),
        Slide(
            title="EKS compute",
            bullets=["Idle node groups cost $27,300", "Savings Plan: $48,200 per quarter"],
            notes="Dev Patel owns the rollout.\nDecision by 31 October 2025.",
        ),
        Slide(title="Next steps", bullets=[], notes=""),
    ],
    slide_count=3,
)


def _round_trip(outline: Outline) -> Outline:
    buffer = io.BytesIO()
    render_pptx(outline, path_or_file=buffer)
    buffer.seek(0)
    return read_pptx(buffer)


def test_round_trip_is_exact():
    assert _round_trip(OUTLINE) == OUTLINE


def test_deck_structure(tmp_path):
    path = tmp_path / "deck.pptx"
    render_pptx(OUTLINE, path_or_file=path)
    with zipfile.ZipFile(path) as package:
        names = package.namelist()
    slides = [n for n in names if n.startswith("ppt/slides/slide") and n.endswith(".xml")]
    notes = [n for n in names if n.startswith("ppt/notesSlides/") and n.endswith(".xml")]
    assert len(slides) == 1 + len(OUTLINE.slides)  # cover + one per entry
    assert len(notes) == 2  # only slides that have notes
    assert read_pptx(path) == OUTLINE
    assert [p.name for p in tmp_path.iterdir()] == ["deck.pptx"]  # no temporary file left


text = st.text(max_size=30)
outlines = st.builds(
    lambda title, slides, topics: Outline(title=title, slides=slides, topics=topics, slide_count=len(slides)),
    text,
    st.lists(st.builds(Slide, title=text, bullets=st.lists(text, max_size=3), notes=text), max_size=3),
    st.lists(text, max_size=2),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(outlines)
def test_round_trip_of_any_text(outline):
    assert _round_trip(outline) == renderable(outline)


def test_renderable_makes_text_safe():
    dirty = Outline(
        title="Line one\nline two",
        topics=["", "ok"],
        slides=[Slide(title="T\x00itle", bullets=["", "a\r\nb", "fine"], notes="n1\r\nn2\x07")],
    )
    clean = renderable(dirty)
    assert clean.title == "Line one line two" and clean.topics == ["ok"]
    assert clean.slides[0] == Slide(title="Title", bullets=["a b", "fine"], notes="n1\nn2")
    assert clean.slide_count == 1


def test_write_into_missing_folder_is_refused(tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        render_pptx(OUTLINE, path_or_file=tmp_path / "absent" / "deck.pptx")


def test_failed_write_leaves_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "deck.pptx"
    path.write_bytes(b"previous")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("marginalia.tools.slides.os.replace", boom)
    with pytest.raises(OSError):
        render_pptx(OUTLINE, path_or_file=path)
    assert path.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["deck.pptx"]


def test_reading_a_non_pptx(tmp_path):
    bad = tmp_path / "notes.pptx"
    bad.write_text("not a presentation")
    with pytest.raises(InvalidInput, match="notes.pptx"):
        read_pptx(bad)


def test_preview_lists_every_slide_in_order():
    preview = preview_text(OUTLINE)
    assert preview.startswith("# Q3 Platform Cost Review\n")
    positions = [preview.index(f"## {i}. {s.title}") for i, s in enumerate(OUTLINE.slides, 1)]
    assert positions == sorted(positions)
    assert "- Idle node groups cost $27,300" in preview
    assert "> Decision by 31 October 2025." in preview


@pytest.mark.skipif(shutil.which("soffice") is None, reason="LibreOffice not installed")
def test_libreoffice_opens_the_deck(tmp_path):
    path = tmp_path / "deck.pptx"
    render_pptx(OUTLINE, path_or_file=path)
    subprocess.run(
        ["soffice", "--headless", "--convert-to", "pdf", "--outdir", str(tmp_path), str(path)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    text = "\n".join(t for _, t in read_pages(tmp_path / "deck.pdf"))
    for slide in OUTLINE.slides:
        assert slide.title in text
    assert "Idle node groups cost $27,300" in text
