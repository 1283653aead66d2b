"""Shared offline NLP: sentences, extractive ranking, key phrases, dates, transcript clean-up.

Everything here runs with no network and no model weights (see integration notes): pysbd splits
sentences by rules, LexRank (:mod:`marginalia.engines.lexrank`, numpy) ranks them, yake extracts key phrases with its bundled stop words, and dates are found by patterns and
resolved with python-dateutil. The offline engines for meetings and documents both build on it.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "DateMention",
    "due_date",
    "clean_disfluencies",
    "find_date_mentions",
    "find_dates",
    "keywords",
    "lexrank",
    "rank_sentences",
    "split_sentences",
    "summarize_to_budget",
    "word_count",
    "words",
]

# --- words and sentences ---------------------------------------------------------------------

_WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)


def words(text: str) -> list[str]:
    """Word tokens (letters/digits, with inner apostrophes), no punctuation; needs no NLTK data."""
    return _WORD_RE.findall(text)


def word_count(text: str) -> int:
    return len(words(text))


#: Per-thread instances of the NLP objects that are not safe to share. pysbd's
#: ``Segmenter.segment`` keeps the text in ``self.original_text`` and reads it back to compute
#: the character spans, so two threads sharing one segmenter cut each other's text (parallel
#: map-reduce branches gave different minutes than serial runs). Each thread builds its own.
_PER_THREAD = threading.local()


def _per_thread(kind: str, key: str, build: Callable[[], object]):
    """This thread's instance of ``kind`` for ``key``, built on first use."""
    cache = _PER_THREAD.__dict__.setdefault(kind, {})
    if key not in cache:
        cache[key] = build()
    return cache[key]


def _segmenter(language: str):
    def build():
        import pysbd

        try:
            return pysbd.Segmenter(language=language, clean=False, char_span=True)
        except ValueError:  # a language pysbd has no rules for: English rules are a fair default
            return pysbd.Segmenter(language="en", clean=False, char_span=True)

    return _per_thread("segmenter", language, build)


_LANG_CODES = {"english": "en", "german": "de", "french": "fr", "spanish": "es", "italian": "it", "dutch": "nl"}

#: pysbd is rule-based but super-linear on long inputs: feed it bounded pieces (measured on
#: 40k characters of speech: 0.24 s in 10,000-character pieces, 0.13 s in 2,000, 0.10 s in 1,000).
_MAX_PIECE = 2_000
#: pysbd never splits inside what it takes for a quotation, and a spoken "'cause" or "'em"
#: opens one that runs to the next apostrophe. Straight quotes are swapped for typographic
#: ones (same string length) while segmenting; the sentences are cut from the original text.
#: "A token holding sentence punctuation, then a space and more text": the last punctuation mark
#: of the token is the one tried (``[^\s.!?…;:]*``), so a long run like ``a:a:a:`` stays linear.
_INNER_BOUNDARY_RE = re.compile(r"[.!?…;:][^\s.!?…;:]*\s+\S|\n")
_QUOTES = str.maketrans({"'": "\u2019", '"': "\u201d"})


def split_sentences(text: str, *, language: str = "en") -> list[str]:
    """Sentences of ``text`` (stripped, non-empty), by pysbd's rules; no downloads."""
    if not text or not text.strip():
        return []
    if not _INNER_BOUNDARY_RE.search(text.strip()):
        return [text.strip()]  # one sentence at most (most turns of speech): pysbd has nothing to do
    seg = _segmenter(_LANG_CODES.get(language.lower(), language.lower()))
    out: list[str] = []
    for piece in _pieces(text):
        masked = piece.translate(_QUOTES)
        for span in seg.segment(masked):
            sentence = piece[span.start : span.end].strip()
            if sentence:
                out.append(sentence)
    return out


def _pieces(text: str) -> list[str]:
    """Split ``text`` into pieces pysbd handles in bounded time, never inside a word if avoidable."""
    blocks = [b for b in re.split(r"\n\s*\n", text) if b.strip()]
    pieces: list[str] = []
    for block in blocks:
        while len(block) > _MAX_PIECE:
            cut = max(block.rfind(". ", 0, _MAX_PIECE), block.rfind("\n", 0, _MAX_PIECE))
            if cut <= 0:
                cut = block.rfind(" ", 0, _MAX_PIECE)
            if cut <= 0:
                cut = _MAX_PIECE
            pieces.append(block[: cut + 1])
            block = block[cut + 1 :]
        if block.strip():
            pieces.append(block)
    return pieces


# --- LexRank ---------------------------------------------------------------------------------


def _language_name(language: str) -> str:
    inv = {v: k for k, v in _LANG_CODES.items()}
    return inv.get(language.lower(), language.lower())


#: LexRank's similarity matrix is quadratic: rank at most this many
#: sentences; longer inputs are ranked in windows and the windows' winners ranked again.
MAX_RANKED = 400


def rank_sentences(sentences: Sequence[str], *, language: str = "english") -> list[int]:
    """Indexes of ``sentences`` from most to least central (LexRank); ties keep text order."""
    n = len(sentences)
    if n == 0:
        return []
    if n <= MAX_RANKED:
        return _rank_window(list(range(n)), sentences, language)
    # Windowed: rank each window, keep its best quarter, then rank the survivors together.
    survivors: list[int] = []
    for start in range(0, n, MAX_RANKED):
        window = list(range(start, min(n, start + MAX_RANKED)))
        ranked = _rank_window(window, sentences, language)
        survivors.extend(ranked[: max(1, len(ranked) // 4)])
    head = _rank_subset(sorted(survivors), sentences, language)
    seen = set(head)
    return head + [i for i in range(n) if i not in seen]


def _rank_subset(indexes: list[int], sentences: Sequence[str], language: str) -> list[int]:
    if len(indexes) <= MAX_RANKED:
        return _rank_window(indexes, sentences, language)
    sub = [sentences[i] for i in indexes]
    return [indexes[j] for j in rank_sentences(sub, language=language)]


def _rank_window(indexes: list[int], sentences: Sequence[str], language: str) -> list[int]:
    from . import lexrank as _lexrank

    order = _lexrank.rank([sentences[i] for i in indexes], _language_name(language))
    return [indexes[j] for j in order]


def lexrank(sentences: Sequence[str], n: int, *, language: str = "english") -> list[int]:
    """Indexes of the ``n`` most central sentences (LexRank), returned in original order."""
    if n <= 0:
        return []
    return sorted(rank_sentences(sentences, language=language)[:n])


def summarize_to_budget(
    sentences: Sequence[str],
    max_words: int,
    *,
    language: str = "english",
    eligible: Callable[[str], bool] | None = None,
) -> list[int]:
    """Indexes (in original order) of the most central sentences that fit in ``max_words``.

    Sentences are taken best first while they fit; a sentence that does not fit is skipped,
    not cut, so the summary is made of whole sentences. ``eligible`` filters candidates.
    """
    candidates = [i for i, s in enumerate(sentences) if eligible is None or eligible(s)]
    if not candidates:
        return []
    ranked = [candidates[j] for j in rank_sentences([sentences[i] for i in candidates], language=language)]
    chosen: list[int] = []
    used = 0
    seen_norm: set[str] = set()
    for i in ranked:
        norm = " ".join(w.lower() for w in words(sentences[i]))
        if norm in seen_norm:
            continue
        wc = word_count(sentences[i])
        if used + wc > max_words:
            if used == 0 and wc > 0:
                continue
            if max_words - used < 8:
                break
            continue
        chosen.append(i)
        seen_norm.add(norm)
        used += wc
    return sorted(chosen)


# --- key phrases -----------------------------------------------------------------------------

_YAKE_LANG = {"english": "en", "german": "de", "french": "fr", "spanish": "es", "italian": "it", "dutch": "nl"}


def keywords(
    text: str,
    n: int = 10,
    *,
    language: str = "en",
    max_ngram: int = 3,
    extra_stopwords: Iterable[str] = (),
) -> list[str]:
    """Up to ``n`` key phrases of ``text`` (yake), best first, without near-duplicates.

    A phrase is dropped when, ignoring case, it equals or is contained in a better one, or
    contains a better one (``"remote"`` after ``"remote control"`` adds nothing).
    ``extra_stopwords`` are added to yake's own list (e.g. "yeah", "okay" for speech).
    """
    if n <= 0 or not text or not text.strip():
        return []
    import yake

    lan = _YAKE_LANG.get(language.lower(), language.lower())
    extra = {w.lower() for w in extra_stopwords}
    extractor = yake.KeywordExtractor(lan=lan, n=max_ngram, dedupLim=0.7, top=max(n * 4, 20))
    if extra:
        extractor.stopword_set = set(extractor.stopword_set) | extra
    try:
        found = extractor.extract_keywords(text)
    except (ValueError, ZeroDivisionError, KeyError, IndexError):  # yake on degenerate text
        return []
    out: list[str] = []
    lowered: list[str] = []
    for phrase, _score in found:
        p = " ".join(phrase.split())
        low = p.lower()
        if len(low) < 2 or not any(ch.isalpha() for ch in low):
            continue
        low_words = f" {low} "
        if any(f" {q} " in low_words or low_words in f" {q} " for q in lowered):
            continue
        out.append(p)
        lowered.append(low)
        if len(out) >= n:
            break
    return out


# --- dates -----------------------------------------------------------------------------------

_MONTHS = {m.lower(): i for i, m in enumerate(calendar.month_name) if m}
_MONTHS.update({m.lower(): i for i, m in enumerate(calendar.month_abbr) if m})
_MONTHS["sept"] = 9
_WEEKDAYS = {d.lower(): i for i, d in enumerate(calendar.day_name)}
_WEEKDAYS.update(
    {"mon": 0, "tue": 1, "tues": 1, "wed": 2, "thu": 3, "thur": 3, "thurs": 3, "fri": 4, "sat": 5, "sun": 6}
)

_MONTH_ALT = "|".join(sorted(_MONTHS, key=len, reverse=True))
_WEEKDAY_ALT = "|".join(sorted(_WEEKDAYS, key=len, reverse=True))
_ORD = r"(?:st|nd|rd|th)?"
_NUMWORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "a": 1,
    "a couple of": 2,
    "couple of": 2,
}

_DATE_RE = re.compile(
    rf"""
    (?P<iso>\b(?P<iy>\d{{4}})[-/](?P<im>\d{{1,2}})[-/](?P<id>\d{{1,2}})\b)
  | (?P<mdy>\b(?P<m1>{_MONTH_ALT})\.?\s+(?P<d1>\d{{1,2}}){_ORD}\b(?:,?\s+(?P<y1>\d{{4}})\b)?)
  | (?P<dmy>\b(?P<d2>\d{{1,2}}){_ORD}(?:\s+of)?\s+(?P<m2>{_MONTH_ALT})\b\.?(?:,?\s+(?P<y2>\d{{4}})\b)?)
  | (?P<num>(?<![\d/.])(?P<n1>\d{{1,2}})[/.](?P<n2>\d{{1,2}})(?:[/.](?P<n3>\d{{4}}|\d{{2}}))?(?![\d/]|\.\d))
  | (?P<rel>\b(?:today|tonight|tomorrow|yesterday|day\s+after\s+tomorrow)\b)
  | (?P<wd>\b(?:(?P<wdq>next|this|coming|on|by|until|till|before)\s+)?(?:the\s+)?(?P<wdn>{_WEEKDAY_ALT})\b\.?)
  | (?P<span>\b(?P<spq>next|this|end\s+of\s+(?:the|this)|end\s+of\s+next|by\s+the\s+end\s+of\s+(?:the|this)|by\s+end\s+of)\s+(?P<spu>week|month)\b)
  | (?P<inn>\bin\s+(?P<inc>\d+|one|two|three|four|five|six|seven|eight|nine|ten|a|a\s+couple\s+of|couple\s+of)\s+(?P<inu>days?|weeks?)\b)
    """,
    re.IGNORECASE | re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class DateMention:
    """A date phrase found in text: the words used, their span, and the ISO date they name."""

    text: str
    start: int
    end: int
    iso: str
    relative: bool


def _to_date(reference: dt.date | dt.datetime | str | None) -> dt.date | None:
    if reference is None:
        return None
    if isinstance(reference, dt.datetime):
        return reference.date()
    if isinstance(reference, dt.date):
        return reference
    try:
        from dateutil import parser as dparser

        return dparser.isoparse(str(reference)).date()
    except (ValueError, OverflowError):
        try:
            from dateutil import parser as dparser

            return dparser.parse(str(reference)).date()
        except (ValueError, OverflowError):
            return None


def _safe_date(y: int, m: int, d: int) -> dt.date | None:
    try:
        return dt.date(y, m, d)
    except ValueError:
        return None


def find_date_mentions(
    text: str, *, reference: dt.date | dt.datetime | str | None = None, dayfirst: bool = True
) -> list[DateMention]:
    """Every date phrase in ``text`` that resolves to a calendar date, in order of appearance.

    Explicit dates: ``2026-06-09``, ``June 9, 2026``, ``9 June``, ``9th of June``, ``9/6``,
    ``9/6/2026`` (day first unless ``dayfirst=False``). Dates without a year, and relative
    phrases (``today``, ``tomorrow``, ``Friday``, ``by Monday``, ``next Friday``, ``next week``,
    ``end of the month``, ``in two weeks``) resolve only when a ``reference`` date (the meeting's
    date) is given. A bare weekday means its next occurrence after the reference; ``next
    <weekday>`` the one in the following week.
    """
    from dateutil.relativedelta import relativedelta

    ref = _to_date(reference)
    out: list[DateMention] = []
    for m in _DATE_RE.finditer(text or ""):
        g = m.groupdict()
        day: dt.date | None = None
        relative = False
        if g["iso"]:
            day = _safe_date(int(g["iy"]), int(g["im"]), int(g["id"]))
        elif g["mdy"] or g["dmy"]:
            month = _MONTHS[(g["m1"] or g["m2"]).lower()]
            d = int(g["d1"] or g["d2"])
            y = g["y1"] or g["y2"]
            if g["mdy"] and (g["m1"] or "").lower() in ("may", "mar", "jun", "jan", "dec", "sat", "sun") and not y:
                # "may 5" is usually the verb: only trust it capitalised
                if not (g["m1"] or "")[0].isupper():
                    continue
            year = int(y) if y else (ref.year if ref else None)
            relative = not y
            day = _safe_date(year, month, d) if year else None
        elif g["num"]:
            a, b = int(g["n1"]), int(g["n2"])
            d, mo = (a, b) if dayfirst else (b, a)
            y = g["n3"]
            if y:
                year = int(y) + (2000 if len(y) == 2 else 0)
            else:
                year = ref.year if ref else None
                relative = True
            day = _safe_date(year, mo, d) if year else None
        elif ref is None:
            continue
        elif g["rel"]:
            relative = True
            word = " ".join(g["rel"].lower().split())
            delta = {"today": 0, "tonight": 0, "tomorrow": 1, "yesterday": -1, "day after tomorrow": 2}[word]
            day = ref + dt.timedelta(days=delta)
        elif g["wd"]:
            relative = True
            name = g["wdn"].lower()
            if name in ("sat", "sun", "mon", "wed") and not g["wdn"][0].isupper() and not g["wdq"]:
                continue  # "sun", "wed" as plain words
            target = _WEEKDAYS[name]
            ahead = (target - ref.weekday()) % 7 or 7
            day = ref + dt.timedelta(days=ahead)
            if (g["wdq"] or "").lower() == "next" and day.isocalendar()[1] == ref.isocalendar()[1]:
                day += dt.timedelta(days=7)
        elif g["span"]:
            relative = True
            q = " ".join(g["spq"].lower().split())
            unit = g["spu"].lower()
            if unit == "week":
                monday = ref - dt.timedelta(days=ref.weekday())
                if q == "next":
                    day = monday + dt.timedelta(days=7)
                elif q == "this":
                    day = monday + dt.timedelta(days=4)
                elif "next" in q:
                    day = monday + dt.timedelta(days=11)
                else:  # end of the week: Friday
                    day = monday + dt.timedelta(days=4)
            else:
                first = ref.replace(day=1)
                if q == "next":
                    day = first + relativedelta(months=1)
                elif "next" in q:
                    day = first + relativedelta(months=2) - dt.timedelta(days=1)
                elif q == "this":
                    day = first + relativedelta(months=1) - dt.timedelta(days=1)
                else:
                    day = first + relativedelta(months=1) - dt.timedelta(days=1)
        elif g["inn"]:
            relative = True
            count_word = " ".join(g["inc"].lower().split())
            count = int(count_word) if count_word.isdigit() else _NUMWORDS[count_word]
            unit = g["inu"].lower()
            day = ref + (dt.timedelta(weeks=count) if unit.startswith("week") else dt.timedelta(days=count))
        if day is None:
            continue
        raw = m.group(0)
        phrase = raw.strip().rstrip(".")
        start = m.start() + len(raw) - len(raw.lstrip())
        out.append(DateMention(phrase, start, start + len(phrase), day.isoformat(), relative))
    return out


def find_dates(text: str, *, reference: dt.date | dt.datetime | str | None = None, dayfirst: bool = True) -> list[str]:
    """ISO dates (``YYYY-MM-DD``) named in ``text``, in order of first appearance, no repeats.

    See :func:`find_date_mentions` for what is recognised; relative phrases and dates without
    a year need ``reference``.
    """
    seen: dict[str, None] = {}
    for mention in find_date_mentions(text, reference=reference, dayfirst=dayfirst):
        seen.setdefault(mention.iso, None)
    return list(seen)


# --- transcript clean-up ---------------------------------------------------------------------

_MARKUP_RE = re.compile(r"\{\s*[a-z_]+\s*\}|<\s*/?\s*[a-z_]+\s*/?\s*>", re.IGNORECASE)
_FILLER_RE = re.compile(
    r"(?<![\w'-])(?:u+m+|u+h+m*|e+r+m+|e+h+m+|e+h+|hm+|mm+(?:\s*-\s*hmm+)?|uh\s*-\s*huh)(?![\w'-])\s*,?",
    re.IGNORECASE,
)
_SPACE_PUNCT_RE = re.compile(r"(?<!\s)\s+([.,;:!?%)\]}])")  # from a run's start only: linear
_OPEN_PUNCT_RE = re.compile(r"([(\[{])\s+")
_CLITIC_RE = re.compile(r"(\w)\s+(n't|'s|'re|'ve|'ll|'d|'m)\b", re.IGNORECASE)
_ACRONYM_RE = re.compile(r"\b((?:[A-Z]_){2,})")
_REPEAT_RE = re.compile(r"\b(\w+)(?:\s*,?\s+\1\b)+", re.IGNORECASE)
_WEAK_THEN_STRONG_RE = re.compile(r"[,;:](?:\s*[,;:])*\s*([.!?])")  # "fine , ." -> "fine."
_DUP_PUNCT_RE = re.compile(r"([.,;:!?])(?:\s*[,;:](?!\w))+")


def clean_disfluencies(text: str) -> str:
    """Text of a transcript turn without what only makes sense in speech.

    Removes corpus markup (QMSum ``{disfmarker}``, ``{vocalsound}``, ``{gap}``; ELITR
    ``<laugh/>``), fillers ("um", "uh", "ehm", "mm-hmm"), immediate word repeats ("the the"),
    and tokenisation artefacts: spaced punctuation (``" ."`` -> ``"."``), split clitics
    (``"do n't"`` -> ``"don't"``), AMI acronyms (``D_V_D_`` -> ``DVD``).
    """
    if not text:
        return ""
    # Single spaces first: the patterns below (e.g. the repeat's "\s*,?\s+") are quadratic on a
    # long run of whitespace; parsed transcripts are single-spaced already.
    t = _MARKUP_RE.sub(" ", " ".join(text.split()))
    t = _ACRONYM_RE.sub(lambda m: m.group(1).replace("_", ""), t)
    t = _FILLER_RE.sub(" ", t)
    t = _CLITIC_RE.sub(r"\1\2", t)
    t = _REPEAT_RE.sub(r"\1", t)
    t = re.sub(r"\s+", " ", t)
    t = _SPACE_PUNCT_RE.sub(r"\1", t)
    t = _OPEN_PUNCT_RE.sub(r"\1", t)
    t = _WEAK_THEN_STRONG_RE.sub(r"\1", t)
    t = _DUP_PUNCT_RE.sub(r"\1", t)
    return re.sub(r"^[\s,.;:]+", "", t).strip()


def due_date(text: str, *, reference: dt.date | dt.datetime | str | None = None) -> str | None:
    """When ``text`` says something is due: an ISO date when it resolves, else the phrase used.

    With no ``reference`` a relative phrase ("by Friday", "next week") cannot be resolved, so
    the phrase itself is returned (the ``ActionItem.due`` contract allows either).
    """
    mentions = find_date_mentions(text, reference=reference)
    if mentions:
        return mentions[0].iso
    if reference is None:
        # Resolve against an arbitrary date only to find where the phrase is; report the words.
        probe = find_date_mentions(text, reference=dt.date(2001, 1, 1))
        if probe:
            return probe[0].text
    return None
