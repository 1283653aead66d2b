"""PPT outliner nodes: gather sources, draft and revise an outline, render and upload the deck.

* ``gather`` grounds the outline in its sources through their annotations: a source's
  ``summary`` (PDF summariser) or ``meeting_minutes`` (minutes agent) is used as it is. A PDF
  without one is summarised first (the summariser's own functions, no review) and the summary
  is written on it, so the next outline, search and people find it. Plain text sources are
  summarised but nothing is written on them. The deck's destination is checked here too, before
  any work: an existing object is only replaced with ``overwrite``.
* ``draft``/``revise`` ask the engine for an outline; review is the shared approve/edit/reject
  interrupt, every iteration kept in state and later in ``generation_context``.
* ``render`` turns the approved outline into a ``.pptx`` whose bytes depend on the outline
  only (zip timestamps pinned), uploads it and returns its ETag; re-running it after a crash
  finds the same bytes already there (made by this thread: object metadata says so) and
  uploads nothing, so a retry never leaves a second, different deck.
* ``annotate`` (the shared node) writes ``outline`` and ``generation_context`` on the deck just
  uploaded, with ``ObjectIfMatch`` on its ETag.
"""

from __future__ import annotations

import hashlib
import io
import re
import zipfile
from pathlib import PurePosixPath

from ..context import rails
from ..engines.offline_outline import MAX_SLIDES
from ..errors import (
    AnnotationNotFound,
    BucketNotFound,
    InvalidInput,
    ObjectNotFound,
    PreconditionFailed,
    UnsupportedInput,
)
from ..schemas import DocumentSummary, Minutes, Outline, SourceContext, SourceSection
from ..tools import large_annotations
from ..tools.slides import render_pptx, renderable
from ..uri import parse_uri
from .annotate import write_json
from .ingest import source_of
from .pdf import SUMMARY_ANNOTATION, password_of, summarize_document
from .provenance import provenance

__all__ = [
    "MAX_SLIDES",
    "PPTX_CONTENT_TYPE",
    "deck_bytes",
    "draft",
    "gather",
    "payloads",
    "render",
    "revise",
    "validate_request",
]

PPTX_CONTENT_TYPE = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
#: User metadata on the deck naming the thread that made it (what makes a re-render idempotent).
THREAD_METADATA = "marginalia-thread"
#: Largest plain-text source read whole (a text source is one "page" for the engine).
MAX_TEXT_SOURCE_BYTES = 2 * 1024 * 1024
TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".text"}
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def validate_request(request: str, out: str, slides: int | None, sources: list[str]) -> None:
    """Refuse a bad request before any thread starts (one clear line each)."""
    if not (request or "").strip():
        raise InvalidInput("the outline request is empty: say in words what the presentation is for")
    deck = parse_uri(out)
    if PurePosixPath(deck.key).suffix.lower() != ".pptx":
        raise InvalidInput(f"--out {out}: the deck must be a .pptx key")
    if slides is not None and not 1 <= int(slides) <= MAX_SLIDES:
        raise InvalidInput(f"--slides {slides}: ask for 1 to {MAX_SLIDES} slides")
    for uri in sources:
        parse_uri(uri)
        if uri == out:
            raise InvalidInput(f"--source {uri} is also --out: a deck cannot be grounded in itself")


# --- sources ----------------------------------------------------------------------------------
def _annotation(store, source: dict, name: str) -> dict | None:
    try:
        return large_annotations.get_json(
            store, source["bucket"], source["key"], name, version_id=source.get("version_id")
        )
    except AnnotationNotFound:
        return None


def context_from_summary(uri: str, summary: dict) -> SourceContext:
    doc = DocumentSummary.model_validate({k: v for k, v in summary.items() if k in DocumentSummary.model_fields})
    return SourceContext(
        uri=uri,
        kind="summary",
        title=doc.title,
        summary=doc.summary or doc.abstract,
        key_points=[k.text for k in doc.key_points],
        keywords=list(doc.keywords),
        sections=sections_with_points(doc),
    )


def sections_with_points(doc: DocumentSummary) -> list[SourceSection]:
    """The summary's sections in order, each with its key points.

    A key point that names its section goes there; otherwise, on a page two sections share, to
    the one with fewer points so far (the later one on a tie).
    """
    out = [SourceSection(title=s.title) for s in doc.sections]
    named = {_heading_words(s.title): i for i, s in enumerate(doc.sections)}
    for point in doc.key_points:
        if point.section and _heading_words(point.section) in named:
            out[named[_heading_words(point.section)]].points.append(point.text)
            continue
        page = min(point.pages or [0])
        holders = [i for i, s in enumerate(doc.sections) if page in s.pages]
        if holders:
            best = min(holders, key=lambda i: (len(out[i].points), -i))
            out[best].points.append(point.text)
    return out


def context_from_minutes(uri: str, minutes: dict) -> SourceContext:
    doc = Minutes.model_validate({k: v for k, v in minutes.items() if k in Minutes.model_fields})
    points = [f"Decision: {d.text}" for d in doc.decisions]
    points += [
        f"Action ({a.owner or 'unassigned'}{', due ' + a.due if a.due else ''}): {a.task}" for a in doc.action_items
    ]
    return SourceContext(
        uri=uri,
        kind="meeting_minutes",
        title=doc.title,
        summary=doc.summary,
        key_points=points,
        keywords=list(doc.topics),
    )


def _heading_words(title: str) -> str:
    """ "2. EKS compute costs" and "EKS compute costs" alike: the heading's words, lower case."""
    return " ".join(re.findall(r"[a-z]+", re.sub(r"^\s*[\dIVX.]+\s+", "", title).lower()))


def _is_pdf(store, source: dict) -> bool:
    if PurePosixPath(source["key"]).suffix.lower() == ".pdf" or (source.get("content_type") or "") == "application/pdf":
        return True
    chunks, _ = store.open_object(source["bucket"], source["key"], version_id=source.get("version_id"))
    head = next(iter(chunks), b"")
    close = getattr(chunks, "close", None)
    if close:
        close()
    return b"%PDF-" in head[:1024]


def ground(store, engine, uri: str, *, config: dict, password: str | None) -> tuple[dict, SourceContext]:
    """One source's record for ``generation_context`` and what the engine is told about it."""
    parsed = parse_uri(uri)
    source = source_of(store.head_object(parsed.bucket, parsed.key))
    record = {"uri": uri, "etag": source["etag"], "version_id": source.get("version_id")}
    for name, make in ((SUMMARY_ANNOTATION, context_from_summary), ("meeting_minutes", context_from_minutes)):
        found = _annotation(store, source, name)
        if found is not None:
            return {**record, "kind": name, "annotation": name, "origin": "annotation"}, make(uri, found)
    if _is_pdf(store, source):
        summary = summarize_document(store, engine, source, password=password)
        payload = {
            **summary.model_dump(mode="json"),
            "provenance": provenance(config=config, engine=engine, agent="pdf_summary", source_etag=source["etag"]),
        }
        write_json(store, source, SUMMARY_ANNOTATION, payload)
        return (
            {**record, "kind": SUMMARY_ANNOTATION, "annotation": SUMMARY_ANNOTATION, "origin": "summarised"},
            context_from_summary(uri, payload),
        )
    if PurePosixPath(source["key"]).suffix.lower() in TEXT_SUFFIXES:
        if source["size"] > MAX_TEXT_SOURCE_BYTES:
            raise UnsupportedInput(
                f"--source {uri}: a text source of {source['size']} bytes is over the "
                f"{MAX_TEXT_SOURCE_BYTES} bytes read whole; save it as a PDF or split it",
                uri=uri,
            )
        data, _ = store.get_object(source["bucket"], source["key"], version_id=source.get("version_id"))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidInput(f"--source {uri}: a text source must be UTF-8", uri=uri) from None
        if not text.strip():
            raise InvalidInput(f"--source {uri}: the text source is empty", uri=uri)
        summary = engine.summarize_pages([(1, text)], first_page_abstract=True)
        context = context_from_summary(uri, summary.model_dump(mode="json")).model_copy(update={"kind": "text"})
        return {**record, "kind": "text", "annotation": None, "origin": "read"}, context
    raise UnsupportedInput(
        f"--source {uri} has no summary or meeting_minutes annotation and is neither a PDF nor a text file: "
        f"run `marginalia summarize` or `marginalia minutes` on it first",
        uri=uri,
    )


def check_destination(store, out: str, *, overwrite: bool, thread_id: str) -> None:
    deck = parse_uri(out)
    try:
        info = store.head_object(deck.bucket, deck.key)
    except (ObjectNotFound, BucketNotFound):
        if not store.bucket_exists(deck.bucket):
            raise InvalidInput(f"--out {out}: bucket {deck.bucket} does not exist") from None
        return
    if not overwrite and info.metadata.get(THREAD_METADATA) != thread_id:
        raise InvalidInput(f"--out {out} already exists: pass --overwrite to replace it, or choose another key")


def gather(state: dict, runtime, config) -> dict:
    r = rails(runtime)
    thread_id = config["configurable"]["thread_id"]
    check_destination(r.store, state["object_uri"], overwrite=bool(state.get("overwrite")), thread_id=thread_id)
    records, contexts = [], []
    for uri in state.get("source_uris") or []:
        record, context = ground(r.store, r.engine, uri, config=config, password=password_of(runtime))
        records.append(record)
        contexts.append(context.model_dump(mode="json"))
    return {"sources": records, "contexts": contexts}


# --- outline ----------------------------------------------------------------------------------
def _contexts(state: dict) -> list[SourceContext]:
    return [SourceContext.model_validate(c) for c in state.get("contexts") or []]


def _counted(outline: Outline) -> dict:
    return outline.model_copy(update={"slide_count": len(outline.slides)}).model_dump(mode="json")


def draft(state: dict, runtime) -> dict:
    outline = rails(runtime).engine.draft_outline(
        state["request"], slides=state.get("slides"), sources=_contexts(state)
    )
    return {"proposal": _counted(outline)}


def revise(state: dict, runtime) -> dict:
    outline = rails(runtime).engine.draft_outline(
        state["request"],
        slides=state.get("slides"),
        sources=_contexts(state),
        feedback=state["feedback"],
        previous=Outline.model_validate(state["proposal"]),
    )
    return {"proposal": _counted(outline)}


# --- the deck ---------------------------------------------------------------------------------
def deck_bytes(outline: Outline) -> bytes:
    """The .pptx of ``outline``, byte for byte the same for the same outline.

    python-pptx stamps each zip entry with the current time; entries are re-packed with a fixed
    timestamp (content, order and compression unchanged) so the body, and its ETag, depend on
    the outline only.
    """
    raw = io.BytesIO()
    render_pptx(outline, path_or_file=raw)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(raw.getvalue())) as src, zipfile.ZipFile(out, "w") as dst:
        for entry in src.infolist():
            pinned = zipfile.ZipInfo(entry.filename, date_time=_ZIP_EPOCH)
            pinned.compress_type = entry.compress_type
            pinned.external_attr = entry.external_attr
            dst.writestr(pinned, src.read(entry.filename))
    return out.getvalue()


def upload_deck(store, out: str, body: bytes, *, thread_id: str, overwrite: bool):
    """Put the deck unless this thread's identical deck is already there; the object's info."""
    deck = parse_uri(out)
    md5 = hashlib.md5(body).hexdigest()
    try:
        current = store.head_object(deck.bucket, deck.key)
    except ObjectNotFound:
        current = None
    ours = current is not None and current.metadata.get(THREAD_METADATA) == thread_id
    if ours and current.etag.strip('"') == md5:
        return current
    if current is not None and not (ours or overwrite):
        raise InvalidInput(
            f"--out {out} appeared while the outline was reviewed: nothing was written; "
            "pass --overwrite to replace it, or choose another key"
        )
    condition = {"if_match": current.etag} if current is not None else {"if_none_match": True}
    try:
        return store.put_object(
            deck.bucket,
            deck.key,
            body,
            content_type=PPTX_CONTENT_TYPE,
            metadata={THREAD_METADATA: thread_id, "marginalia-agent": "ppt_outline"},
            **condition,
        )
    except PreconditionFailed:
        raise PreconditionFailed(
            f"{out} was written by someone else while the deck was uploaded: nothing was "
            "annotated; run the outline again",
            uri=out,
        ) from None


def render(state: dict, runtime, config) -> dict:
    """Render the approved outline as it will read in the deck, upload it, remember its ETag."""
    r = rails(runtime)
    deck = renderable(Outline.model_validate(state["approved"]))
    info = upload_deck(
        r.store,
        state["object_uri"],
        deck_bytes(deck),
        thread_id=config["configurable"]["thread_id"],
        overwrite=bool(state.get("overwrite")),
    )
    return {"approved": _counted(deck), "source": source_of(info)}


def payloads(state: dict, prov: dict) -> dict[str, dict]:
    """``outline`` (what the deck says) and ``generation_context`` (how it came to say it)."""
    approved = state["approved"]
    iterations = [
        {
            "outline": it.get("proposal"),
            "feedback": it.get("feedback"),
            "action": it.get("action"),
            "at": it.get("at"),
            **({"approved": it["approved"]} if it.get("approved") else {}),
            **({"reviewer": it["reviewer"]} if it.get("reviewer") else {}),
        }
        for it in state.get("iterations") or []
    ]
    return {
        "outline": {
            "outline": approved,
            "topics": approved.get("topics", []),
            "slide_count": approved["slide_count"],
            "provenance": prov,
        },
        "generation_context": {
            "request": state["request"],
            "slides_requested": state.get("slides"),
            "sources": state.get("sources") or [],
            "iterations": iterations,
            "engine": prov["engine"],
            "model": prov["model"],
            "provenance": prov,
        },
    }
