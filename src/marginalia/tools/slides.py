"""Slide outlines to .pptx and back, with python-pptx; and a plain-text preview.

The deck is a cover slide (``Outline.title``, the topics as subtitle lines) followed by one
"Title and Content" slide per ``Outline.slides`` entry: its title, its bullets (one paragraph
each) and its speaker notes. Nothing else is added, so :func:`read_pptx` gives back exactly
the outline that was rendered, which is what tests and the demo's "slide preview" rely on.

Text is made renderable first (:func:`renderable`): characters XML cannot hold are dropped,
titles and bullets are single lines, empty bullets are skipped. ``read_pptx(render_pptx(o))``
equals ``renderable(o)``. A file is written whole or not at all (temporary file + rename).
"""

from __future__ import annotations

import io
import os
import re
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

from pptx import Presentation
from pptx.enum.text import MSO_AUTO_SIZE
from pptx.exc import PackageNotFoundError

from ..errors import InvalidInput
from ..schemas import Outline, Slide

__all__ = ["preview_text", "read_pptx", "render_pptx", "renderable"]

_TITLE_LAYOUT, _CONTENT_LAYOUT = 0, 1  # in python-pptx's default template
_BODY_IDX = 1
# XML 1.0 forbids these (python-pptx/lxml would raise on them).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _one_line(text: str) -> str:
    return _NOT_XML.sub("", re.sub(r"\s*[\r\n]+\s*", " ", text or ""))


def _multi_line(text: str) -> str:
    return _NOT_XML.sub("", (text or "").replace("\r\n", "\n").replace("\r", "\n"))


def renderable(outline: Outline) -> Outline:
    """``outline`` as it will appear in the deck (the text :func:`read_pptx` will return)."""
    slides = [
        Slide(
            title=_one_line(s.title),
            bullets=[b for b in (_one_line(b) for b in s.bullets) if b],
            notes=_multi_line(s.notes),
            thin=s.thin,  # kept in the written outline: the deck does not show it, the record does
        )
        for s in outline.slides
    ]
    topics = [t for t in (_one_line(t) for t in outline.topics) if t]
    return Outline(title=_one_line(outline.title), slides=slides, topics=topics, slide_count=len(slides))


def render_pptx(outline: Outline, *, path_or_file: str | Path | BinaryIO) -> None:
    """Write ``outline`` as a .pptx to a path (atomically) or a binary file object."""
    clean = renderable(outline)
    deck = Presentation()
    cover = deck.slides.add_slide(deck.slide_layouts[_TITLE_LAYOUT])
    cover.shapes.title.text = clean.title
    subtitle = cover.placeholders[_BODY_IDX].text_frame
    _set_paragraphs(subtitle, clean.topics)
    for slide in clean.slides:
        page = deck.slides.add_slide(deck.slide_layouts[_CONTENT_LAYOUT])
        page.shapes.title.text = slide.title
        body = page.placeholders[_BODY_IDX].text_frame
        body.word_wrap = True
        body.auto_size = MSO_AUTO_SIZE.TEXT_TO_FIT_SHAPE
        _set_paragraphs(body, slide.bullets)
        if slide.notes:
            page.notes_slide.notes_text_frame.text = slide.notes
    buffer = io.BytesIO()
    deck.save(buffer)
    _write(buffer.getvalue(), path_or_file)


def _set_paragraphs(frame, lines: list[str]) -> None:
    for index, line in enumerate(lines):
        paragraph = frame.paragraphs[0] if index == 0 else frame.add_paragraph()
        paragraph.text = line


def _write(data: bytes, target: str | Path | BinaryIO) -> None:
    if not isinstance(target, (str, Path)):
        target.write(data)
        return
    path = Path(target)
    if not path.parent.is_dir():
        raise InvalidInput(f"{path}: cannot write the deck, folder {path.parent} does not exist")
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_pptx(path_or_file: str | Path | BinaryIO, *, name: str | None = None) -> Outline:
    """The outline of a .pptx: cover title and subtitle lines, then each slide's text and notes.

    Decks made elsewhere are read the same way: a slide's title placeholder is its title and
    every other text on it (placeholders, text boxes, in order) becomes its bullets.
    """
    label = name or (
        str(path_or_file) if isinstance(path_or_file, (str, Path)) else getattr(path_or_file, "name", "<pptx stream>")
    )
    try:
        deck = Presentation(str(path_or_file) if isinstance(path_or_file, Path) else path_or_file)
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise InvalidInput(f"{label}: not a readable .pptx file ({type(exc).__name__}: {exc})") from exc
    slides = list(deck.slides)
    if not slides:
        return Outline(title="", slides=[], topics=[], slide_count=0)
    cover, rest = slides[0], slides[1:]
    title = cover.shapes.title.text_frame.text if cover.shapes.title is not None else ""
    topics = [line for line in _other_text(cover) if line]
    outline_slides = [
        Slide(
            title=page.shapes.title.text_frame.text if page.shapes.title is not None else "",
            bullets=[line for line in _other_text(page) if line],
            notes=page.notes_slide.notes_text_frame.text
            if page.has_notes_slide and page.notes_slide.notes_text_frame
            else "",
        )
        for page in rest
    ]
    return Outline(title=title, slides=outline_slides, topics=topics, slide_count=len(outline_slides))


def _other_text(page) -> list[str]:
    title = page.shapes.title
    lines: list[str] = []
    for shape in page.shapes:
        if title is not None and shape.shape_id == title.shape_id:
            continue
        if shape.has_text_frame:
            lines.extend(p.text for p in shape.text_frame.paragraphs)
    return lines


def preview_text(outline: Outline) -> str:
    """A Markdown preview of the deck, for notebooks and terminals."""
    lines = [f"# {outline.title}"]
    if outline.topics:
        lines.append("_" + " · ".join(outline.topics) + "_")
    for number, slide in enumerate(outline.slides, 1):
        lines += ["", f"## {number}. {slide.title}"]
        lines += [f"- {bullet}" for bullet in slide.bullets]
        if slide.notes:
            lines.append("")
            lines += [f"> {line}" if line else ">" for line in slide.notes.split("\n")]
    return "\n".join(lines) + "\n"
