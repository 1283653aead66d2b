"""Transcript: get the words of a meeting and keep them in the ``transcript`` annotation.

Where the words come from, first match wins:

1. a transcript named by the caller (``--transcript``: a local path or an ``s3://`` URI);
2. the object itself, when it is a transcript (``.vtt``, ``.srt``, ``.json``, ``.txt``);
3. Amazon Transcribe, when the store is real S3 and the object is a recording;
4. a transcript stored beside the recording (``standup.mp4`` → ``standup.vtt`` ...).

The transcript is written as the ``transcript`` annotation of the object (split over several
annotations when above 1 MiB, never truncated), conditioned on the ETag read at ingest. State
only keeps a reference and a few counts, so checkpoints stay small whatever the meeting length;
later nodes get the segments from :func:`parsed_transcript`: the transcript this node parsed,
kept in the process (a resumed process reads and parses the annotation once, not once per chunk).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path, PurePosixPath

from ..context import rails
from ..errors import AnnotationNotFound, InvalidInput, ObjectChanged, ObjectNotFound, UnsupportedInput
from ..schemas import Transcript
from ..tools.transcripts import (
    MEDIA_EXTENSIONS,
    TRANSCRIPT_EXTENSIONS,
    compact,
    find_transcript_beside,
    parse_transcript,
)
from ..uri import parse_uri
from .annotate import changed_message, write_json
from .provenance import provenance

TRANSCRIPT_ANNOTATION = "transcript"


def _suffix(key: str) -> str:
    return PurePosixPath(key).suffix.lower()


def _named_path(where: str) -> Path:
    path = Path(where).expanduser()
    if not path.is_file():
        raise InvalidInput(f"transcript file {where} does not exist or is not a file")
    return path


def _read_named(store, where: str) -> tuple[bytes, str, str]:
    """Bytes, file name and description of a transcript given by the caller."""
    if where.startswith("s3://"):
        uri = parse_uri(where)
        data, _ = store.get_object(uri.bucket, uri.key)
        return data, uri.name, where
    path = _named_path(where)
    return path.read_bytes(), path.name, str(path)


def _transcribe(store, source: dict, clients) -> tuple[Transcript, str]:
    from ..tools.transcribe import transcribe_object

    transcript = transcribe_object(
        source["bucket"],
        source["key"],
        client=clients.get("transcribe"),
        s3_client=clients.get("s3") or getattr(store, "client", None),
    )
    return transcript, "amazon-transcribe"


def locate_transcript(store, source: dict, named: str | None) -> tuple[str, str | None]:
    """Where the words of ``source`` will come from (see the module docstring), without reading them.

    ``("named", where)``, ``("object", None)``, ``("transcribe", None)`` or ``("beside", key)``;
    raises the error that names what is missing. Checked before a thread starts (so bad input
    writes nothing) and used again by the node itself.
    """
    key, suffix = source["key"], _suffix(source["key"])
    if named:
        if named.startswith("s3://"):
            uri = parse_uri(named)
            store.head_object(uri.bucket, uri.key)  # ObjectNotFound names it
        else:
            _named_path(named)
        return "named", named
    if suffix in TRANSCRIPT_EXTENSIONS:
        return "object", None
    if suffix not in MEDIA_EXTENSIONS:
        raise UnsupportedInput(
            f"{source['uri']} is neither a recording ({', '.join(sorted(MEDIA_EXTENSIONS))}) nor a transcript "
            f"({', '.join(TRANSCRIPT_EXTENSIONS)}): pass --transcript FILE",
            uri=source["uri"],
        )
    if store.kind == "s3":
        return "transcribe", None
    beside = find_transcript_beside(store, source["bucket"], key)
    if beside is None:
        stem = PurePosixPath(key).stem
        raise UnsupportedInput(
            f"{source['uri']} is a recording and no transcript was found beside it "
            f"({', '.join(stem + e for e in TRANSCRIPT_EXTENSIONS)}): pass --transcript FILE, or use "
            "MARGINALIA_STORE=s3 to transcribe it with Amazon Transcribe",
            uri=source["uri"],
        )
    return "beside", beside


def obtain_transcript(store, source: dict, named: str | None, clients) -> tuple[Transcript, str]:
    """The transcript of ``source`` and where it came from (see the module docstring)."""
    where, detail = locate_transcript(store, source, named)
    if where == "named":
        assert detail is not None  # a named transcript comes with where it is
        data, filename, origin = _read_named(store, detail)
        return parse_transcript(data, filename=filename), origin
    if where == "object":
        data, _ = store.get_object(source["bucket"], source["key"], version_id=source.get("version_id"))
        return parse_transcript(data, filename=source["uri"]), source["uri"]
    if where == "transcribe":
        return _transcribe(store, source, clients)
    data, _ = store.get_object(source["bucket"], detail)
    origin = f"s3://{source['bucket']}/{detail}"
    return parse_transcript(data, filename=origin), origin


def transcript_node(state: dict, runtime, config) -> dict:
    r = rails(runtime)
    source = state["source"]
    transcript, origin = obtain_transcript(r.store, source, state.get("transcript_input"), r.clients)
    payload = transcript.model_dump(mode="json")
    payload["origin"] = origin
    payload["provenance"] = provenance(config=config, engine=r.engine, agent="minutes", source_etag=source["etag"])
    written = write_json(r.store, source, TRANSCRIPT_ANNOTATION, payload)
    del payload
    reference = {
        "annotation": TRANSCRIPT_ANNOTATION,
        "origin": origin,
        "segments": len(transcript.segments),
        "speakers": transcript.speakers,
        "language": transcript.language,
        "chars": sum(len(s.text) for s in transcript.segments),
        "source_format": transcript.source_format,
        "parts": written["parts"],
    }
    _remember(_cache_key(source, reference), transcript)  # the plan and the chunks read this, not the annotation
    return {"transcript": reference}


def load_transcript(store, source: dict) -> Transcript:
    """The transcript annotation of ``source`` (ObjectChanged if the object was replaced)."""
    from ..tools import large_annotations

    try:
        data = large_annotations.get_json(
            store, source["bucket"], source["key"], TRANSCRIPT_ANNOTATION, version_id=source.get("version_id")
        )
    except (AnnotationNotFound, ObjectNotFound):
        try:
            now = store.head_object(source["bucket"], source["key"]).etag
        except ObjectNotFound:
            now = None
        raise ObjectChanged(changed_message(source, now), uri=source["uri"]) from None
    return compact(Transcript.model_validate({k: v for k, v in data.items() if k in Transcript.model_fields}))


#: Parsed transcripts kept in this process (a few batch workers' meetings at once).
PARSED_KEPT = 4
_parsed: OrderedDict[tuple, Transcript] = OrderedDict()
_parsing: dict[tuple, threading.Lock] = {}
_parsed_lock = threading.Lock()


def parsed_transcript(store, source: dict, reference: dict | None) -> Transcript:
    """:func:`load_transcript`, read and parsed once for all the nodes and chunks of a run.

    Kept by the object version and ETag and the thread's ``transcript`` reference (origin, parts
    and counts, from :func:`transcript_node`): a replaced object or a transcript from elsewhere is
    another entry. Chunks started together wait for one read instead of each making its own.
    Without a reference (a state from before it existed) every call reads the annotation.
    """
    if reference is None:
        return load_transcript(store, source)
    key = _cache_key(source, reference)
    with _parsed_lock:
        if (hit := _parsed.get(key)) is not None:
            _parsed.move_to_end(key)
            return hit
        reading = _parsing.setdefault(key, threading.Lock())
    with reading:
        with _parsed_lock:
            hit = _parsed.get(key)
        if hit is None:
            hit = _remember(key, load_transcript(store, source))
            with _parsed_lock:
                _parsing.pop(key, None)
    return hit


def _cache_key(source: dict, reference: dict) -> tuple:
    return (
        source["bucket"],
        source["key"],
        source.get("version_id"),
        source.get("etag"),
        json.dumps(reference, sort_keys=True, default=str),
    )


def _remember(key: tuple, transcript: Transcript) -> Transcript:
    with _parsed_lock:
        _parsed[key] = transcript
        _parsed.move_to_end(key)
        while len(_parsed) > PARSED_KEPT:
            _parsed.popitem(last=False)
    return transcript
