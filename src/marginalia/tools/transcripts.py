"""Transcripts in every format we meet, parsed into one :class:`~marginalia.schemas.Transcript`.

Formats (detected from the file name and the content):

* WebVTT (webvtt-py): ``<v Speaker>`` voice tags or ``Speaker: text`` cues;
* SRT (``srt``), with the same ``Speaker: text`` convention;
* Amazon Transcribe JSON: ``results.audio_segments`` when present, else ``results.items``
  grouped into turns by ``speaker_label`` (on the item or from ``results.speaker_labels``);
* plain text: ``Speaker: text`` lines (optionally after a ``[hh:mm:ss]`` stamp), continuation
  lines joining the previous turn; text without speakers gives one segment a paragraph;
* QMSum JSON (``transcript`` / ``meeting_transcripts`` of ``{speaker, text|content}``);
* ELITR JSON (``transcript_text`` with ``(PERSON6) text`` lines and continuation lines);
* our own ``{"segments": [...]}`` (what a ``transcript`` annotation holds, so it round-trips).

Every problem with the input becomes :class:`~marginalia.errors.InvalidInput` naming the file
and what is wrong with it; no library exception escapes. Input is bounded in size and every
pattern here is linear, so pathological files (one huge line) take bounded time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import PurePosixPath
from typing import Any

from ..errors import InvalidInput, ObjectNotFound
from ..schemas import Segment, Transcript

__all__ = [
    "MAX_SEGMENT_CHARS",
    "MAX_TRANSCRIPT_BYTES",
    "MEDIA_EXTENSIONS",
    "TRANSCRIPT_EXTENSIONS",
    "find_transcript_beside",
    "parse_transcript",
]

#: Recordings a transcript may sit beside (or that Amazon Transcribe accepts).
MEDIA_EXTENSIONS = frozenset(
    {".mp3", ".mp4", ".m4a", ".wav", ".flac", ".ogg", ".oga", ".opus", ".webm", ".amr", ".mov", ".mkv", ".aac"}
)
#: Transcript files, in the order :func:`find_transcript_beside` looks for them.
TRANSCRIPT_EXTENSIONS = (".vtt", ".srt", ".json", ".txt")
#: Larger than any real meeting transcript (a 10-hour meeting is ~1 MB of text).
MAX_TRANSCRIPT_BYTES = 32 * 1024 * 1024
#: A turn longer than this is split into several segments (same speaker, times interpolated) at
#: sentence ends, else between words, so no segment is unbounded: evidence ids stay precise and
#: every later step (sentence splitting, key phrases, chunking for map-reduce) works on bounded
#: pieces. ~650 words, several minutes of speech: no turn of the real meetings we test comes near.
MAX_SEGMENT_CHARS = 4000
#: Speaker names longer than this are not names (a colon inside a sentence, more likely).
_MAX_SPEAKER_CHARS = 60

_SPEAKER_LINE_RE = re.compile(
    r"^\s*(?:\[?(?P<ts>(?:\d{1,2}:)?\d{1,2}:\d{2}(?:[.,]\d{1,3})?)\]?\s*[-–]?\s*)?"  # noqa: UP031  (regex braces)
    r"(?P<speaker>[^\W\d_][\w .'’()@&/-]{0,%d}?)\s*:\s+(?P<text>\S.*)$" % (_MAX_SPEAKER_CHARS - 1)
)
_CUE_SPEAKER_RE = re.compile(
    r"^(?P<speaker>[^\W\d_][\w .'’-]{0,%d}?)\s*:\s+(?P<text>\S.*)$" % (_MAX_SPEAKER_CHARS - 1),  # noqa: UP031
    re.S,
)
_ELITR_LINE_RE = re.compile(r"^\((?P<speaker>[^()\n]{1,%d})\)\s*(?P<text>.*)$" % _MAX_SPEAKER_CHARS)  # noqa: UP031
_SRT_SNIFF_RE = re.compile(r"^\s*\d+\s*\r?\n\s*\d{1,2}:\d{2}:\d{2}[,.]\d{1,3}\s*-->", re.S)
_TIMESTAMP_RE = re.compile(r"^(?:(?P<h>\d{1,2}):)?(?P<m>\d{1,2}):(?P<s>\d{2})(?:[.,](?P<f>\d{1,3}))?$")
#: Words that end in a colon at the start of a line but name no one ("Note: ...").
_NOT_SPEAKERS = frozenset(
    {
        "note",
        "notes",
        "agenda",
        "action",
        "action items",
        "todo",
        "re",
        "subject",
        "date",
        "time",
        "http",
        "https",
        "summary",
        "decision",
        "decisions",
        "attendees",
        "location",
        "topic",
    }
)


# --- public API ------------------------------------------------------------------------------


def parse_transcript(data: bytes | str, *, filename: str) -> Transcript:
    """Parse a transcript file into segments with speakers and (when known) timestamps.

    Raises :class:`InvalidInput` naming ``filename`` for an empty file, bytes that are not
    UTF-8, malformed VTT/SRT/JSON, or a file in which no spoken text was found.
    """
    text = _decode(data, filename)
    fmt = _detect_format(text, filename)
    parser = _PARSERS[fmt]
    try:
        transcript = parser(text, filename)
    except InvalidInput:
        raise
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, RecursionError) as exc:
        raise InvalidInput(f"{filename}: not a valid {_FORMAT_NAMES[fmt]} transcript ({_reason(exc)})") from None
    if not transcript.segments:
        raise InvalidInput(f"{filename}: no spoken text found in this {_FORMAT_NAMES[fmt]} transcript")
    return transcript


def find_transcript_beside(store, bucket: str, key: str) -> str | None:
    """Key of a transcript stored next to the recording ``key`` (``<stem>.vtt/.srt/.json/.txt``).

    ``meetings/standup.mp4`` finds ``meetings/standup.vtt`` first, then ``.srt``, ``.json``,
    ``.txt``; ``None`` when there is none. A key that is itself a transcript is not returned.
    """
    path = PurePosixPath(key)
    stem = str(path.with_suffix("")) if path.suffix else key
    for ext in TRANSCRIPT_EXTENSIONS:
        candidate = stem + ext
        if candidate == key:
            continue
        try:
            store.head_object(bucket, candidate)
        except ObjectNotFound:
            continue
        return candidate
    return None


# --- decoding and detection ------------------------------------------------------------------

_FORMAT_NAMES = {
    "vtt": "WebVTT",
    "srt": "SRT",
    "json": "JSON",
    "speaker-lines": "plain-text",
}


def _reason(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return msg[:200]


def _decode(data: bytes | str, filename: str) -> str:
    if isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
        if len(raw) > MAX_TRANSCRIPT_BYTES:
            raise InvalidInput(
                f"{filename}: transcript is {len(raw)} bytes, more than the {MAX_TRANSCRIPT_BYTES} allowed"
            )
        try:
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InvalidInput(f"{filename}: not valid UTF-8 text (invalid byte at offset {exc.start})") from None
    elif isinstance(data, str):
        text = data[1:] if data.startswith("\ufeff") else data
        if len(text) > MAX_TRANSCRIPT_BYTES:
            raise InvalidInput(f"{filename}: transcript is longer than {MAX_TRANSCRIPT_BYTES} characters")
    else:
        raise InvalidInput(f"{filename}: expected the file's bytes or text, got {type(data).__name__}")
    if "\x00" in text:
        raise InvalidInput(f"{filename}: contains NUL characters; not a text transcript")
    if not text.strip():
        raise InvalidInput(f"{filename}: the file is empty")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _detect_format(text: str, filename: str) -> str:
    ext = PurePosixPath(filename).suffix.lower()
    head = text.lstrip()[:64]
    if ext == ".vtt" or head.startswith("WEBVTT"):
        return "vtt"
    if ext == ".srt" or _SRT_SNIFF_RE.match(text[:200]):
        return "srt"
    if ext == ".json" or head[:1] in "{[" and _looks_like_json(text):
        return "json"
    return "speaker-lines"


def _looks_like_json(text: str) -> bool:
    stripped = text.strip()
    return (stripped[:1], stripped[-1:]) in (("{", "}"), ("[", "]"))


# --- helpers ---------------------------------------------------------------------------------


def _clean_speaker(name: Any) -> str | None:
    if name is None:
        return None
    name = " ".join(str(name).split())
    return name[:_MAX_SPEAKER_CHARS] or None


#: One "fields set" for every Segment made here (all its fields are always given). Pydantic keeps
#: a set per model instance (728 of a segment's ~1,230 bytes): on a 25 MiB meeting, 110 MB per
#: copy of the transcript. Shared, it is never changed: adding a field it holds does nothing,
#: and ``model_copy`` copies it first.
_SEGMENT_FIELDS: set[str] = set(Segment.model_fields)


def segment(id: int, speaker: str | None, start: float | None, end: float | None, text: str) -> Segment:
    """A :class:`Segment` from values already of its types (no validation; the shared fields set)."""
    return Segment.model_construct(_SEGMENT_FIELDS, id=id, speaker=speaker, start=start, end=end, text=text)


def compact(transcript: Transcript) -> Transcript:
    """``transcript`` with every segment on the shared fields set (after validation, e.g. of a
    transcript read back from its annotation): what a long meeting keeps in memory for a run."""
    for seg in transcript.segments:
        if seg.__pydantic_fields_set__ == _SEGMENT_FIELDS:
            object.__setattr__(seg, "__pydantic_fields_set__", _SEGMENT_FIELDS)
    return transcript


def _build(
    rows: Iterable[tuple[str | None, float | None, float | None, str]],
    *,
    source_format: str,
    language: str | None = None,
) -> Transcript:
    """A Transcript from ``(speaker, start, end, text)`` rows; empty texts are dropped."""
    segments: list[Segment] = []
    speakers: dict[str, str] = {}
    for speaker, start, end, text in rows:
        text = " ".join(str(text).split())
        if not text:
            continue
        speaker = _clean_speaker(speaker)
        if speaker:
            speaker = speakers.setdefault(speaker, speaker)  # one string per speaker, not per line
        for piece_start, piece_end, piece in _bounded_pieces(text, start, end):
            segments.append(
                segment(len(segments), speaker, _float_or_none(piece_start), _float_or_none(piece_end), piece)
            )
    return Transcript(language=language, speakers=list(speakers), segments=segments, source_format=source_format)


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


_SENTENCE_END_RE = re.compile(r"[.!?…][\"'”’)\]]* ")


def _bounded_pieces(
    text: str, start: float | None, end: float | None, limit: int = MAX_SEGMENT_CHARS
) -> list[tuple[float | None, float | None, str]]:
    """``text`` (single-spaced) as pieces of at most ``limit`` characters, with their times.

    Cuts at the last sentence end in the second half of the window, else at the last space,
    else (one "word" longer than the window) inside it. Nothing is dropped: the pieces are
    ``text`` with a space removed at each cut between words (none at a cut inside a word). Times are interpolated by character position when both ends are known;
    otherwise the first piece keeps ``start`` and the last keeps ``end``.
    """
    if len(text) <= limit:
        return [(start, end, text)]
    spans: list[tuple[int, int]] = []
    pos = 0
    while len(text) - pos > limit:
        window_end = pos + limit
        cut = -1
        for m in _SENTENCE_END_RE.finditer(text, pos + limit // 2, window_end + 1):
            cut = m.end() - 1  # the space after the sentence
        if cut < 0:
            cut = text.rfind(" ", pos + limit // 2, window_end + 1)
        if cut < 0:
            spans.append((pos, window_end))
            pos = window_end
        else:
            spans.append((pos, cut))
            pos = cut + 1
    spans.append((pos, len(text)))
    out: list[tuple[float | None, float | None, str]] = []
    bounds = [a for a, _ in spans] + [len(text)]  # a piece lasts until the next one starts
    for i, (a, b) in enumerate(spans):
        piece_start: float | None
        piece_end: float | None
        if start is not None and end is not None and end >= start:
            piece_start = round(start + (end - start) * a / len(text), 3)
            piece_end = round(start + (end - start) * bounds[i + 1] / len(text), 3)
        else:
            piece_start = start if i == 0 else None
            piece_end = end if i == len(spans) - 1 else None
        out.append((piece_start, piece_end, text[a:b]))
    return out


def _split_speaker(text: str, pattern: re.Pattern[str] = _CUE_SPEAKER_RE) -> tuple[str | None, str]:
    m = pattern.match(text)
    if (
        m
        and m.group("speaker").strip().lower() not in _NOT_SPEAKERS
        and not m.group("speaker").lower().startswith("http")
    ):
        return m.group("speaker").strip(), m.group("text")
    return None, text


def _seconds(value: Any) -> float | None:
    """Seconds from a number, a numeric string, or an ``hh:mm:ss.mmm`` stamp."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"timestamp {value!r} is not a number")
    if isinstance(value, (int, float)):
        if value != value or value < 0 or value == float("inf"):
            raise ValueError(f"timestamp {value!r} is not a non-negative number")
        return float(value)
    s = str(value).strip()
    m = _TIMESTAMP_RE.match(s)
    if m:
        frac = m.group("f") or "0"
        return int(m.group("h") or 0) * 3600 + int(m.group("m")) * 60 + int(m.group("s")) + int(frac) / 10 ** len(frac)
    return _seconds(float(s))


# --- WebVTT ----------------------------------------------------------------------------------


def _parse_vtt(text: str, filename: str) -> Transcript:
    import webvtt
    from webvtt.errors import MalformedFileError

    try:
        vtt = webvtt.from_string(text)
    except MalformedFileError as exc:
        raise InvalidInput(f"{filename}: malformed WebVTT ({_reason(exc)})") from None

    def rows():
        for cue in vtt.captions:
            body = cue.text.strip()
            speaker = cue.voice
            if not speaker:
                speaker, body = _split_speaker(body)
            yield speaker, _ms(cue.start_time), _ms(cue.end_time), body

    return _build(rows(), source_format="vtt")


def _ms(ts) -> float:
    value = ts.in_milliseconds
    return (value() if callable(value) else value) / 1000.0


# --- SRT -------------------------------------------------------------------------------------


#: A cue timestamp whose minutes, seconds or milliseconds no clock shows (60+ minutes, 1000+ ms).
_SRT_OUT_OF_RANGE_RE = re.compile(
    r"(?m)\b\d+:(?:[6-9]\d|\d{3,}):\d+[,.]\d+|\b\d+:\d+:(?:[6-9]\d|\d{3,})[,.]\d+|\b\d+:\d+:\d+[,.]\d{4,}"
)


def _parse_srt(text: str, filename: str) -> Transcript:
    import srt

    try:
        subtitles = list(srt.parse(text, ignore_errors=False))
    except (srt.SRTParseError, ValueError) as exc:
        raise InvalidInput(f"{filename}: malformed SRT ({_reason(exc)})") from None
    bad = _SRT_OUT_OF_RANGE_RE.search(text)
    if bad:  # the parser reads 00:99:00,000 as 99 minutes: refuse what no clock shows
        raise InvalidInput(f"{filename}: malformed SRT (timestamp {bad.group().strip()} is out of range)")
    for sub in subtitles:
        if sub.end < sub.start:
            raise InvalidInput(f"{filename}: malformed SRT (subtitle {sub.index} ends before it starts)")

    def rows():
        for sub in subtitles:
            body = re.sub(r"<[^<>]{0,100}>", "", sub.content).strip()
            speaker, body = _split_speaker(body)
            yield speaker, sub.start.total_seconds(), sub.end.total_seconds(), body

    return _build(rows(), source_format="srt")


# --- plain "Speaker: text" lines --------------------------------------------------------------


def _parse_speaker_lines(text: str, filename: str) -> Transcript:
    turns: list[list] = []  # [speaker, start, lines]
    any_speaker = False
    for line in text.split("\n"):
        if not line.strip():
            if turns and turns[-1][2] and turns[-1][0] is None:
                turns.append([None, None, []])  # a blank line ends an unattributed paragraph
            continue
        m = _SPEAKER_LINE_RE.match(line)
        if m and m.group("speaker").strip().lower() not in _NOT_SPEAKERS:
            any_speaker = True
            turns.append([m.group("speaker").strip(), _seconds(m.group("ts")), [m.group("text")]])
        elif turns:
            turns[-1][2].append(line)
        else:
            turns.append([None, None, [line]])
    fmt = "speaker-lines" if any_speaker else "text"
    return _build(((sp, start, None, " ".join(lines)) for sp, start, lines in turns), source_format=fmt)


# --- JSON ------------------------------------------------------------------------------------


def _parse_json(text: str, filename: str) -> Transcript:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{filename}: malformed JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise InvalidInput(f"{filename}: malformed JSON (nested too deeply)") from None
    if isinstance(doc, list):
        return _from_turn_list(doc, filename, "json-turns")
    if not isinstance(doc, dict):
        raise InvalidInput(f"{filename}: JSON transcript must be an object or a list, got {type(doc).__name__}")
    if isinstance(doc.get("results"), dict):
        return _from_transcribe(doc["results"], filename)
    if "segments" in doc:
        return _from_segments(doc, filename)
    if "transcript_text" in doc:
        if not isinstance(doc["transcript_text"], str):
            raise InvalidInput(f"{filename}: 'transcript_text' must be a string")
        return _from_elitr(doc["transcript_text"])
    for field in ("transcript", "meeting_transcripts", "turns", "utterances"):
        if field in doc:
            return _from_turn_list(
                doc[field], filename, "qmsum-json" if field in ("transcript", "meeting_transcripts") else "json-turns"
            )
    raise InvalidInput(
        f"{filename}: JSON with no transcript in a known layout (expected 'segments', 'results' "
        "(Amazon Transcribe), 'transcript' (QMSum) or 'transcript_text' (ELITR))"
    )


def _require_list(value: Any, what: str, filename: str) -> list:
    if not isinstance(value, list):
        raise InvalidInput(f"{filename}: {what} must be a list, got {type(value).__name__}")
    return value


def _text_of(item: dict, filename: str, index: int) -> str:
    for field in ("text", "content", "transcript", "utterance"):
        if field in item:
            value = item[field]
            if value is None:
                return ""
            if not isinstance(value, str):
                raise InvalidInput(f"{filename}: turn {index}: {field!r} must be a string")
            return value
    raise InvalidInput(f"{filename}: turn {index} has no 'text'")


def _from_turn_list(turns: Any, filename: str, fmt: str) -> Transcript:
    turns = _require_list(turns, "the transcript", filename)

    def rows():
        for i, turn in enumerate(turns):
            if isinstance(turn, str):
                yield None, None, None, turn
                continue
            if not isinstance(turn, dict):
                raise InvalidInput(f"{filename}: turn {i} must be an object, got {type(turn).__name__}")
            speaker = turn.get("speaker", turn.get("speaker_label", turn.get("name")))
            yield (
                speaker,
                _seconds(turn.get("start", turn.get("start_time"))),
                _seconds(turn.get("end", turn.get("end_time"))),
                _text_of(turn, filename, i),
            )

    return _build(rows(), source_format=fmt)


def _from_segments(doc: dict, filename: str) -> Transcript:
    segments = _require_list(doc["segments"], "'segments'", filename)
    language = doc.get("language") if isinstance(doc.get("language"), str) else None
    fmt = doc.get("source_format")
    if not isinstance(fmt, str):
        fmt = "segments-json"
    base = _from_turn_list(segments, filename, fmt)
    base.language = language
    return base


def _from_elitr(text: str) -> Transcript:
    turns: list[list] = []
    for line in text.split("\n"):
        if not line.strip():
            continue
        m = _ELITR_LINE_RE.match(line.strip())
        if m:
            turns.append([m.group("speaker").strip(), [m.group("text")]])
        elif turns:
            turns[-1][1].append(line.strip())
        else:
            turns.append([None, [line.strip()]])
    return _build(((sp, None, None, " ".join(lines)) for sp, lines in turns), source_format="elitr-json")


def _from_transcribe(results: dict, filename: str) -> Transcript:
    """Amazon Transcribe output: audio segments if present, else items grouped into turns."""
    language = results.get("language_code") if isinstance(results.get("language_code"), str) else None
    audio_segments = results.get("audio_segments")
    if isinstance(audio_segments, list) and audio_segments:

        def rows():
            for i, seg in enumerate(audio_segments):
                if not isinstance(seg, dict):
                    raise InvalidInput(f"{filename}: audio_segments[{i}] must be an object")
                yield (
                    seg.get("speaker_label"),
                    _seconds(seg.get("start_time")),
                    _seconds(seg.get("end_time")),
                    _text_of(seg, filename, i),
                )

        return _build(rows(), source_format="transcribe-json", language=language)

    items = _require_list(results.get("items", []), "results.items", filename)
    speaker_at = _speaker_lookup(results.get("speaker_labels"), filename)
    turns: list[list] = []  # [speaker, start, end, tokens]
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise InvalidInput(f"{filename}: results.items[{i}] must be an object")
        alternatives = item.get("alternatives") or []
        if not isinstance(alternatives, list) or not alternatives or not isinstance(alternatives[0], dict):
            raise InvalidInput(f"{filename}: results.items[{i}] has no alternatives")
        content = alternatives[0].get("content", "")
        if not isinstance(content, str):
            raise InvalidInput(f"{filename}: results.items[{i}]: content must be a string")
        kind = item.get("type", "pronunciation")
        start, end = _seconds(item.get("start_time")), _seconds(item.get("end_time"))
        if kind == "punctuation":
            if turns:
                turns[-1][3].append(content)
                if content in ".?!" and turns[-1][0] is None and len(turns[-1][3]) > 40:
                    turns.append([None, None, None, []])  # no diarisation: break long runs at sentence ends
            continue
        speaker = item.get("speaker_label") or (speaker_at(start) if start is not None else None)
        if not turns or turns[-1][0] != speaker or not turns[-1][3]:
            if turns and not turns[-1][3]:
                turns.pop()
            turns.append([speaker, start, end, []])
        turns[-1][3].append(" " + content)
        if end is not None:
            turns[-1][2] = end
    return _build(
        ((sp, start, end, "".join(tokens)) for sp, start, end, tokens in turns),
        source_format="transcribe-json",
        language=language,
    )


def _speaker_lookup(labels: Any, filename: str) -> Callable[[float], str | None]:
    """Speaker at a time, from ``results.speaker_labels.segments`` (older Transcribe output)."""
    spans: list[tuple[float, float, str]] = []
    if isinstance(labels, dict):
        for seg in _require_list(labels.get("segments", []), "speaker_labels.segments", filename):
            if not isinstance(seg, dict) or not seg.get("speaker_label"):
                continue
            for item in seg.get("items") or [seg]:
                if isinstance(item, dict) and (start := _seconds(item.get("start_time"))) is not None:
                    end = _seconds(item.get("end_time"))
                    spans.append((start, start if end is None else end, str(seg["speaker_label"])))
    spans.sort()
    starts = [s for s, _, _ in spans]

    def speaker_at(t: float) -> str | None:
        import bisect

        i = bisect.bisect_right(starts, t) - 1
        if i >= 0 and spans[i][0] <= t <= max(spans[i][1], spans[i][0]):
            return spans[i][2]
        return None

    return speaker_at


_PARSERS: dict[str, Callable[[str, str], Transcript]] = {
    "vtt": _parse_vtt,
    "srt": _parse_srt,
    "json": _parse_json,
    "speaker-lines": _parse_speaker_lines,
}
