"""Text out of PDFs, one page at a time, with every bad file turned into a clear error.

Why page by page: agents summarise documents of any length by map-reduce over page chunks,
so the reader must never hold every page's text at once. :func:`iter_pages` yields
``(page_number, text)`` (1-based) and forgets each page's parsed content stream once its text
is out, so memory stays bounded by one page plus pypdf's cross-reference table.

Why so many checks: a PDF comes from anywhere. pypdf runs in non-strict mode (it repairs what
it can), and anything it still cannot read becomes :class:`~marginalia.errors.InvalidInput`
(not a PDF, corrupt or truncated, encrypted without the right password, no pages) or
:class:`~marginalia.errors.UnsupportedInput` (no text layer, i.e. scanned; or over the time
budget). The message names the file and the rule broken; a pypdf traceback never escapes.

Text is normalised the way the summariser and the search index want it: valid Unicode (see
:func:`valid_text`), ligatures expanded, whitespace collapsed, one line per extracted line, and
line-end hyphenation re-joined
("discrimi-" + "native" -> "discriminative") unless the hyphenated form is a real compound.
"""

from __future__ import annotations

import io
import logging
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import pypdf
from pypdf import PasswordType

from ..errors import InvalidInput, MarginaliaError, UnsupportedInput
from . import pdf_layout
from .pdf_text import split_authors, valid_text

__all__ = [
    "DEFAULT_TIME_BUDGET",
    "abstract_span",
    "abstract_text",
    "headings",
    "iter_pages",
    "normalize_text",
    "pdf_info",
    "read_pages",
    "remove_abstract",
    "sections",
    "split_authors",
    "valid_text",
]

#: Seconds one file may take to extract, all pages together (guards pathological files).
DEFAULT_TIME_BUDGET = 120.0

#: How far into a file the ``%PDF-`` header may sit (readers tolerate leading junk up to 1 KiB).
_HEADER_WINDOW = 1024

_LIGATURES = str.maketrans(
    {
        "\ufb00": "ff",
        "\ufb01": "fi",
        "\ufb02": "fl",
        "\ufb03": "ffi",
        "\ufb04": "ffl",
        "\ufb05": "st",
        "\ufb06": "st",
        "\u00ad": "",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\u200b": "",
    }
)
_SPACES = re.compile(r"[ \t\f\v\r]+")

_HYPHEN_END = re.compile(r"(?<![A-Za-z])([A-Za-z]+)-$")  # whole word: linear on a long line
_LOWER_START = re.compile(r"^([a-z]+)")


# --- opening ---------------------------------------------------------------------------------
def _display_name(source: Path | str | BinaryIO, name: str | None) -> str:
    if name:
        return name
    if isinstance(source, (str, Path)):
        return str(source)
    return getattr(source, "name", None) or "<PDF stream>"


_QUIET_LOCK = threading.Lock()
_QUIET_READERS = 0
_QUIET_PREVIOUS = logging.NOTSET


@contextmanager
def _quiet_pypdf():
    """pypdf's warnings (one per odd font or repaired xref) off while ANY thread reads a PDF.

    The caller only wants our errors. Map-reduce chunks read in parallel threads, so a plain
    set-and-restore would race (the first reader to finish turns warnings back on under the
    others): a count of readers keeps the silence until the last one is done.
    """
    global _QUIET_READERS, _QUIET_PREVIOUS
    logger = logging.getLogger("pypdf")
    with _QUIET_LOCK:
        if _QUIET_READERS == 0:
            _QUIET_PREVIOUS = logger.level
            logger.setLevel(logging.ERROR)
        _QUIET_READERS += 1
    try:
        yield
    finally:
        with _QUIET_LOCK:
            _QUIET_READERS -= 1
            if _QUIET_READERS == 0:
                logger.setLevel(_QUIET_PREVIOUS)


@contextmanager
def _binary(source: Path | str | BinaryIO, name: str):
    """A seekable binary stream for ``source``; files we open are closed afterwards."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise InvalidInput(f"{name}: no such file")
        with path.open("rb") as handle:
            yield handle
        return
    stream = source
    if not (hasattr(stream, "seekable") and stream.seekable()):
        stream = io.BytesIO(stream.read())
    yield stream


def _check_header(stream: BinaryIO, name: str) -> None:
    start = stream.tell()
    head = stream.read(_HEADER_WINDOW)
    stream.seek(start)
    check_pdf_header(head, name=name)


def check_pdf_header(head: bytes, *, name: str) -> None:
    """Refuse bytes that cannot be the start of a PDF (``head``: the first KiB or more)."""
    head = head[:_HEADER_WINDOW]
    if not head:
        raise InvalidInput(f"{name}: not a PDF (the file is empty)")
    if b"%PDF-" not in head:
        raise InvalidInput(f"{name}: not a PDF (no %PDF- header in its first {_HEADER_WINDOW} bytes)")


def _open_reader(stream: BinaryIO, name: str, password: str | None) -> pypdf.PdfReader:
    """A decrypted reader with at least one page, or a clear error."""
    _check_header(stream, name)
    try:
        reader = pypdf.PdfReader(stream, strict=False)
    except MarginaliaError:
        raise
    except Exception as exc:  # pypdf raises many types on broken files; all mean the same here
        raise InvalidInput(f"{name}: corrupt or truncated PDF, cannot be read ({_reason(exc)})") from exc
    if reader.is_encrypted:
        try:
            result = reader.decrypt(password if password is not None else "")
        except Exception as exc:
            raise UnsupportedInput(f"{name}: encrypted with a scheme that cannot be opened ({_reason(exc)})") from exc
        if result == PasswordType.NOT_DECRYPTED:
            if password is None:
                raise InvalidInput(f"{name}: the PDF is encrypted; give its password to read it")
            raise InvalidInput(f"{name}: the password given does not open this encrypted PDF")
    try:
        count = len(reader.pages)
    except Exception as exc:
        raise InvalidInput(f"{name}: corrupt PDF, its page tree cannot be read ({_reason(exc)})") from exc
    if count == 0:
        raise InvalidInput(f"{name}: the PDF has no pages")
    return reader


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or "no detail"
    return f"{type(exc).__name__}: {text[:160]}"


# --- pages -----------------------------------------------------------------------------------
def iter_pages(
    source: Path | str | BinaryIO,
    *,
    first: int = 1,
    last: int | None = None,
    password: str | None = None,
    name: str | None = None,
    allow_no_text: bool = False,
    time_budget: float | None = DEFAULT_TIME_BUDGET,
) -> Iterator[tuple[int, str]]:
    """Yield ``(page_number, normalised_text)`` for pages ``first..last``, 1-based, in order.

    ``last`` (inclusive) defaults to the last page and is clipped to it, so a map-reduce chunk
    reads only its own pages; ``first`` beyond the last page is :class:`InvalidInput`. Pages are
    read one at a time and each page's parsed content is dropped from pypdf's cache once its
    text is out, so memory does not grow with the page count.

    ``name`` is what error messages call the file (e.g. its ``s3://`` URI); by default the path.
    Pages read with no text at all mean a scanned file: :class:`UnsupportedInput` "no text
    layer", unless ``allow_no_text`` (then every page is yielded, ``""`` for the empty ones).
    Leading pages without text are held back (as numbers only) until a page with text proves
    the document has a text layer, so a scanned file raises before yielding anything.
    ``time_budget`` seconds bound the whole call (pathological files).
    """
    name = _display_name(source, name)
    if first < 1 or (last is not None and last < first):
        raise InvalidInput(f"{name}: page range {first}..{last} is not valid (pages are numbered from 1)")
    deadline = None if time_budget is None else time.monotonic() + time_budget
    with _quiet_pypdf(), _binary(source, name) as stream:
        reader = _open_reader(stream, name, password)
        total = len(reader.pages)
        if first > total:
            raise InvalidInput(f"{name}: page {first} asked for, but the PDF has {total} page(s)")
        stop = total if last is None else min(last, total)
        held_back: list[int] = []
        seen_text = False
        for index in range(first - 1, stop):
            number = index + 1
            if deadline is not None and time.monotonic() > deadline:
                raise UnsupportedInput(
                    f"{name}: text extraction went over its {time_budget:g} s budget at page {number} of {total}"
                )
            text = _page_text(reader, index, name)
            if not text.strip():
                if seen_text:
                    yield number, ""
                else:
                    held_back.append(number)
                continue
            if not seen_text:
                seen_text = True
                for empty in held_back:
                    yield empty, ""
                held_back.clear()
            yield number, text
        if not seen_text:
            if not allow_no_text:
                what = f"any of its {total} page(s)" if (first, stop) == (1, total) else f"pages {first}-{stop}"
                raise UnsupportedInput(f"{name}: no text layer on {what} (a scanned PDF?); OCR it first")
            for empty in held_back:
                yield empty, ""


def _page_text(reader: pypdf.PdfReader, index: int, name: str) -> str:
    try:
        page = reader.pages[index]
        raw = page.extract_text() or ""
    except MarginaliaError:
        raise
    except Exception as exc:
        raise InvalidInput(
            f"{name}: page {index + 1} is corrupt, its text cannot be extracted ({_reason(exc)})"
        ) from exc
    finally:
        _forget_page(reader, index)
    return normalize_text(raw)


def _forget_page(reader: pypdf.PdfReader, index: int) -> None:
    """Drop the parsed content streams of a page from pypdf's object cache (bounded memory)."""
    try:
        page = reader.pages[index]
        contents = page.get("/Contents")
        refs = contents if isinstance(contents, (list, pypdf.generic.ArrayObject)) else [contents]
        resolved = contents.get_object() if contents is not None else None
        if isinstance(resolved, pypdf.generic.ArrayObject):
            refs = list(refs) + list(resolved)
        for ref in refs:
            if isinstance(ref, pypdf.generic.IndirectObject):
                reader.resolved_objects.pop((ref.generation, ref.idnum), None)
    except Exception:  # a cache-trimming failure must never fail extraction
        pass


def read_pages(source: Path | str | BinaryIO, **options) -> list[tuple[int, str]]:
    """All pages at once, for small documents and tests (same options as :func:`iter_pages`)."""
    return list(iter_pages(source, **options))


# --- metadata --------------------------------------------------------------------------------
def pdf_info(source: Path | str | BinaryIO, *, password: str | None = None, name: str | None = None) -> dict:
    """``{page_count, title, authors, encrypted}``: the document information dictionary weighed
    against the first page's layout (:func:`marginalia.tools.pdf_layout.title_and_authors`).

    Metadata is often empty or junk (a job number, "Nuala E. Tully {et al.}"); it is used only
    when it is sane, else the largest-font lines at the top of page 1 and the names under them.
    """
    name = _display_name(source, name)
    with _quiet_pypdf(), _binary(source, name) as stream:
        reader = _open_reader(stream, name, password)
        try:
            meta: Mapping[str, Any] = reader.metadata or {}
            meta_title = _clean_meta(meta.get("/Title"))
            author = _clean_meta(meta.get("/Author"))
        except Exception:  # a broken info dictionary is not a reason to refuse the document
            meta_title, author = None, None
        page_count = len(reader.pages)
        encrypted = bool(reader.is_encrypted)
        lines = pdf_layout.layout_lines(stream, first=1, last=1, password=password)
        title, authors = pdf_layout.title_and_authors(lines, meta_title, split_authors(author) if author else [])
        return {"page_count": page_count, "title": title, "authors": authors, "encrypted": encrypted}


def headings(
    source: Path | str | BinaryIO, *, first: int = 1, last: int | None = None, password: str | None = None
) -> list[dict]:
    """Top-level section headings ``[{title, page}]`` of pages ``first..last`` from the layout.

    Best effort, as layout is: ``[]`` when pdfium cannot read the file (the text is still read by
    :func:`iter_pages`, which reports what is wrong with it).
    """
    if isinstance(source, Path):
        source = str(source)
    lines = pdf_layout.layout_lines(source, first=first, last=last, password=password)
    return pdf_layout.section_headings(lines)


def sections(found: Iterable[dict], page_count: int) -> list[dict]:
    """``[{title, pages}]`` from headings in page order: each section runs from its heading's page
    to the page of the next heading (sections such as References or Acknowledgements end the one
    before them and are not listed themselves)."""
    ordered = sorted(enumerate(found), key=lambda item: (int(item[1]["page"]), item[0]))
    out: list[dict] = []
    for position, (_, heading) in enumerate(ordered):
        title = str(heading["title"]).strip()
        if pdf_layout.BOILERPLATE_SECTIONS.match(re.sub(r"^[\dIVX.]+\s+", "", title)):
            continue
        start = int(heading["page"])
        end = int(ordered[position + 1][1]["page"]) if position + 1 < len(ordered) else page_count
        out.append({"title": title, "pages": list(range(start, max(start, end) + 1))})
    return out


def _clean_meta(value) -> str | None:
    if value is None:
        return None
    text = _SPACES.sub(" ", valid_text(str(value)).translate(_LIGATURES)).strip()
    return text or None


# --- normalisation ---------------------------------------------------------------------------
def normalize_text(raw: str) -> str:
    """Valid Unicode, ligatures expanded, spaces collapsed, no empty lines, hyphenation re-joined."""
    text = valid_text(raw).translate(_LIGATURES)
    lines = [_SPACES.sub(" ", line).strip() for line in text.split("\n")]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    vocabulary = set(re.findall(r"[A-Za-z]+(?:-[A-Za-z]+)*", " ".join(lines)))
    out: list[str] = []
    for line in lines:
        if out:
            joined = _join_hyphenated(out[-1], line, vocabulary)
            if joined is not None:
                out[-1] = joined
                continue
        out.append(line)
    return "\n".join(out)


def _join_hyphenated(previous: str, line: str, vocabulary: set[str]) -> str | None:
    """``previous`` ends "word-" and ``line`` starts lower-case: one line, hyphen kept or not."""
    end = _HYPHEN_END.search(previous)
    start = _LOWER_START.match(line)
    if not end or not start:
        return None
    head, tail = end.group(1), start.group(1)
    compound = f"{head}-{tail}"
    keep_hyphen = compound in vocabulary and (head + tail) not in vocabulary
    glue = "-" if keep_hyphen else ""
    return previous[: end.end(1)] + glue + line


# --- abstracts -------------------------------------------------------------------------------
_ABSTRACT_HEADING = re.compile(
    r"^(?:(?:abstract|a b s t r a c t|summary)\s*|(?:abstract|a b s t r a c t)"
    r"(?:\s*[.:\u2014\u2013-]\s*|\s+(?=[A-Z]))(?P<rest>.+))$",
    re.I,
)
_SECTION_HEADING = re.compile(
    r"^(?:(?:\d{1,2}|[IVX]{1,4})\.?\s+)?(?:introduction|background|motivation|overview)\s*$", re.I
)
_END_OF_ABSTRACT = re.compile(r"^(?:keywords?|key\s+words|index\s+terms|ccs\s+concepts|jel)\b\s*[:.\u2014-]?", re.I)
_STRUCTURED_START = re.compile(r"^(?:objectives?|background|purpose|aims?|context|introduction)\s*[:.]\s+\S", re.I)
_BOILERPLATE = re.compile(
    r"copyright|\u00a9|licen[cs]e|creative commons|permits unrestricted|correspondence|received|accepted|"
    r"editor|doi[:.]|https?://|@|proceedings|vol\.|volume|issn|isbn",
    re.I,
)


def abstract_span(text: str) -> tuple[int, int] | None:
    """Line range ``[start, end)`` of the abstract (with its heading line) in a page's text, if any.

    Two shapes are recognised: an "Abstract" heading (its text may follow on the same line),
    ended by a section heading ("1 Introduction", "Background") or a "Keywords" line; and,
    without a heading, the prose block just before "Introduction": from a structured-abstract
    label ("Objectives.", "Background:") if there is one, else walking back over prose lines
    until front matter (copyright, correspondence, dates, URLs).
    """
    lines = text.split("\n")
    heading = next((i for i, line in enumerate(lines) if _ABSTRACT_HEADING.match(line)), None)
    intro = next((i for i, line in enumerate(lines) if _SECTION_HEADING.match(line)), None)
    if heading is not None:
        end = _abstract_end(lines, heading)
        found = _ABSTRACT_HEADING.match(lines[heading])
        return (heading, end) if end > heading + 1 or (found is not None and found.group("rest")) else None
    if intro is None or intro == 0:
        return None
    structured = next((i for i in range(intro) if _STRUCTURED_START.match(lines[i])), None)
    if structured is not None:
        start = structured
    else:
        long_line = max(len(line) for line in lines[:intro]) * 0.6
        start = intro
        while start > 0 and len(lines[start - 1]) >= long_line and not _BOILERPLATE.search(lines[start - 1]):
            start -= 1
    end = intro
    if end - start < 2 or sum(len(line) for line in lines[start:end]) < 200:
        return None
    return start, end


def _abstract_end(lines: list[str], start: int) -> int:
    for i in range(start, len(lines)):
        if i > start and (_SECTION_HEADING.match(lines[i]) or _END_OF_ABSTRACT.match(lines[i])):
            return i
    return len(lines)


def abstract_text(text: str) -> str | None:
    """The abstract of a page's text as one paragraph (heading word removed), or ``None``."""
    span = abstract_span(text)
    if span is None:
        return None
    lines = text.split("\n")[span[0] : span[1]]
    first = _ABSTRACT_HEADING.match(lines[0])
    if first:  # the heading word itself is not part of the abstract
        lines[0] = first.group("rest") or ""
    paragraph = " ".join(lines).strip()
    return paragraph or None


def remove_abstract(pages: Iterable[tuple[int, str]], *, search_pages: int = 2) -> list[tuple[int, str]]:
    """The pages with the abstract cut out of the first page that states one.

    Used to evaluate a summariser fairly: a document's own abstract is both the best summary
    and the reference, so benchmarks also score the document without it.
    """
    out = [(number, text) for number, text in pages]
    for i, (number, text) in enumerate(out[:search_pages]):
        span = abstract_span(text)
        if span is not None:
            lines = text.split("\n")
            out[i] = (number, "\n".join(lines[: span[0]] + lines[span[1] :]))
            break
    return out
