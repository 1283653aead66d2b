"""PDF summariser nodes: read a PDF from the store page range by page range, summarise, merge.

Why page ranges: a document of any length is summarised by map-reduce over chunks of pages
(``plan`` -> one ``summarize_chunk`` per range through LangGraph ``Send`` -> ``merge``), and
neither the state nor any checkpoint ever holds page text. Each node reads the pages it needs
straight from the PDF (a local copy of the object version read at ingest, checked against its
ETag), one page at a time, so memory is bounded by one page plus pypdf's cross-reference table.

Why the password lives in the run context: it must never be stored. It reaches the nodes in
:class:`DocumentContext` (LangGraph runtime context, which is never checkpointed), or, for a run
resumed in another process, from ``MARGINALIA_PDF_PASSWORD``; the state only says the file is
encrypted.

:func:`summarize_document` runs the same steps in one call (no graph, no review): the outliner
uses it for sources that have no ``summary`` annotation yet.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from langgraph.types import Send

from ..context import AgentContext, rails
from ..engines.base import Engine
from ..errors import InvalidInput, ObjectChanged, UnsupportedInput
from ..progress import report
from ..schemas import DocumentSummary, Section
from ..settings import current
from ..tools import pdf as pdftools
from ..tools import pdf_bounds
from .annotate import changed_message

__all__ = [
    "DEFAULT_CHUNK_PAGES",
    "PASSWORD_ENV",
    "DocumentContext",
    "combine",
    "iter_page_range",
    "merge",
    "open_copy",
    "payloads",
    "plan",
    "plan_page_chunks",
    "revise",
    "route_chunks",
    "summarize_chunk",
    "summarize_document",
]

#: Pages per map step: a chunk is what one engine call reads (a long paper is 2-3 chunks).
DEFAULT_CHUNK_PAGES = 12
#: Characters of page text a revision may read (pages cited by the summary first).
REVISE_CHARS = 60_000
#: Environment variable a resumed run reads the password from (it is never stored).
PASSWORD_ENV = "MARGINALIA_PDF_PASSWORD"
SUMMARY_ANNOTATION = "summary"
_log = logging.getLogger(__name__)


@dataclass
class DocumentContext(AgentContext):
    """:class:`~marginalia.context.AgentContext` plus the PDF password (context is never checkpointed)."""

    password: str | None = field(default=None, repr=False)


def password_of(runtime) -> str | None:
    """The password from the run context, else ``MARGINALIA_PDF_PASSWORD``, else None."""
    ctx = getattr(runtime, "context", None)
    value = ctx.get("password") if isinstance(ctx, Mapping) else getattr(ctx, "password", None)
    if value is not None:
        return value
    secret = current().pdf_password
    return secret.get_secret_value() if secret is not None else None


# --- local copies of the PDF ------------------------------------------------------------------
class _LocalCopies:
    """PDFs downloaded from the store to temporary files, a few per process, keyed by ETag.

    pypdf needs a seekable file; several chunk nodes of one run read the same PDF, in parallel
    threads, so one download serves them all. Each caller gets its own handle, so an evicted
    (unlinked) file stays readable by whoever still has it open.
    """

    def __init__(self, limit: int = 4):
        self.limit = limit
        self._lock = threading.Lock()
        self._paths: OrderedDict[tuple, Path] = OrderedDict()
        self._dir: Path | None = None
        self._count = 0

    def _folder(self) -> Path:
        if self._dir is None:
            self._dir = Path(tempfile.mkdtemp(prefix="marginalia-pdf-"))
            atexit.register(shutil.rmtree, self._dir, True)
        return self._dir

    def open(self, store, source: dict) -> BinaryIO:
        key = (id(store), source["bucket"], source["key"], source.get("version_id"), source["etag"])
        with self._lock:
            path = self._paths.get(key)
            if path is None or not path.exists():
                self._count += 1
                path = self._folder() / f"{self._count}.pdf"
                info = store.download(source["bucket"], source["key"], path, version_id=source.get("version_id"))
                if info.etag != source["etag"]:
                    path.unlink(missing_ok=True)
                    raise ObjectChanged(changed_message(source, info.etag), uri=source["uri"])
                self._paths[key] = path
                while len(self._paths) > self.limit:
                    _, old = self._paths.popitem(last=False)
                    old.unlink(missing_ok=True)
            self._paths.move_to_end(key)
            return path.open("rb")


_COPIES = _LocalCopies()


@contextmanager
def open_copy(store, source: dict) -> Iterator[BinaryIO]:
    """A binary handle on the exact version ``source`` describes (ObjectChanged if replaced)."""
    handle = _COPIES.open(store, source)
    try:
        yield handle
    finally:
        handle.close()


def _explain(exc: InvalidInput, password: str | None) -> InvalidInput:
    """Add how to give a password to tools.pdf's "encrypted" message."""
    if password is None and "encrypted" in str(exc):
        return InvalidInput(f"{exc} (--password P, or password= in Python)", uri=exc.uri)
    return exc


def iter_page_range(
    handle: BinaryIO, first: int, last: int, *, password: str | None, name: str
) -> Iterator[tuple[int, str]]:
    """``(page_number, text)`` for pages ``first..last`` (1-based, inclusive), one at a time.

    :func:`marginalia.tools.pdf.iter_pages` over the chunk's range, every page yielded (a chunk
    with no text is judged by :func:`combine` for the whole document, not here), with the
    password hint of :func:`_explain` on an encrypted file.
    """
    pages = pdf_bounds.bounded_iter_pages(
        handle, first=first, last=last, password=password, name=name, allow_no_text=True
    )
    try:
        yield from pages
    except InvalidInput as exc:
        raise _explain(exc, password) from None


def document_info(handle: BinaryIO, *, password: str | None, name: str) -> dict:
    """``{page_count, title, authors, encrypted}`` or the clear error of a bad PDF."""
    try:
        return pdf_bounds.bounded_pdf_info(handle, password=password, name=name)
    except InvalidInput as exc:
        raise _explain(exc, password) from None


# --- map-reduce ---------------------------------------------------------------------------------
def plan_page_chunks(page_count: int, chunk_pages: int) -> list[list[int]]:
    """``[[first, last], ...]`` 1-based inclusive page ranges of at most ``chunk_pages`` pages."""
    size = max(1, int(chunk_pages))
    return [[first, min(first + size - 1, page_count)] for first in range(1, page_count + 1, size)]


def summarize_pages_once(engine: Engine, pages: list[tuple[int, str]]) -> DocumentSummary | None:
    """One chunk's summary; None when its pages have no text (no model is asked to invent)."""
    if not any(text.strip() for _, text in pages):
        return None
    return engine.summarize_pages(pages, first_page_abstract=pages[0][0] == 1)


def chunk_headings(handle: BinaryIO, first: int, last: int, *, password: str | None) -> list[dict]:
    """Section headings ``[{title, page}]`` of one chunk's pages, from the layout (may be [])."""
    handle.seek(0)
    return pdftools.headings(handle, first=first, last=last, password=password)


def combine(
    engine: Engine,
    parts: list[DocumentSummary | None],
    document: dict,
    *,
    allow_no_text: bool,
    uri: str,
    headings: list[dict] | None = None,
) -> DocumentSummary:
    """Reduce the chunk summaries (in page order) into the document's summary.

    No text on any page means a scanned PDF: an error, unless ``allow_no_text``, when the
    summary says so (``status: "no_text"``) and carries only what the metadata knows.
    Title and authors are the document's (metadata weighed against the first page's layout,
    :func:`marginalia.tools.pdf.pdf_info`) when it has them, the engine's otherwise;
    ``sections`` come from the layout's ``headings`` of every chunk.
    """
    page_count = int(document["page_count"])
    readable = [p for p in parts if p is not None]
    if not readable:
        if not allow_no_text:
            raise UnsupportedInput(
                f"{uri}: no text layer on any of its {page_count} page(s) (a scanned PDF?): OCR it first, "
                'or pass --allow-no-text to record a summary with status "no_text"',
                uri=uri,
            )
        return DocumentSummary(
            title=document.get("title"),
            authors=list(document.get("authors") or []),
            summary="",
            page_count=page_count,
            status="no_text",
        )
    if len(readable) == 1:
        summary = readable[0].model_copy(update={"page_count": page_count})
    else:
        summary = engine.merge_summaries(readable, page_count)
    updates: dict = {"page_count": page_count}
    if document.get("title"):
        updates["title"] = document["title"]
    if document.get("authors"):
        updates["authors"] = list(document["authors"])
    found = pdftools.sections(headings or [], page_count)
    if found:
        updates["sections"] = [Section.model_validate(s) for s in found]
    return summary.model_copy(update=updates)


def _source_and_password(state: dict, runtime) -> tuple:
    r = rails(runtime)
    return r, state["source"], password_of(runtime)


def plan(state: dict, runtime) -> dict:
    """Open the PDF once (every bad-file error surfaces here) and cut it into page ranges."""
    r, source, password = _source_and_password(state, runtime)
    with open_copy(r.store, source) as handle:
        info = document_info(handle, password=password, name=source["uri"])
    chunk_pages = int(state.get("chunk_pages") or DEFAULT_CHUNK_PAGES)
    report(runtime, "pages", 0, 0, info["page_count"])
    return {"document": info, "chunks": plan_page_chunks(info["page_count"], chunk_pages), "partials": None}


def route_chunks(state: dict) -> list[Send]:
    """Fan out one ``summarize_chunk`` per page range (only numbers travel, never text)."""
    return [
        Send(
            "summarize_chunk",
            {"source": state["source"], "index": i, "first": a, "last": b, "pages": state["document"]["page_count"]},
        )
        for i, (a, b) in enumerate(state["chunks"])
    ]


def summarize_chunk(task: dict, runtime) -> dict:
    r, source, password = _source_and_password(task, runtime)
    with open_copy(r.store, source) as handle:
        pages = list(iter_page_range(handle, task["first"], task["last"], password=password, name=source["uri"]))
        headings = chunk_headings(handle, task["first"], task["last"], password=password)
    summary = summarize_pages_once(r.engine, pages)
    report(runtime, "pages", task["first"] - 1, task["last"], task.get("pages", task["last"]))
    return {
        "partials": [
            {
                "index": task["index"],
                "pages": [task["first"], task["last"]],
                "summary": summary.model_dump(mode="json") if summary else None,
                "headings": headings,
            }
        ]
    }


def merge(state: dict, runtime) -> dict:
    r = rails(runtime)
    ordered = sorted(state.get("partials") or [], key=lambda p: p["index"])
    parts = [DocumentSummary.model_validate(p["summary"]) if p["summary"] else None for p in ordered]
    headings = [h for p in ordered for h in p.get("headings") or []]
    summary = combine(
        r.engine,
        parts,
        state["document"],
        allow_no_text=bool(state.get("allow_no_text")),
        uri=state["source"]["uri"],
        headings=headings,
    )
    return {"proposal": summary.model_dump(mode="json"), "partials": None}


def _cited_pages(summary: dict) -> set[int]:
    return {
        p
        for item in (summary.get("key_points") or []) + (summary.get("entities") or [])
        for p in item.get("pages") or []
    }


def _pages_for_revision(store, source: dict, state: dict, password: str | None) -> list[tuple[int, str]]:
    cited, kept, used = _cited_pages(state["proposal"]), [], 0
    with open_copy(store, source) as handle:
        pages = iter_page_range(handle, 1, int(state["document"]["page_count"]), password=password, name=source["uri"])
        for number, text in pages:
            if text.strip() and used + len(text) <= (REVISE_CHARS if number in cited else REVISE_CHARS // 2):
                kept.append((number, text))
                used += len(text)
    return kept


def revise(state: dict, runtime) -> dict:
    """A new proposal from the reviewer's feedback, reading at most :data:`REVISE_CHARS` of text.

    Pages the summary cites come first (up to the whole budget), other pages in order fill
    half of it: a revision of a 1,000-page report neither reads it whole nor forgets its middle.
    """
    r, source, password = _source_and_password(state, runtime)
    proposal = state["proposal"]
    if password is None and state["document"].get("encrypted"):
        # A review answered in another process has no password unless MARGINALIA_PDF_PASSWORD
        # is set. Failing here would strand the thread past its interrupt, so the engine
        # revises from the summary and the feedback alone, and the log says why.
        _log.warning(
            "%s is encrypted and no password was given (%s): revising from the summary alone",
            source["uri"],
            PASSWORD_ENV,
        )
        kept = []
    else:
        kept = _pages_for_revision(r.store, source, state, password)
    revised = r.engine.revise_summary(DocumentSummary.model_validate(proposal), state["feedback"], kept)
    return {"proposal": revised.model_dump(mode="json")}


def payloads(state: dict, provenance: dict) -> dict[str, dict]:
    """The ``summary`` annotation: the approved summary (``status`` included) and provenance."""
    return {SUMMARY_ANNOTATION: {**state["approved"], "provenance": provenance}}


# --- the same steps in one call ----------------------------------------------------------------
def summarize_document(
    store,
    engine: Engine,
    source: dict,
    *,
    password: str | None = None,
    chunk_pages: int = DEFAULT_CHUNK_PAGES,
    allow_no_text: bool = False,
) -> DocumentSummary:
    """Summary of the PDF ``source`` (an ingest ``source`` dict), chunk after chunk, no review."""
    with open_copy(store, source) as handle:
        info = document_info(handle, password=password, name=source["uri"])
        parts, headings = [], []
        for first, last in plan_page_chunks(info["page_count"], chunk_pages):
            handle.seek(0)
            pages = list(iter_page_range(handle, first, last, password=password, name=source["uri"]))
            headings += chunk_headings(handle, first, last, password=password)
            parts.append(summarize_pages_once(engine, pages))
    return combine(engine, parts, info, allow_no_text=allow_no_text, uri=source["uri"], headings=headings)
