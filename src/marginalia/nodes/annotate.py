"""Annotate: write an agent's approved results on the object they were made from.

Agent-agnostic: an agent gives :func:`make_annotate_node` a function returning
``{annotation_name: payload}`` for the approved state; this node adds nothing but safety:

* every write carries ``ObjectIfMatch`` = the ETag read at ingest (``state["source"]["etag"]``),
  and the current ETag is checked first, so if the object changed since (a new recording was
  uploaded over it), the run stops with a message naming the object and NOTHING is written;
* every write is made once: a node repeated after a crash (its write landed, its checkpoint did
  not) finds the annotation it wrote — same ``provenance.thread_id``, same content — and writes
  nothing (:func:`write_json`; only ``provenance.created_at`` may differ, e.g. the transcript's);
* payloads over 1 MiB are split by :mod:`marginalia.tools.large_annotations`, never truncated.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from ..context import rails
from ..errors import AnnotationNotFound, MarginaliaError, ObjectChanged, ObjectNotFound
from .provenance import provenance

Payloads = Callable[[dict, dict], dict[str, dict]]


def changed_message(source: dict, now_etag: str | None) -> str:
    now = f"its ETag is now {now_etag}" if now_etag else "it was deleted"
    return (
        f"{source['uri']} changed after it was read (ETag {source['etag']}, {now}): nothing was written; "
        "run the agent again on the new version"
    )


def check_unchanged(store, source: dict) -> None:
    """Raise :class:`ObjectChanged` unless the object still has the ETag read at ingest."""
    try:
        info = store.head_object(source["bucket"], source["key"])
    except ObjectNotFound:
        raise ObjectChanged(changed_message(source, None), uri=source["uri"]) from None
    if info.etag != source["etag"]:
        raise ObjectChanged(changed_message(source, info.etag), uri=source["uri"])


def _comparable(doc: Any) -> Any:
    """``doc`` as stored (JSON round trip) with ``provenance.created_at`` set aside."""
    doc = json.loads(json.dumps(doc, ensure_ascii=False, default=str))
    if isinstance(doc, dict) and isinstance(doc.get("provenance"), dict):
        doc["provenance"] = {k: v for k, v in doc["provenance"].items() if k != "created_at"}
    return doc


def _thread_of(doc: Any) -> str | None:
    prov = doc.get("provenance") if isinstance(doc, dict) else None
    return prov.get("thread_id") if isinstance(prov, dict) else None


def already_written(store, source: dict, name: str, payload: dict) -> dict | None:
    """The written-annotation record of ``name`` if this thread already wrote this content on
    the source version (a repeated node), else None."""
    from ..tools import large_annotations

    thread_id = _thread_of(payload)
    if thread_id is None:
        return None
    try:
        head = store.get_annotation(source["bucket"], source["key"], name, version_id=source.get("version_id"))
        doc, parts = head.json(), 1
        if large_annotations.is_index(doc):
            parts = len(doc["part_names"])
            doc = large_annotations.get_json(
                store, source["bucket"], source["key"], name, version_id=source.get("version_id")
            )
    except (MarginaliaError, ValueError):  # none yet, or unreadable: write it
        return None
    if _thread_of(doc) != thread_id or _comparable(doc) != _comparable(payload):
        return None
    check_unchanged(store, source)  # it is on the version the node read, not a newer one
    return {"uri": source["uri"], "name": name, "etag": head.info.etag, "parts": parts}


def write_json(store, source: dict, name: str, payload: dict) -> dict:
    """Put ``payload`` as annotation ``name`` on the source version, conditioned on its ETag;
    nothing when this thread already wrote the same content there (:func:`already_written`)."""
    from ..tools import large_annotations

    done = already_written(store, source, name, payload)
    if done is not None:
        return done
    try:
        infos = large_annotations.put_json(
            store,
            source["bucket"],
            source["key"],
            name,
            payload,
            version_id=source.get("version_id"),
            if_match=source["etag"],
        )
    except (ObjectChanged, ObjectNotFound, AnnotationNotFound):
        check_unchanged(store, source)  # turns a lost race into the clear message
        raise
    # put_json returns the info of ``name`` first, then one per part when it had to split
    return {"uri": source["uri"], "name": name, "etag": infos[0].etag, "parts": max(1, len(infos) - 1)}


def make_annotate_node(*, agent: str, payloads: Payloads):
    """The annotate node of ``agent``; ``payloads(state, provenance) -> {name: payload}``."""

    def annotate(state: dict, runtime, config) -> dict:
        r = rails(runtime)
        source = state["source"]
        prov = provenance(
            config=config, engine=r.engine, agent=agent, source_etag=source["etag"], created_at=state.get("approved_at")
        )
        documents = payloads(state, prov)
        check_unchanged(r.store, source)
        written = [write_json(r.store, source, name, doc) for name, doc in documents.items()]
        return {"annotations": written}

    annotate.__name__ = f"annotate_{agent}"
    return annotate
