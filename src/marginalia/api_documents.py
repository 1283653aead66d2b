"""Python API of the document agents: summarise a PDF, outline a deck.

>>> import marginalia
>>> s = marginalia.summarize("s3://b/reports/q3.pdf")                 # writes the summary
>>> s.status, s.proposal["key_points"][0]                             # ('done', {...})
>>> r = marginalia.outline("Q3 cost review for the platform team", slides=10,
...                        out="s3://b/decks/q3.pptx", sources=["s3://b/reports/q3.pdf"])
>>> r.status, r.proposal["slides"][0]["title"]                        # ('waiting', ...)
>>> marginalia.resume(r.thread_id, action="approve")                  # uploads + annotates the deck

Each function has an async twin (``asummarize``, ``aoutline``). As in :mod:`marginalia.api`,
both share one core: the run is prepared by :mod:`marginalia.runtime` (in a worker thread for
the twin) and only the graph call differs. A PDF password goes into the run's context, never
into the thread's state, checkpoints or annotations.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from .api import On, adriven, driven, starter_for
from .engines.base import Engine
from .nodes.pdf import DEFAULT_CHUNK_PAGES
from .runtime import Observer, Run, RunResult
from .storage.base import Store

__all__ = ["aoutline", "asummarize", "outline", "summarize"]


def _summary_run(
    uri, *, engine, review, password, allow_no_text, thread_id, store, chunk_pages, on="local"
) -> Run | RunResult:
    inputs = {"allow_no_text": bool(allow_no_text), "chunk_pages": int(chunk_pages or DEFAULT_CHUNK_PAGES)}
    return starter_for(on)(
        "pdf_summary",
        uri,
        inputs,
        engine=engine,
        approve=not review,
        thread_id=thread_id,
        store=store,
        password=password,
    )  # the agent's check_input refuses a file that is not a PDF before anything is written


def _outline_run(
    request, *, out, slides, sources, engine, approve, overwrite, thread_id, store, password, on="local"
) -> Run | RunResult:
    from .nodes.outline import validate_request

    sources = [str(s) for s in (sources or ())]
    validate_request(request, out, slides, sources)
    inputs = {
        "request": request.strip(),
        "slides": int(slides) if slides is not None else None,
        "source_uris": sources,
        "overwrite": bool(overwrite),
    }
    return starter_for(on)(
        "ppt_outline",
        out,
        inputs,
        engine=engine,
        approve=approve,
        thread_id=thread_id,
        store=store,
        password=password,
    )  # the agent's check_input refuses an occupied --out before anything is written


def summarize(
    uri: str,
    *,
    engine: Engine | str | None = None,
    review: bool = False,
    password: str | None = None,
    allow_no_text: bool = False,
    thread_id: str | None = None,
    store: Store | str | None = None,
    chunk_pages: int | None = None,
    on_update: Observer | None = None,
    on: On = "local",
) -> RunResult:
    """Summary of the PDF ``uri``, written as its ``summary`` annotation.

    Without ``review`` the run goes through to the annotation (``status="done"``); with it, it
    stops for approval (``status="waiting"``; answer with :func:`marginalia.resume`).
    ``password`` opens an encrypted PDF (kept out of every stored byte; a resumed run that
    must read the PDF again takes it from ``MARGINALIA_PDF_PASSWORD``). ``allow_no_text``
    records a scanned PDF as ``status: "no_text"`` instead of failing. ``chunk_pages`` is the
    map step's page count (default 12).
    """
    run = _summary_run(
        uri,
        engine=engine,
        review=review,
        password=password,
        allow_no_text=allow_no_text,
        thread_id=thread_id,
        store=store,
        chunk_pages=chunk_pages,
        on=on,
    )
    return driven(run, on_update)


async def asummarize(
    uri: str,
    *,
    engine: Engine | str | None = None,
    review: bool = False,
    password: str | None = None,
    allow_no_text: bool = False,
    thread_id: str | None = None,
    store: Store | str | None = None,
    chunk_pages: int | None = None,
    on_update: Observer | None = None,
    on: On = "local",
) -> RunResult:
    """Async twin of :func:`summarize`."""
    run = await asyncio.to_thread(
        _summary_run,
        uri,
        engine=engine,
        review=review,
        password=password,
        allow_no_text=allow_no_text,
        thread_id=thread_id,
        store=store,
        chunk_pages=chunk_pages,
        on=on,
    )
    return await adriven(run, on_update)


def outline(
    request: str,
    *,
    out: str,
    slides: int | None = None,
    sources: Sequence[str] = (),
    engine: Engine | str | None = None,
    approve: bool = False,
    overwrite: bool = False,
    thread_id: str | None = None,
    store: Store | str | None = None,
    password: str | None = None,
    on_update: Observer | None = None,
    on: On = "local",
) -> RunResult:
    """A slide outline for ``request`` (grounded in ``sources``), then a .pptx at ``out``.

    Stops for approval (``status="waiting"``) unless ``approve=True``; on approval the deck is
    rendered, uploaded to ``out`` and annotated with ``outline`` and ``generation_context``.
    ``out`` is only replaced when it does not exist yet or with ``overwrite=True``.
    ``password`` opens encrypted PDF sources that must be summarised first.
    """
    run = _outline_run(
        request,
        out=out,
        slides=slides,
        sources=sources,
        engine=engine,
        approve=approve,
        overwrite=overwrite,
        thread_id=thread_id,
        store=store,
        password=password,
        on=on,
    )
    return driven(run, on_update)


async def aoutline(
    request: str,
    *,
    out: str,
    slides: int | None = None,
    sources: Sequence[str] = (),
    engine: Engine | str | None = None,
    approve: bool = False,
    overwrite: bool = False,
    thread_id: str | None = None,
    store: Store | str | None = None,
    password: str | None = None,
    on_update: Observer | None = None,
    on: On = "local",
) -> RunResult:
    """Async twin of :func:`outline`."""
    run = await asyncio.to_thread(
        _outline_run,
        request,
        out=out,
        slides=slides,
        sources=sources,
        engine=engine,
        approve=approve,
        overwrite=overwrite,
        thread_id=thread_id,
        store=store,
        password=password,
        on=on,
    )
    return await adriven(run, on_update)
