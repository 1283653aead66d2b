"""Clean a meeting transcript before anything is selected from it.

Spoken transcripts are full of what only makes sense in speech: fillers ("um", "you know"),
false starts ("th that's", "the {disfmarker} we need"), word repeats, backchannels ("yeah",
"mm-hmm", "okay"), audio and meta talk ("can you hear me", "you're muted", "next slide"),
laughter and noise tags. :func:`clean_transcript` turns the segments into
:class:`Utterance` s — cleaned sentences that remember their segment, speaker and merged turn —
and labels each one:

* ``content``: a statement worth reading;
* ``backchannel``: only acknowledgement words ("yeah, okay", "mm-hmm, sure"): kept, because an
  acceptance of a proposal is often exactly that, but never summarised or turned into a task;
* ``meta``: talk about the call itself (audio, screen sharing, slides), greetings and goodbyes.

A speaker's consecutive turns are merged (``turn``), also across another person's backchannel,
so "A: we could … B: mm-hmm A: … use rubber" is one turn of A's. Sentences are split by a small
rule set for speech (no pysbd: it is the slowest step on a long meeting and speech has few
abbreviations). Everything here is linear in the length of the text.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Literal

from ..schemas import Transcript
from . import lexrank
from . import text as nlp

__all__ = [
    "Utterance",
    "clean_text",
    "clean_transcript",
    "has_restart",
    "is_complete",
    "is_meta",
    "split_speech",
    "word_overlap",
]

Kind = Literal["content", "backchannel", "meta"]


@dataclass(frozen=True, slots=True)
class Utterance:
    """One cleaned sentence of a transcript and where it came from."""

    index: int  # position among all utterances
    segment: int  # global id of the transcript segment
    position: int  # index of that segment within the transcript (chunk) given
    turn: int  # merged turn: consecutive sentences of one speaker share it
    speaker: str | None
    text: str
    kind: Kind
    laughter: bool = False  # the segment has a laughter tag: what is said there may be a joke

    @property
    def is_question(self) -> bool:
        return self.text.rstrip().endswith("?")


# --- words ---------------------------------------------------------------------------------
#: Said to acknowledge, not to say something.
BACKCHANNEL_WORDS = frozenset(
    """yeah yes yep yup yah ya ok okay right alright all sure cool good great fine nice perfect exactly
    true indeed oh ah aha wow really hmm hm mm mhm mmm uh huh uh-huh mm-hmm um-hum no nope so well
    thanks thank you totally absolutely definitely correct agreed cheers whatever anyway yes
    i see got it makes sense sounds that's it is fair enough ehm eh em er erm""".split()
)
#: Fillers removed wherever they stand (multi-word ones as whole phrases between word boundaries).
_FILLER_PHRASES_RE = re.compile(
    r"(?:(?<=^)|(?<=[\s,.;:!?]))(?:you\s+know|i\s+mean|sort\s+of|kind\s+of(?=\s+(?:a|an|the|like|just|really|\w+ly|\w+ing)\b)|"
    r"i\s+guess|let's\s+see|you\s+see|like|basically|actually|literally|i\s+dunno)\s*,\s*",
    re.IGNORECASE,
)
_INNER_FILLER_RE = re.compile(
    r"(?<![\w'-])(?:you\s+know|i\s+mean|sort\s+of|kind\s+of|i\s+dunno)(?![\w'-])(?=\s*(?:[,.?!]|\s+(?:i|we|you|it|the|that|this|they|he|she|a|an|uh|um|if|so|and|but)\b))",
    re.IGNORECASE,
)
#: Discourse markers opening a sentence ("Okay, so, um, ..."): stripped, repeatedly.
_LEADING_MARKERS_RE = re.compile(
    r"^(?:(?:so|okay|ok|well|yeah|yes|right|alright|now|and|but|um|uh|oh|mm|hmm|anyway|then|ehm|eh|like|also|see)"
    r"(?:\s*[,.]\s*|\s+))+",
    re.IGNORECASE,
)
#: Tags closing a sentence (", right?", ", yeah.", ", or whatever").
_TRAILING_TAGS_RE = re.compile(
    r"(?:\s*,?\s*(?:right|yeah|okay|ok|you\s+know|or\s+whatever|or\s+something|and\s+so\s+on|and\s+stuff|or\s+so|i\s+think|i\s+guess|anyway|as\s+well|no))+\s*([.?!])?\s*$",
    re.IGNORECASE,
)
#: Noise, laughter and transcriber tags in the common transcript conventions (not ``[PERSON3]``).
_NOISE_RE = re.compile(
    r"[\[(<{]\s*/?\s*(?:laugh\w*|chuckl\w*|noise|inaudible|unintelligible|crosstalk|music|silence|cough\w*|"
    r"applause|breath\w*|sigh\w*|pause|static|vocalsound|gap|nonvocalsound|other|unclear|"
    r"background\s+\w+|no\s+audio|audio\s+\w+)\s*/?\s*[\])>}]",
    re.IGNORECASE,
)
_UNINTELLIGIBLE_RE = re.compile(r"@+(?:\s*@+)*|\bxx+\b")  # ICSI's "@ @", "xxx"
_LAUGH_RE = re.compile(r"[\[(<{]\s*/?\s*(?:laugh\w*|chuckl\w*)|\bhaha\b|\blol\b", re.IGNORECASE)
#: An abandoned start before a restart marker: "the {disfmarker} we need" -> "we need".
_RESTART_RE = re.compile(r"(?:^|(?<=[.?!,;]))[^.?!,;{}]{0,40}\{\s*disfmarker\s*\}", re.IGNORECASE)
#: Talk about the call or the room, greetings and goodbyes: never minutes material.
_META_RE = re.compile(
    r"\b(?:can|could)\s+(?:you|everyone|everybody|anyone|all\s+of\s+you|people)\s+(?:\w+\s+)?(?:hear|see)\s+(?:me|us|my\s+screen|the\s+screen|it|this)\b"
    r"|\b(?:do|did)\s+you\s+(?:hear|see)\s+(?:me|us|my\s+screen)\b"
    r"|\bare\s+you\s+(?:there|still\s+there|with\s+us|back)\b"
    r"|\b(?:you(?:'re| are)|i(?:'m| am)|he(?:'s| is)|she(?:'s| is)|we(?:'re| are))\s+(?:still\s+)?(?:on\s+)?mute[d]?\b"
    r"|\b(?:unmute|muted|my\s+mic(?:rophone)?|your\s+mic(?:rophone)?|the\s+mic(?:rophone)?|microphones?|headset|echo|breaking\s+up|bad\s+connection|lagging)\b"
    r"|\b(?:share|sharing|stop\s+sharing)\s+(?:\w+\s+){0,2}screen\b|\bscreen\s*shar\w*\b"
    r"|\b(?:next|previous|last)\s+slide\b|\bslide\s+(?:number\s+)?\w+\s*(?:please)?$"
    r"|\bcan\s+you\s+repeat\b|\bi\s+(?:can't|cannot|couldn't)\s+(?:hear|see)\b|\bhear\s+me\s+(?:now|okay|ok)\b"
    r"|\b(?:hello|hi|hey)\s+(?:everyone|everybody|all|guys|there)\b|^(?:hi|hello|hey|bye|goodbye|bye-bye)\b"
    r"|\b(?:good\s+(?:morning|afternoon|evening|night)|see\s+you|have\s+a\s+(?:nice|good|great)\s+(?:day|weekend|evening)|thanks?\s+(?:you\s+)?(?:all|everyone|everybody|a\s+lot|very\s+much)|thank\s+you\s+(?:all|everyone|everybody|very\s+much))\b"
    r"|\b(?:recording|the\s+recording)\s+(?:is\s+)?(?:on|started|running)\b|\bturn\s+(?:on|off)\s+(?:the\s+)?(?:camera|video|recording)\b"
    r"|\b(?:joined|joining|dropped\s+out|left\s+the\s+call|rejoin)\b",
    re.IGNORECASE,
)
_SUBORDINATORS = frozenset("if when because although though since whether unless while whereas".split())
#: Words a sentence cannot end on and be complete.
_DANGLING = frozenset(
    """the a an to of and or but with for that which who if is are was were be been my your our their
    his her its this these those than then so because as at by from in on into about like um uh i we
    you they he she it would could should will can do does did have has had not very just also any some
    what where when how why there""".split()
)
_FRAGMENT_RE = re.compile(r"(?<![\w'-])([a-z]{1,6})\s+(?=(\1[a-z]+))", re.IGNORECASE)
_LONE_LETTER_RE = re.compile(r"(?<![\w'-])[b-z](?![\w'-])(?![.)])")
_ABANDONED_RE = re.compile(r"\s*(?:-|–|—|\.\.\.|…)\s*[.?!]?\s*$")
#: Sentence ends in speech: ., !, ? (or … ) followed by a space and the next sentence, unless the
#: word before is an abbreviation. Dots inside numbers or words ("1.30", "e.g") never split.
_SPLIT_RE = re.compile(r"(?<=[.!?…])[\"')\]]*\s+(?=[\"'(\[]?[A-Za-z0-9\[(])")
_ABBREVIATIONS = frozenset("mr mrs ms dr prof st vs etc inc ltd jr sr no fig approx e.g i.e cf al".split())


def split_speech(text: str) -> list[str]:
    """Sentences of a turn of speech (rule-based, linear)."""
    text = text.strip()
    if not text:
        return []
    out: list[str] = []
    start = 0
    for m in _SPLIT_RE.finditer(text):
        head = text[start : m.start()].rstrip()
        last = head.rsplit(None, 1)[-1].rstrip(".").lower() if head else ""
        if last in _ABBREVIATIONS or (len(last) == 1 and last.isalpha() and head.endswith(".")):
            continue
        out.append(head)
        start = m.end()
    tail = text[start:].strip()
    if tail:
        out.append(tail)
    return [s for s in out if s]


#: Short words that are words (the stop list also holds letters and "th", "nd", "rd").
_REAL_WORDS = (
    frozenset(w for w in lexrank.ENGLISH_STOP_WORDS if len(w) > 1)
    - set("th nd rd qv eg ie un et ex re co com edu sup viz que non".split())
) | {"a", "i"}


def _is_fragment(match: re.Match) -> bool:
    token = match.group(1).lower()
    return token not in _REAL_WORDS and token not in BACKCHANNEL_WORDS


def _drop_false_starts(text: str) -> str:
    # "firs first", "th that's", "wh why": a short non-word that the next word starts with
    text = _FRAGMENT_RE.sub(lambda m: "" if _is_fragment(m) else m.group(0), text)
    # a stray lower-case letter ("y your", "n I'm") that is not a word
    return _LONE_LETTER_RE.sub("", text)


def clean_text(text: str) -> str:
    """One segment's text without speech-only material (sentence punctuation kept)."""
    if not text:
        return ""
    t = " ".join(text.split())
    t = _NOISE_RE.sub(" ", t)
    t = _UNINTELLIGIBLE_RE.sub(" ", t)
    t = _RESTART_RE.sub(" ", t)
    t = nlp.clean_disfluencies(t)
    t = _FILLER_PHRASES_RE.sub(" ", t)
    t = _INNER_FILLER_RE.sub(" ", t)
    t = _drop_false_starts(t)
    t = nlp.clean_disfluencies(t)  # repeats and punctuation the removals above exposed
    return t


def _tidy_sentence(sentence: str) -> str:
    s = _LEADING_MARKERS_RE.sub("", sentence.strip())
    end = s[-1] if s and s[-1] in ".?!" else ""
    head, tail = s[:-80], s[-80:]  # tags close a sentence: look at its end only (linear)
    s = (head + _TRAILING_TAGS_RE.sub(lambda m: m.group(1) or "", tail)).strip()
    s = re.sub(r"^[\s,.;:-]+", "", s)
    s = re.sub(r"[\s,;:-]+([.?!])?$", lambda m: m.group(1) or "", s)
    if s and s[-1] not in ".?!":
        s += end or "."
    return s[:1].upper() + s[1:] if s else s


#: Every _META_RE alternative contains one of these: a cheap test first.
_META_HINTS = re.compile(
    r"hear|see|mute|mic|phone|headset|echo|break|connect|lag|screen|shar|slide|repeat|hello|hi\b|hey|bye|morning|"
    r"afternoon|evening|night|thank|record|camera|video|join|drop|left|there|back|with\s+us",
    re.IGNORECASE,
)


def is_meta(text: str) -> bool:
    """Talk about the call itself (audio, screen, slides), a greeting or a goodbye."""
    return bool(_META_HINTS.search(text)) and bool(_META_RE.search(text))


def _kind(raw: str, tidy: str) -> Kind:
    if is_meta(raw):
        return "meta"
    tokens = [w.lower() for w in nlp.words(tidy or raw)]
    if not tokens or all(w in BACKCHANNEL_WORDS for w in tokens) or (len(tokens) <= 2 and not _has_content(tokens)):
        return "backchannel"
    return "content"


def _has_content(tokens: list[str]) -> bool:
    return any(len(w) > 3 and w not in BACKCHANNEL_WORDS for w in tokens)


def clean_transcript(transcript: Transcript, *, first_segment: int = 0) -> list[Utterance]:
    """The transcript's cleaned sentences, labelled, with merged turns (see the module doc).

    Segment ids are global: a chunk numbered from 0 is shifted by ``first_segment``.
    """
    segments = transcript.segments
    offset = first_segment if segments and segments[0].id < first_segment else 0
    out: list[Utterance] = []
    turn = -1
    turn_speaker: object = object()  # no speaker yet
    for position, seg in enumerate(segments):
        laughter = bool(_LAUGH_RE.search(seg.text))
        before = len(out)
        for raw in split_speech(clean_text(seg.text)):
            if _ABANDONED_RE.search(raw) and nlp.word_count(raw) < 6:
                continue  # "And -." an abandoned start
            tidy = _tidy_sentence(_ABANDONED_RE.sub(".", raw))
            kind = _kind(raw, tidy)
            if kind == "content" and seg.speaker != turn_speaker:
                turn += 1
                turn_speaker = seg.speaker
            elif turn < 0:
                turn = 0
                turn_speaker = seg.speaker
            text = tidy if kind == "content" else raw
            if nlp.words(text):
                out.append(
                    Utterance(len(out), seg.id + offset, position, max(turn, 0), seg.speaker, text, kind, laughter)
                )
        if laughter and len(out) == before and out:  # a laugh on its own: at what was just said
            out[-1] = dataclasses.replace(out[-1], laughter=True)
    return out


def is_complete(sentence: str) -> bool:
    """A sentence a reader can take as written: long enough, ends properly, no filler left."""
    tokens = nlp.words(sentence)
    if len(tokens) < 6 or not sentence.rstrip().endswith((".", "!")):
        return False
    if tokens[-1].lower() in _DANGLING or not sentence[:1].isupper():
        return False
    lowered = [w.lower() for w in tokens]
    if any(w in {"um", "uh", "uhm", "ehm", "hmm", "mm"} for w in lowered):
        return False
    if any(_is_fragment(m) for m in _FRAGMENT_RE.finditer(sentence)) or _LONE_LETTER_RE.search(sentence):
        return False
    if lowered[0] in _SUBORDINATORS and "," not in sentence:
        return False  # "If you think most people use it with their right hand." has no main clause
    content = [w for w in lowered if w not in BACKCHANNEL_WORDS and w not in _DANGLING and len(w) > 2]
    return len(content) >= 3


#: An article with no noun after it, then a new start: "is a the team has", "with a and if we",
#: "we have a my presentation".
_RESTART_INSIDE_RE = re.compile(
    r"(?<![\w'-])(?:[aA]n?|[tT]he)\s+"
    r"(?:an?|the|and|or|but|if|so|is|are|was|were|of|to|my|your|our|their|his|(?:we|I|you|they|he|she)(?:'\w+)?)"
    r"(?![\w'-])"
)


def has_restart(sentence: str) -> bool:
    """Does ``sentence`` abandon a phrase and start again inside it ("this thing is a we have got …")?"""
    return bool(_RESTART_INSIDE_RE.search(sentence))


def word_overlap(a: str, b: str) -> float:
    """Shared words (case-insensitive) over the shorter text's words: 1.0 when one says the other."""
    wa, wb = {w.lower() for w in nlp.words(a)}, {w.lower() for w in nlp.words(b)}
    if not wa or not wb:
        return float(a.strip().lower() == b.strip().lower())
    return len(wa & wb) / min(len(wa), len(wb))
