"""The offline engine's entities of a document, found by deterministic rules.

No model, no weights, no network, same answer every time. No NER model can be installed here,
so :func:`extract_entities` finds by rules: e-mail addresses, URLs, money, dates (ISO),
acronyms, and capitalised multi-word names classed as ORG / PERSON / PLACE by cue words.
Precision over recall: a capitalised phrase of no known kind is left out rather than called
OTHER, an acronym is kept when the text defines it or uses it three times or more, and a
one-word place only when it recurs. Each entity keeps every page it appears on; the most
frequent come first.

:func:`marginalia.engines.offline_summary.summarize_pages` puts them in its summaries.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence

from ..schemas import Entity, EntityType
from . import text as nlp

__all__ = ["extract_entities"]

#: Entities kept per summary (most frequent first); a long document's tail is noise.
MAX_ENTITIES = 80

Pages = Sequence[tuple[int, str]]


# Cue words of ORG and PLACE names (offline_summary's author detection reads _ORG_WORDS too).
_ORG_WORDS = frozenset(
    "University Universitat Université Institute Institut Department Dept Division Faculty School College Hospital "
    "Corporation Corp Inc Ltd LLC GmbH Company Co Publishing Press Journal Research Practice Review Society "
    "Association Laboratory Laboratories Lab Labs Center Centre Council Committee Ministry Agency Foundation Bank "
    "Group Team Services Service Systems Technologies Technology Engineering Organization Organisation Office "
    "Board Commission Authority Academy Trust Network Partners Consortium Project Programme Program Unit".split()
)
#: Cue words that name documents as often as organisations ("Cost Review", "Research and Practice").
_WEAK_ORG_WORDS = frozenset({"Review", "Practice", "Research", "Journal", "Project", "Programme", "Program"})
_PLACE_WORDS = frozenset(
    "City Republic Kingdom States County Province Region Street Road Avenue Island Islands Lake River Mountain "
    "Mountains Valley Bay Coast Sea Ocean District Town Village Park Square".split()
)


_EMAIL = re.compile(r"\b[\w.+-]{1,64}@[\w-]+(?:\.[\w-]+)+\b")  # local part <= 64 (RFC 5321): linear scan
_BRACED_EMAILS = re.compile(r"[{(]([\w.,|\s-]+)[})]@([\w-]+(?:\.[\w-]+)+)")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>()\"']+[^\s<>()\"'.,;:]")
_MONEY = re.compile(
    r"(?:[$€£¥]\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:million|billion|thousand|bn|[kKmM])\b)?)"
    r"|(?:\b\d[\d,]*(?:\.\d+)?\s?(?:million|billion|thousand)?\s?(?:USD|EUR|GBP|dollars|euros|pounds)\b)"
)
_ACRONYM = re.compile(r"\b(?=[A-Z0-9]*[A-Z][A-Z0-9]*[A-Z0-9])[A-Z][A-Z0-9]{1,7}s?\b")
_ROMAN = re.compile(r"^[IVXLC]+$")
#: "Long Form Words (LFW)": an acronym the text defines.
_DEFINED_ACRONYM = re.compile(r"[A-Za-z][a-z]+(?:[\s-]+[A-Za-z][\w-]*){0,6}\s+\(([A-Z][A-Z0-9]{1,7})s?\)")
_NAME_TOKEN = r"(?:[A-Z][a-z]+(?:[-'’][A-Z]?[a-z]+)*|[A-Z]\.)"
_CAPITALISED_SPAN = re.compile(
    rf"\b{_NAME_TOKEN}(?:[ \t]+(?:(?:of|for|and|the|de|van|von|der|du|la)[ \t]+)?{_NAME_TOKEN})+"
)
_PLACE_CUE = re.compile(
    rf"\b(?:in|at|from|near)[ \t]+((?:{_NAME_TOKEN})(?:[ \t]+{_NAME_TOKEN})?)\b(?![ \t]*(?:et al|\(|\d|and\b|&))"
)
_INITIALLED_NAME = re.compile(r"^[A-Z][a-z]+(?:[ \t]+[A-Z]\.)+[ \t]+[A-Z][a-z]+(?:[-'’][A-Za-z]+)*$")
_PERSON_CUE = re.compile(
    r"(?:\b(?:Dr|Prof|Mr|Mrs|Ms|Sir|Owner|owner|by|Contact|contact|said|says|asked|told)\.?:?\s+$)"
)
_NOT_NAMES = frozenset(
    "Table Figure Fig Section Sections Chapter Appendix Equation Eq Algorithm Step Part Abstract Introduction "
    "Conclusion Conclusions Results Methods Discussion Background The This That These Those We Our In On At For "
    "From To And But Or If When While However Moreover Furthermore Thus Therefore Also Although Because Since "
    "After Before During Each Every Some All Any No Not One Two Three First Second Third Q1 Q2 Q3 Q4 "
    "English Chinese German French Spanish Italian Japanese Korean Swedish Dutch".split()
)
_MONTHS = frozenset(
    "January February March April May June July August September October November December "
    "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split()
)


class _EntityBag:
    def __init__(self) -> None:
        self.pages: dict[tuple[EntityType, str], set[int]] = defaultdict(set)
        self.counts: Counter[tuple[EntityType, str]] = Counter()
        self.surface: dict[tuple[EntityType, str], str] = {}
        self.first_seen: dict[tuple[EntityType, str], int] = {}

    def add(self, kind: EntityType, text: str, page: int) -> None:
        text = text.strip(" .,;:")
        if not text:
            return
        key = (kind, text.lower())
        self.pages[key].add(page)
        self.counts[key] += 1
        self.surface.setdefault(key, text)
        self.first_seen.setdefault(key, len(self.first_seen))

    def entities(self, limit: int = MAX_ENTITIES, keep=lambda key, count: True) -> list[Entity]:
        order = sorted(
            (k for k in self.pages if keep(k, self.counts[k])), key=lambda k: (-self.counts[k], self.first_seen[k])
        )
        return [Entity(text=self.surface[k], type=k[0], pages=sorted(self.pages[k])) for k in order[:limit]]


def _classify_span(span: str, authors: set[str], context_before: str) -> EntityType:
    tokens = span.split()
    # An organisation's name ends with its kind ("Kamuzu Central Hospital") or starts with it
    # ("Ministry of Health"); "Research Article" or "Cost Review" are not organisations.
    heads = [t.strip(".") for i, t in enumerate(tokens) if i == len(tokens) - 1 or tokens[i + 1] in ("of", "for")]
    if any(t in _ORG_WORDS and t not in _WEAK_ORG_WORDS for t in heads):
        return "ORG"
    if any(t in _PLACE_WORDS for t in tokens):
        return "PLACE"
    if (
        span in authors
        or _INITIALLED_NAME.match(span)
        or (2 <= len(tokens) <= 3 and _PERSON_CUE.search(context_before[-20:]))
    ):
        return "PERSON"
    return "OTHER"


def extract_entities(pages: Pages, *, authors: Iterable[str] = (), limit: int = MAX_ENTITIES) -> list[Entity]:
    """Rule-based entities of ``pages``, each with every page it appears on, most frequent first."""
    bag = _EntityBag()
    defined: set[str] = set()
    author_set = {a.strip() for a in authors if a}
    for number, text in pages:
        flat = re.sub(r"\s*\n\s*", " ", text or "")
        for m in _BRACED_EMAILS.finditer(flat):
            for user in re.split(r"[,|\s]+", m.group(1)):
                if user:
                    bag.add("EMAIL", f"{user}@{m.group(2)}", number)
        for m in _EMAIL.finditer(flat):
            bag.add("EMAIL", m.group(0), number)
        for m in _URL.finditer(flat):
            bag.add("URL", m.group(0), number)
        for m in _MONEY.finditer(flat):
            bag.add("MONEY", re.sub(r"\s+", " ", m.group(0)), number)
        for mention in nlp.find_date_mentions(flat):
            if not mention.relative:
                bag.add("DATE", mention.iso, number)
        for m in _ACRONYM.finditer(flat):
            token = m.group(0)
            if _ROMAN.match(token) or _is_shouting(flat, m.start(), m.end()):
                continue
            bag.add("ACRONYM", token, number)
        lined = text or ""
        for m in _CAPITALISED_SPAN.finditer(lined):
            span = _trim_span(m.group(0))
            if span is None or re.fullmatch(r"\S+ and \S+", span):  # "Och and Ney": a citation
                continue
            bag.add(_classify_span(span, author_set, lined[max(0, m.start() - 20) : m.start()]), span, number)
        for m in _PLACE_CUE.finditer(lined):
            span = m.group(1)
            first = span.split()[0]
            if first in _NOT_NAMES or first in _MONTHS or any(t in _ORG_WORDS for t in span.split()):
                continue
            if (" " in span) and _CAPITALISED_SPAN.fullmatch(span):
                continue  # multi-word: classified above
            bag.add("PLACE", span, number)
        defined.update(m.group(1) for m in _DEFINED_ACRONYM.finditer(flat))

    def confident(key: tuple[EntityType, str], count: int) -> bool:
        """Precision over recall: what the rules cannot type with confidence is left out."""
        kind, text = key
        if kind == "OTHER":  # a capitalised phrase of no known kind
            return False
        if kind == "ACRONYM":  # defined in the text ("statistical machine translation (SMT)"), or frequent
            surface = bag.surface[key]
            letters = sum(c.isalpha() for c in surface)
            return surface in defined or (count >= 3 and letters >= 3 and letters == len(surface.rstrip("s")))
        if kind == "PLACE" and " " not in text:  # one word after "in"/"at": a place only if said again
            return count >= 2
        return True

    return bag.entities(limit, keep=confident)


def _is_shouting(text: str, start: int, end: int) -> bool:
    """An all-caps word inside an all-caps run (a heading in capitals) is not an acronym."""
    before = text[max(0, start - 12) : start]
    after = text[end : end + 12]
    return bool(re.search(r"[A-Z]{3,}\s+$", before) and re.match(r"^\s+[A-Z]{3,}", after))


def _trim_span(span: str) -> str | None:
    tokens = span.split()
    while tokens and (tokens[0] in _NOT_NAMES or tokens[0] in _MONTHS or tokens[0].endswith(".")):
        tokens.pop(0)
    while tokens and (
        tokens[-1] in {"of", "for", "and", "the", "de", "van", "von", "der", "du", "la"} or tokens[-1] in _MONTHS
    ):
        tokens.pop()
    if len(tokens) < 2:
        return None
    return " ".join(tokens)
