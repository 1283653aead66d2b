"""What a PDF's layout says: the title and authors of its first page, and its section headings.

Why layout: the text layer alone cannot tell a title from a running header ("Published 5 June
2017 Corresponding author" read as a title) or a heading from a short line of prose; the font
can. pdfium (pypdfium2) gives each character's box and font, so every extracted line here
carries its size (the height of its characters' font boxes, which is right even when a
producer sets 1-pt text scaled by the text matrix), whether it is bold, and its height on the
page. No model is involved.

* :func:`layout_lines` reads pages into such lines (plain dicts, so results pickle and can
  cross a process boundary).
* :func:`title_and_authors` takes the largest-font lines near the top of the first page as the
  title and the name lines under it as the authors, and weighs both against the document
  information dictionary: metadata is used when it is sane (a real title that the first page
  prints, whole author names, no "et al.").
* :func:`section_headings` finds headings (numbered, or larger or bolder than the body and
  short) and keeps the top-level ones, multi-line headings joined.

Layout is help, never a reason to fail: a file pdfium cannot read gives no lines, and callers
fall back to the text layer.
"""

from __future__ import annotations

import ctypes
import re
import statistics
import threading
from collections import Counter
from collections.abc import Iterable
from typing import BinaryIO

from .pdf_text import split_authors, valid_text

__all__ = [
    "BOILERPLATE_SECTIONS",
    "layout_lines",
    "plausible_title",
    "section_headings",
    "title_and_authors",
]

#: pdfium is not thread-safe: map-reduce chunks read in parallel threads, one at a time here.
_PDFIUM_LOCK = threading.Lock()
#: Lines of the first page that may hold the title block (from the top).
_FRONT_LINES = 40
_BOLD_FONT = re.compile(r"bold|black|heavy|semibold|demi|medi|\.B$|-B$|,B", re.I)
_FORCE_BOLD_FLAG = 1 << 18
#: Characters after a line's first few whose font is measured (1 in N).
_SAMPLE_EVERY = 3

#: Headings of sections that are not the document's content (stripped before summarising, left
#: out of ``sections``).
BOILERPLATE_SECTIONS = re.compile(
    r"^(?:acknowledge?ments?|acknowledg(?:e)?ment|funding|author(?:s'?|’s?)? contributions?|"
    r"authors?'? information|author details|competing interests?|conflicts? of interests?|declarations?|"
    r"ethics(?: approval| statement)?.*|consent.*|availability of data.*|data availability.*|abbreviations|"
    r"additional files?|supplementary (?:material|information)|references|bibliography|literature cited|"
    r"works cited|notes|endnotes|appendix.*|submit your (?:next )?manuscript.*|pre-publication history|"
    r"open access|publisher'?s note)$",
    re.I,
)
_FRONT_HEADINGS = re.compile(r"^(?:abstract|a b s t r a c t|summary|keywords?|index terms)\b", re.I)
_NUMBER = re.compile(r"^(?P<num>(?:\d{1,2}|[IVX]{1,4}|[A-H])(?P<sub>(?:\.\d{1,2})*))\.?\s+(?P<rest>\S.*)$")
_CAPTION = re.compile(r"^(?:fig(?:ure)?|table|algorithm|listing|eq(?:uation)?)\.?\s*\d", re.I)
_HEADER_NOISE = re.compile(
    r"research article|open access|original article|review article|short communication|proceedings|"
    r"journal|volume|vol\.|issue|doi|publishing|corporation|www\.|https?://|\u00a9|copyright|\barxiv\b|"
    r"conference|workshop|symposium|preprint|received|accepted|published|corresponding|correspondence|editor|"
    r"licen[cs]e|@",
    re.I,
)


# --- reading ---------------------------------------------------------------------------------
def layout_lines(
    source: str | BinaryIO,
    *,
    first: int = 1,
    last: int | None = None,
    password: str | None = None,
) -> list[dict]:
    """``[{page, text, size, bold, top}]`` for pages ``first..last`` (1-based), reading order.

    ``size`` is the median font-box height of the line's characters (points), ``bold`` whether
    nearly all of them are bold, ``top`` the line's top on the page (points from the bottom).
    Text is made valid Unicode by :func:`marginalia.tools.pdf_text.valid_text`. A file pdfium
    cannot open gives ``[]``.
    """
    import pypdfium2 as pdfium

    with _PDFIUM_LOCK:
        try:
            if hasattr(source, "seek"):
                source.seek(0)
            document = pdfium.PdfDocument(source, password=password)
        except Exception:
            return []
        try:
            stop = len(document) if last is None else min(last, len(document))
            out: list[dict] = []
            for index in range(first - 1, stop):
                try:
                    page = document[index]
                    out.extend({**line, "page": index + 1} for line in _page_lines(page, valid_text))
                except Exception:  # one unreadable page costs its layout, nothing more
                    continue
            return out
        finally:
            document.close()


def _page_lines(page, clean) -> list[dict]:
    import pypdfium2.raw as raw

    textpage = page.get_textpage()
    lines: list[dict] = []
    chars: list[str] = []
    metrics: list[tuple[float, bool, float]] = []
    rect = raw.FS_RECTF()
    name = ctypes.create_string_buffer(128)
    flags = ctypes.c_int()

    def flush() -> None:
        text = clean("".join(chars)).strip()
        if text and metrics:
            lines.append(
                {
                    "text": re.sub(r"\s+", " ", text),
                    "size": round(statistics.median(m[0] for m in metrics), 1),
                    "bold": sum(m[1] for m in metrics) >= 0.9 * len(metrics),
                    "top": round(max(m[2] for m in metrics), 1),
                }
            )
        chars.clear()
        metrics.clear()

    bold_fonts: dict[bytes, bool] = {}
    try:
        for i in range(textpage.count_chars()):
            code = raw.FPDFText_GetUnicode(textpage, i)
            char = chr(code) if 0 < code < 0x110000 else ""
            if char in ("\r", "\n"):
                if char == "\n":
                    flush()
                continue
            chars.append(char)
            if not char.strip() or (len(chars) > 4 and i % _SAMPLE_EVERY):
                continue  # a line's size and weight are medians: every few characters is enough
            raw.FPDFText_GetLooseCharBox(textpage, i, rect)
            raw.FPDFText_GetFontInfo(textpage, i, name, len(name), ctypes.byref(flags))
            font = name.value
            if font not in bold_fonts:
                bold_fonts[font] = bool(flags.value & _FORCE_BOLD_FLAG) or bool(
                    _BOLD_FONT.search(font.decode("latin-1"))
                )
            bold = bold_fonts[font] or raw.FPDFText_GetFontWeight(textpage, i) >= 600
            metrics.append((rect.top - rect.bottom, bold, rect.top))
        flush()
    finally:
        textpage.close()
    return lines


# --- title and authors -----------------------------------------------------------------------
def plausible_title(title: str | None) -> bool:
    """A metadata title that reads like a title (not a job number, file name or "untitled")."""
    if not title or re.search(
        r"^\s*[\d\W]|\.\.|microsoft word|\.docx?\b|\.tex\b|\.pdf\b|untitled|^title$", title, re.I
    ):
        return False
    tokens = re.findall(r"\w+", title)
    return len(tokens) >= 3 and sum(t.isalpha() for t in tokens) >= 0.5 * len(tokens)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _printed(title: str, text: str) -> bool:
    """Most of ``title``'s words are on the page (metadata that describes this document)."""
    words = _words(title)
    page = set(_words(text))
    return bool(words) and sum(w in page for w in words) >= 0.8 * len(words)


def title_and_authors(
    lines: list[dict], meta_title: str | None, meta_authors: list[str]
) -> tuple[str | None, list[str]]:
    """The document's title and authors from its first page's ``lines`` and its metadata."""
    page = [line for line in lines if line["page"] == min((x["page"] for x in lines), default=1)]
    page_text = "\n".join(line["text"] for line in page)
    layout_title, title_end = _layout_title(page)
    layout_authors = _layout_authors(page, title_end) if title_end is not None else []
    if plausible_title(meta_title) and (not page or _printed(meta_title or "", page_text)):
        title = meta_title
    else:
        title = layout_title or (meta_title if plausible_title(meta_title) else None)
    if _sane_authors(meta_authors) and (not layout_authors or len(meta_authors) >= len(layout_authors)):
        authors = list(meta_authors)
    else:
        authors = layout_authors
    return title, authors


def _layout_title(page: list[dict]) -> tuple[str | None, int | None]:
    """The largest-font block near the top (1-3 adjacent lines) and the index after it."""
    front = []
    for i, line in enumerate(page[:_FRONT_LINES]):
        if _FRONT_HEADINGS.match(line["text"]) or _NUMBER.match(line["text"]) and i > 2:
            break
        front.append((i, line))
    candidates = [
        (i, line)
        for i, line in front
        if not _HEADER_NOISE.search(line["text"])
        and len(_words(line["text"])) >= 1
        and re.search(r"[A-Za-z]{2}", line["text"])
    ]
    if not candidates:
        return None, None
    biggest = max(line["size"] for _, line in candidates)
    start = next(i for i, line in candidates if line["size"] >= biggest - 0.3)
    block = [page[start]["text"]]
    end = start + 1
    while end < len(page) and len(block) < 6:
        line = page[end]
        if abs(line["size"] - biggest) > 0.3 or _HEADER_NOISE.search(line["text"]):
            break
        block.append(line["text"])
        end += 1
    title = re.sub(r"\s+", " ", " ".join(block)).strip()
    title = re.sub(r"(?<=\w)- (?=[a-z])", "-", title)
    return (title if len(_words(title)) >= 2 else None), end


_AUTHOR_NOISE = re.compile(r"university|institute|department|school|college|centre|center|laborator|@|\d{3,}", re.I)


def _layout_authors(page: list[dict], start: int) -> list[str]:
    """Names on the lines under the title, in the author font (side-by-side columns included)."""
    names: list[str] = []
    author_style: tuple[float, bool] | None = None
    for line in page[start : start + 25]:
        text = line["text"]
        if _FRONT_HEADINGS.match(text) or _NUMBER.match(text):
            break
        style = (line["size"], line["bold"])
        if author_style is not None and (abs(style[0] - author_style[0]) > 0.3 or style[1] != author_style[1]):
            continue
        found = _names(text)
        if not found:
            if author_style is None:
                continue
            continue
        if author_style is None:
            author_style = style
        names.extend(n for n in found if n not in names)
    return names


def _names(text: str) -> list[str]:
    if _HEADER_NOISE.search(text) or _AUTHOR_NOISE.search(text):
        return []
    cleaned = re.sub(r"[\d*†‡§¶◦∗⋆,]+(?=\s|,|$|\s*and\b)", ",", text)
    cleaned = re.sub(r"[*†‡§¶◦∗⋆]", "", cleaned)
    cleaned = re.sub(r"\s*,\s*(?:,\s*)*", ", ", cleaned).strip(" ,")
    names = [n.strip() for n in split_authors(cleaned) if n.strip()]
    if not names or not all(_is_name(n) for n in names):
        return []
    return names


def _is_name(name: str) -> bool:
    tokens = name.split()
    if not 2 <= len(tokens) <= 5:
        return False
    particles = {"de", "van", "von", "der", "den", "da", "di", "del", "la", "le", "du", "bin", "al"}
    return all(t.lower() in particles or re.match(r"^[A-Z][\w'’.-]*$", t) for t in tokens)


def _sane_authors(authors: Iterable[str]) -> bool:
    authors = list(authors)
    return bool(authors) and all(_is_name(a) and "et al" not in a for a in authors)


# --- headings --------------------------------------------------------------------------------
def section_headings(lines: list[dict], *, body_size: float | None = None) -> list[dict]:
    """Top-level section headings ``[{title, page}]`` in order (numbered when the document numbers them).

    A heading is a short line (up to 12 words, no final full stop) that is larger than the
    body text or bold, or that starts with a section number; sub-sections ("2.1 Data") are
    left out, and a heading set on two lines is joined. On the first page, lines above the
    abstract or first section (title, authors, affiliations) are front matter, not headings.
    """
    if not lines:
        return []
    body = body_size or _body_size(lines)
    first_page = lines[0]["page"] if lines[0]["page"] == 1 else None
    candidates: list[tuple[int, dict]] = []
    in_front = first_page is not None
    for i, line in enumerate(lines):
        text = line["text"]
        if in_front and line["page"] == first_page:
            if _FRONT_HEADINGS.match(text) or (_is_heading(line, body) and _NUMBER.match(text)):
                in_front = False
            else:
                continue
        if _is_heading(line, body):
            candidates.append((i, line))
    numbered = [line for _, line in candidates if _top_number(line["text"]) is not None]
    use_numbers = len(numbered) >= 3
    out: list[dict] = []
    joined_with: set[int] = set()
    for i, line in candidates:
        if i in joined_with:
            continue
        text = line["text"]
        if use_numbers and _top_number(text) is None and not BOILERPLATE_SECTIONS.match(text):
            continue
        number_match = _NUMBER.match(text)
        if not use_numbers and number_match is not None and number_match.group("sub"):
            continue
        following = lines[i + 1] if i + 1 < len(lines) else None
        if following is not None and _continues(line, following):
            text = f"{text} {following['text']}"
            joined_with.add(i + 1)
        if _FRONT_HEADINGS.match(text):
            continue
        out.append({"title": text, "page": line["page"]})
    return out


def _continues(line: dict, following: dict) -> bool:
    """``following`` is the second line of the heading ``line`` (same style, right under it)."""
    text = following["text"]
    return (
        following["page"] == line["page"]
        and abs(following["size"] - line["size"]) <= 0.3
        and following["bold"] == line["bold"]
        and 0 < line["top"] - following["top"] <= 2.0 * line["size"]
        and len(text.split()) <= 8
        and not text.endswith((".", ",", ";", ":"))
        and not _NUMBER.match(text)
        and not BOILERPLATE_SECTIONS.match(text)
    )


def _body_size(lines: list[dict]) -> float:
    sizes: Counter[float] = Counter()
    for line in lines:
        sizes[line["size"]] += len(line["text"])
    return sizes.most_common(1)[0][0]


def _is_heading(line: dict, body: float) -> bool:
    text = line["text"]
    words = text.split()
    if not 1 <= len(words) <= 12 or len(text) > 100:
        return False
    if text.endswith((".", ",", ";", ":")) and not re.match(r"^\d{1,2}\.$", words[0]):
        return False
    if _CAPTION.match(text) or _HEADER_NOISE.search(text) or text.startswith(("•", "-", "–", "(")):
        return False
    letters = sum(c.isalpha() for c in text)
    if letters < 0.6 * len(text.replace(" ", "")) or not re.search(r"[A-Za-z]{3}", text):
        return False
    number = _NUMBER.match(text)
    rest = number.group("rest") if number else text
    if not rest[:1].isupper():
        return False
    emphasised = line["bold"] or line["size"] >= body * 1.12
    return emphasised and line["size"] >= body * 0.95


def _top_number(text: str) -> str | None:
    number = _NUMBER.match(text)
    if number is None or number.group("sub"):
        return None
    return number.group("num")
