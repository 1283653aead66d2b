"""The offline engine's document work: summaries of PDF pages and slide outlines, by rules.

No model, no weights, no network, same answer every time. What it does, and why:

* **Summary.** A document that states its own abstract is best summarised by it (measured on
  real papers, the author abstract beats every extractive ranker), so :func:`summarize_pages`
  uses it when the first page has one; otherwise it picks ~150 words of the most central
  sentences (LexRank). Key points are the most central body sentences, each with its page.
  Running headers/footers and the reference list are left out before ranking.
* **Title and authors** come from the PDF metadata when it is plausible (not a job number),
  else from the first page: the block of lines just above the author line.
* **Entities** are found by deterministic rules (no NER model can be installed here): e-mail
  addresses, URLs, money, dates (ISO), acronyms, and capitalised multi-word names classed as
  ORG / PERSON / PLACE by cue words, else OTHER.
* **Outlines** follow the arc of a talk (agenda, problem, approach, results, discussion,
  conclusion) with bullets drawn from the sources' key points, and honour the requested slide
  count exactly. ``Outline.slides`` are the content slides; the cover slide rendered by
  :func:`marginalia.tools.slides.render_pptx` from ``Outline.title`` is not counted (as in
  SciDuet, where a deck's slide count excludes its title slide).
* **Revisions** apply simple reviewer feedback ("shorter", "focus on X", "add a slide on X",
  "fewer bullets", "rename title to X") and always produce something different.

:class:`marginalia.engines.offline.OfflineEngine` delegates its document methods here.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from ..schemas import DocumentSummary, Entity, KeyPoint, Outline, Slide, SourceContext
from ..tools.pdf import abstract_span, abstract_text, split_authors
from . import text as nlp

__all__ = [
    "SUMMARY_WORDS",
    "detect_language",
    "draft_outline",
    "extract_entities",
    "merge_summaries",
    "parse_slide_count",
    "revise_summary",
    "summarize_pages",
]

#: Word budget of an extractive summary (the abstract, when there is one, is kept whole).
SUMMARY_WORDS = 150
#: How many key points one chunk of pages contributes.
KEY_POINTS = 6
#: Keywords per chunk, and after a merge.
KEYWORDS = 10
#: Entities kept per summary (most frequent first); a long document's tail is noise.
MAX_ENTITIES = 80
#: An abstract longer than this is condensed (extractively) for ``summary``; ``abstract`` keeps it all.
MAX_ABSTRACT_SUMMARY_WORDS = 320

Pages = Sequence[tuple[int, str]]


# =============================================================================================
# Page text -> body sentences with pages
# =============================================================================================
_REFERENCES_HEADING = re.compile(r"^(?:\d{1,2}\.?\s+)?(?:references|bibliography|literature cited|works cited)\s*$", re.I)
_FRONT_MATTER = re.compile(
    r"copyright|\u00a9|licen[cs]e[ds]?\b|creative commons|all rights reserved|doi[:.]|\bissn\b|\bisbn\b|"
    r"correspondence should|received \d|accepted \d|academic editor",
    re.I,
)
_REFERENCE_LIKE = re.compile(r"\bet al\.,? \(?\d{4}|\bpp\.\s*\d|\bIn Proceedings\b|\bvol\.\s*\d|\(\d{4}[a-z]?\)\.", re.I)
_FUNCTION_WORDS = frozenset(
    "a an the of to in on for and or but is are was were be been has have had with by from that this "
    "these those it its as at we our they their which who not can will would should may".split()
)


_WHOLE_SENTENCE = re.compile(r"^[\"'‘“(]?[A-Z0-9].*[.!?][\"'’”)]?$", re.S)


@dataclass
class _Sentence:
    text: str
    page: int
    in_abstract: bool = False


@dataclass
class _Document:
    """A chunk of pages made ready for ranking: clean lines, sentences, abstract if any."""

    pages: list[tuple[int, str]]
    lines: dict[int, list[str]] = field(default_factory=dict)
    body_lines: dict[int, list[str]] = field(default_factory=dict)
    sentences: list[_Sentence] = field(default_factory=list)
    abstract: str | None = None
    abstract_page: int | None = None
    abstract_lines: tuple[int, int] | None = None
    #: lines of the first page above the abstract (or the first section): title, authors, affiliations
    front_matter: int = 0


def _line_key(line: str) -> str:
    return re.sub(r"\d+", "#", line.lower()).strip()


def _repeated_lines(pages: Pages) -> set[str]:
    """Running headers/footers: lines (digits ignored) on at least half the pages, 3 or more."""
    if len(pages) < 3:
        return set()
    counts = Counter()
    for _, text in pages:
        counts.update({_line_key(line) for line in text.split("\n") if line.strip()})
    threshold = max(3, math.ceil(len(pages) / 2))
    return {key for key, n in counts.items() if n >= threshold and len(key) < 120}


def _prepare(pages: Pages, *, find_abstract: bool) -> _Document:
    doc = _Document(pages=[(int(n), t or "") for n, t in pages])
    repeated = _repeated_lines(doc.pages)
    in_references = False
    for position, (number, text) in enumerate(doc.pages):
        lines = text.split("\n") if text else []
        if find_abstract and doc.abstract is None and position < 2:
            span = abstract_span(text)
            if span is not None:
                doc.abstract = abstract_text(text)
                doc.abstract_page = number
                doc.abstract_lines = span
        if find_abstract and position == 0:
            doc.front_matter = _front_matter_end(lines, doc.abstract_lines if doc.abstract_page == number else None)
        kept: list[str] = []
        for index, line in enumerate(lines):
            if in_references:
                break
            if _REFERENCES_HEADING.match(line):
                in_references = True
                break
            if _line_key(line) in repeated:
                continue
            kept.append((index, line))
        doc.lines[number] = [line for _, line in kept]
        abstract_range = doc.abstract_lines if number == doc.abstract_page else None
        front = doc.front_matter if position == 0 else 0
        body = [
            line for index, line in kept
            if index >= front and not (abstract_range and abstract_range[0] <= index < abstract_range[1])
        ]
        doc.body_lines[number] = body
        for sentence in nlp.split_sentences(_paragraphs(body)):
            doc.sentences.append(_Sentence(_tidy(sentence), number))
        if abstract_range and doc.abstract:
            for sentence in nlp.split_sentences(doc.abstract):
                doc.sentences.append(_Sentence(_tidy(sentence), number, in_abstract=True))
    return doc


_FIRST_SECTION = re.compile(r"^(?:(?:\d{1,2}|[IVX]{1,4})\.?\s+)?(?:introduction|background)\s*$", re.I)


def _front_matter_end(lines: list[str], abstract: tuple[int, int] | None) -> int:
    """Index of the first line after the title block: the abstract, or the first section."""
    if abstract is not None:
        return abstract[0]
    for i, line in enumerate(lines[:60]):
        if _FIRST_SECTION.match(line):
            return i
    return 0


_NUMBERED_HEADING = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*\.?|[IVX]{1,4}\.)\s+[A-Z][^.]{0,80}$")


def _paragraphs(lines: list[str]) -> str:
    """Re-flow extracted lines into paragraphs; short unpunctuated lines (headings) stand alone."""
    if not lines:
        return ""
    lengths = sorted(len(line) for line in lines)
    typical = lengths[len(lengths) * 3 // 4] or 1
    out: list[str] = []
    for line in lines:
        short = len(line) < typical * 0.6
        numbered_heading = _NUMBERED_HEADING.match(line) and not re.search(r"[.,;:]$", line)
        if numbered_heading or (short and not re.search(r"[.,;:]$", line)):
            out.append(f"\n\n{line}\n\n")
        elif short and line.endswith("."):
            out.append(f"{line}\n\n")
        else:
            out.append(line + " ")
    return "".join(out)


def _tidy(sentence: str) -> str:
    return re.sub(r"\s+", " ", sentence).strip()


def _eligible(sentence: str) -> bool:
    """Prose worth ranking: not a heading, affiliation, caption fragment, or reference."""
    tokens = nlp.words(sentence)
    if not 6 <= len(tokens) <= 70:
        return False
    if not _WHOLE_SENTENCE.match(sentence):  # a fragment of a column or a caption
        return False
    alpha = [t for t in tokens if t.isalpha()]
    if len(alpha) < 0.6 * len(tokens):
        return False
    lowered = [t.lower() for t in alpha]
    if len({t for t in lowered if t in _FUNCTION_WORDS}) < 2:
        return False
    capitalised = sum(1 for t in alpha[1:] if t[0].isupper())
    if capitalised > 0.5 * max(1, len(alpha) - 1):
        return False
    if _FRONT_MATTER.search(sentence) or _REFERENCE_LIKE.search(sentence):
        return False
    return not re.match(r"^(?:fig(?:ure)?|table)\.?\s*\d", sentence, re.I)


# =============================================================================================
# Title, authors, language
# =============================================================================================
_BAD_META_TITLE = re.compile(r"^\s*[\d\W]|\.\.|microsoft word|\.docx?\b|\.tex\b|\.pdf\b|untitled|^title$", re.I)
_HEADER_LINE = re.compile(
    r"research article|open access|original article|review article|short communication|proceedings|"
    r"journal|volume|vol\.|issue|doi|publishing|corporation|www\.|https?://|\u00a9|copyright|\barxiv\b|"
    r"conference|workshop|symposium|preprint|letter|page \d|pages \d",
    re.I,
)
_ORG_WORDS = frozenset(
    "University Universitat Université Institute Institut Department Dept Division Faculty School College Hospital "
    "Corporation Corp Inc Ltd LLC GmbH Company Co Publishing Press Journal Research Practice Review Society "
    "Association Laboratory Laboratories Lab Labs Center Centre Council Committee Ministry Agency Foundation Bank "
    "Group Team Services Service Systems Technologies Technology Engineering Organization Organisation Office "
    "Board Commission Authority Academy Trust Network Partners Consortium Project Programme Program Unit".split()
)
_PLACE_WORDS = frozenset(
    "City Republic Kingdom States County Province Region Street Road Avenue Island Islands Lake River Mountain "
    "Mountains Valley Bay Coast Sea Ocean District Town Village Park Square".split()
)
_PARTICLES = frozenset({"de", "van", "von", "der", "den", "da", "di", "del", "la", "le", "du", "bin", "al"})


def _plausible_meta_title(title: str | None) -> bool:
    if not title or _BAD_META_TITLE.search(title):
        return False
    tokens = nlp.words(title)
    return len(tokens) >= 3 and sum(t.isalpha() for t in tokens) >= 0.5 * len(tokens)


def _author_line(line: str) -> list[str] | None:
    """The names on ``line`` if it reads like an author list, else ``None``."""
    if _HEADER_LINE.search(line) or "@" in line or len(line) > 250:
        return None
    cleaned = re.sub(r"[\d*†‡§¶◦∗]+", ",", line)
    cleaned = re.sub(r"\s*,\s*(?:,\s*)*", ", ", cleaned).strip(" ,")
    if not cleaned:
        return None
    names = [n for n in split_authors(cleaned) if n]
    if not names or len(names) > 30:
        return None
    well_formed = [n for n in names if 2 <= len(n.split()) <= 5]
    if len(well_formed) < max(1, math.ceil(0.6 * len(names))):
        return None
    for name in names:
        tokens = name.split()
        if len(tokens) > 5:
            return None
        for token in tokens:
            bare = token.strip(".,'’-")
            if bare in _ORG_WORDS or bare.lower() in _FUNCTION_WORDS - {"de"}:
                return None
            if bare.lower() in _PARTICLES:
                continue
            if not bare or not bare[0].isupper():
                return None
    return [re.sub(r"(?<=[a-z]{3})(?=[A-Z][a-z])", " ", n) for n in names]  # "CharlesMunthali" -> "Charles Munthali"


def _title_and_authors(doc: _Document, info: dict | None) -> tuple[str | None, list[str]]:
    info = info or {}
    meta_title = info.get("title")
    meta_authors = list(info.get("authors") or [])
    page_title, page_authors = None, []
    if doc.pages:
        number, text = doc.pages[0]
        lines = text.split("\n")
        limit = doc.abstract_lines[0] if doc.abstract_lines and doc.abstract_page == number else min(len(lines), 30)
        for i in range(min(limit, len(lines))):
            names = _author_line(lines[i])
            if names is None:
                continue
            block: list[str] = []
            j = i - 1
            while j >= 0 and len(block) < 6:
                line = lines[j]
                if _HEADER_LINE.search(line) or _FRONT_MATTER.search(line) or re.search(r"\b\w \w \w \w\b", line):
                    break
                if _author_line(line) is not None or len(line) > 160:
                    break
                block.insert(0, line)
                j -= 1
            if block:
                page_title = " ".join(block)
                page_authors = names
                break
    title = meta_title if _plausible_meta_title(meta_title) else page_title
    if title is None and doc.pages:
        first_lines = [line for line in doc.pages[0][1].split("\n") if line.strip()]
        title = next((line for line in first_lines if len(nlp.words(line)) >= 3 and not _HEADER_LINE.search(line)), None)
    authors = meta_authors if len(meta_authors) >= len(page_authors) else page_authors
    return title, authors


@functools.lru_cache(maxsize=1)
def _stop_word_sets() -> dict[str, frozenset[str]]:
    from sumy.utils import get_stop_words

    codes = {"english": "en", "german": "de", "french": "fr", "spanish": "es", "italian": "it",
             "portuguese": "pt", "czech": "cs", "slovak": "sk"}
    sets = {}
    for name, code in codes.items():
        try:
            sets[code] = frozenset(get_stop_words(name))
        except LookupError:
            continue
    return sets


def detect_language(text: str) -> str | None:
    """ISO 639-1 code of the language whose stop words are most frequent, or ``None``.

    A stop-word ratio is crude but needs nothing installed and is right on any real page of
    prose; ``None`` when under 15% of the words are stop words of any language (tables, code).
    """
    tokens = [t.lower() for t in nlp.words(text[:20000]) if t.isalpha()]
    if len(tokens) < 20:
        return None
    best, best_ratio = None, 0.0
    for code, words in _stop_word_sets().items():
        ratio = sum(t in words for t in tokens) / len(tokens)
        if ratio > best_ratio:
            best, best_ratio = code, ratio
    return best if best_ratio >= 0.15 else None


# =============================================================================================
# Entities
# =============================================================================================
_EMAIL = re.compile(r"\b[\w.+-]{1,64}@[\w-]+(?:\.[\w-]+)+\b")  # local part <= 64 (RFC 5321): linear scan
_BRACED_EMAILS = re.compile(r"[{(]([\w.,|\s-]+)[})]@([\w-]+(?:\.[\w-]+)+)")
_URL = re.compile(r"\b(?:https?://|www\.)[^\s<>()\"']+[^\s<>()\"'.,;:]")
_MONEY = re.compile(
    r"(?:[$€£¥]\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:million|billion|thousand|bn|[kKmM])\b)?)"
    r"|(?:\b\d[\d,]*(?:\.\d+)?\s?(?:million|billion|thousand)?\s?(?:USD|EUR|GBP|dollars|euros|pounds)\b)"
)
_ACRONYM = re.compile(r"\b(?=[A-Z0-9]*[A-Z][A-Z0-9]*[A-Z0-9])[A-Z][A-Z0-9]{1,7}s?\b")
_ROMAN = re.compile(r"^[IVXLC]+$")
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
        self.pages: dict[tuple[str, str], set[int]] = defaultdict(set)
        self.counts: Counter = Counter()
        self.surface: dict[tuple[str, str], str] = {}
        self.first_seen: dict[tuple[str, str], int] = {}

    def add(self, kind: str, text: str, page: int) -> None:
        text = text.strip(" .,;:")
        if not text:
            return
        key = (kind, text.lower())
        self.pages[key].add(page)
        self.counts[key] += 1
        self.surface.setdefault(key, text)
        self.first_seen.setdefault(key, len(self.first_seen))

    def entities(self, limit: int = MAX_ENTITIES) -> list[Entity]:
        order = sorted(self.pages, key=lambda k: (-self.counts[k], self.first_seen[k]))
        return [Entity(text=self.surface[k], type=k[0], pages=sorted(self.pages[k])) for k in order[:limit]]


def _classify_span(span: str, authors: set[str], context_before: str) -> str:
    tokens = span.split()
    if any(t.strip(".") in _ORG_WORDS for t in tokens):
        return "ORG"
    if any(t in _PLACE_WORDS for t in tokens):
        return "PLACE"
    if span in authors or _INITIALLED_NAME.match(span) or (2 <= len(tokens) <= 3 and _PERSON_CUE.search(context_before[-20:])):
        return "PERSON"
    return "OTHER"


def extract_entities(pages: Pages, *, authors: Iterable[str] = (), limit: int = MAX_ENTITIES) -> list[Entity]:
    """Rule-based entities of ``pages``, each with every page it appears on, most frequent first."""
    bag = _EntityBag()
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
            bag.add(_classify_span(span, author_set, lined[max(0, m.start() - 20): m.start()]), span, number)
        for m in _PLACE_CUE.finditer(lined):
            span = m.group(1)
            first = span.split()[0]
            if first in _NOT_NAMES or first in _MONTHS or any(t in _ORG_WORDS for t in span.split()):
                continue
            if (" " in span) and _CAPITALISED_SPAN.fullmatch(span):
                continue  # multi-word: classified above
            bag.add("PLACE", span, number)
    return bag.entities(limit)


def _is_shouting(text: str, start: int, end: int) -> bool:
    """An all-caps word inside an all-caps run (a heading in capitals) is not an acronym."""
    before = text[max(0, start - 12): start]
    after = text[end: end + 12]
    return bool(re.search(r"[A-Z]{3,}\s+$", before) and re.match(r"^\s+[A-Z]{3,}", after))


def _trim_span(span: str) -> str | None:
    tokens = span.split()
    while tokens and (tokens[0] in _NOT_NAMES or tokens[0] in _MONTHS or tokens[0].endswith(".")):
        tokens.pop(0)
    while tokens and (tokens[-1] in {"of", "for", "and", "the", "de", "van", "von", "der", "du", "la"} or tokens[-1] in _MONTHS):
        tokens.pop()
    if len(tokens) < 2:
        return None
    return " ".join(tokens)


# =============================================================================================
# Summaries
# =============================================================================================
def summarize_pages(
    pages: Pages, *, first_page_abstract: bool = True, info: dict | None = None
) -> DocumentSummary:
    """Summary of a chunk of pages ``[(page_number, text), ...]`` (numbers are 1-based, global).

    ``first_page_abstract``: the chunk starts the document, so look for its own abstract (and
    its title and authors) on the first two pages. ``info`` is :func:`marginalia.tools.pdf.pdf_info`
    of the file, when the caller has it: plausible metadata beats first-page guesses.
    """
    pages = [(int(n), t or "") for n, t in pages]
    if not any(t.strip() for _, t in pages):
        return DocumentSummary(
            title=(info or {}).get("title"), authors=list((info or {}).get("authors") or []),
            summary="", page_count=len(pages), status="no_text",
        )
    doc = _prepare(pages, find_abstract=first_page_abstract)
    language = detect_language(" ".join(t for _, t in pages[:5]))
    sumy_language = _SUMY_NAMES.get(language or "en", "english")
    title, authors = _title_and_authors(doc, info) if first_page_abstract else (None, [])

    body = [s for s in doc.sentences if not s.in_abstract]
    candidates = [s for s in body if _eligible(s.text)]
    if len(candidates) < 3:  # short or odd documents: rank whatever prose there is
        candidates = [s for s in doc.sentences if len(nlp.words(s.text)) >= 4]

    if doc.abstract:
        summary = _condense(doc.abstract, MAX_ABSTRACT_SUMMARY_WORDS, sumy_language)
    else:
        chosen = nlp.summarize_to_budget([s.text for s in candidates], SUMMARY_WORDS, language=sumy_language)
        summary = " ".join(candidates[i].text for i in chosen)
    key_points = _key_points(candidates, KEY_POINTS, sumy_language, exclude=summary if not doc.abstract else "")

    text_for_keywords = "\n".join([doc.abstract or ""] + ["\n".join(lines) for lines in doc.body_lines.values()])
    found = nlp.keywords(text_for_keywords, KEYWORDS * 2, language=language or "en", extra_stopwords=_LAYOUT_WORDS)
    keywords = _distinct_keywords(found, KEYWORDS)
    body_pages = [(n, "\n".join(doc.lines.get(n, []))) for n, _ in pages]
    entities = extract_entities(body_pages, authors=authors)
    return DocumentSummary(
        title=title,
        authors=authors,
        abstract=doc.abstract,
        summary=summary,
        key_points=key_points,
        entities=entities,
        keywords=keywords,
        page_count=len(pages),
        language=language,
        status="ok",
    )


#: Words of a document's scaffolding, never its subject (added to yake's stop words).
_LAYOUT_WORDS = frozenset(
    "abstract introduction conclusion conclusions background discussion appendix section sections table "
    "tables figure figures fig additional file et al page pages".split()
)


def _distinct_keywords(found: list[str], n: int) -> list[str]:
    """Best-first key phrases without inflected repeats ("vectors" after "vector")."""
    out: list[str] = []
    stems: set[str] = set()
    for phrase in found:
        stem = " ".join(sorted(_stem(w) for w in phrase.lower().split()))
        if stem in stems:
            continue
        stems.add(stem)
        out.append(phrase)
        if len(out) >= n:
            break
    return out


def _stem(word: str) -> str:
    """Plural to singular, roughly: enough to see "features" and "feature" as one keyword."""
    if len(word) <= 3:
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if re.search(r"(?:ss|ch|sh|x)es$", word):
        return word[:-2]
    if word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


_SUMY_NAMES = {"en": "english", "de": "german", "fr": "french", "es": "spanish", "it": "italian",
               "pt": "portuguese", "cs": "czech", "sk": "slovak"}


def _condense(text: str, max_words: int, language: str) -> str:
    """``text`` itself if it fits in ``max_words``, else its most central whole sentences."""
    if nlp.word_count(text) <= max_words:
        return text
    sentences = nlp.split_sentences(text)
    chosen = nlp.summarize_to_budget(sentences, max_words, language=language)
    return " ".join(sentences[i] for i in chosen)


def _key_points(candidates: list[_Sentence], n: int, language: str, *, exclude: str = "") -> list[KeyPoint]:
    """The ``n`` most central sentences not already in the summary, in document order."""
    if not candidates:
        return []
    ranked = nlp.rank_sentences([s.text for s in candidates], language=language)
    chosen: list[int] = []
    seen: set[str] = set()
    for i in ranked:
        norm = _norm(candidates[i].text)
        if norm in seen or (exclude and candidates[i].text in exclude):
            continue
        seen.add(norm)
        chosen.append(i)
        if len(chosen) >= n:
            break
    if not chosen:  # everything central is already the summary: repeat the best ones
        chosen = ranked[:n]
    points: dict[str, KeyPoint] = {}
    for i in sorted(chosen):
        sentence = candidates[i]
        norm = _norm(sentence.text)
        if norm in points:
            points[norm].pages = sorted(set(points[norm].pages) | {sentence.page})
        else:
            points[norm] = KeyPoint(text=sentence.text, pages=[sentence.page])
    return list(points.values())


def _norm(text: str) -> str:
    return " ".join(w.lower() for w in nlp.words(text))


def merge_summaries(parts: list[DocumentSummary], page_count: int) -> DocumentSummary:
    """Reduce step of map-reduce over page chunks; every chunk keeps a voice, nothing is cut.

    The document's own abstract (from the first chunk) stays the summary when there is one.
    Otherwise the chunk summaries' sentences are ranked together and the most central ones
    kept, with at least one sentence from each chunk, in document order. All key points and
    entities are kept (pages united), keywords interleaved best-first.
    """
    if not parts:
        raise ValueError("merge_summaries needs at least one part")
    ok_parts = [p for p in parts if p.status == "ok"] or parts
    if len(parts) == 1:
        return parts[0].model_copy(update={"page_count": page_count})
    title = next((p.title for p in parts if p.title), None)
    authors = next((p.authors for p in parts if p.authors), [])
    abstract = next((p.abstract for p in parts if p.abstract), None)
    language = Counter(p.language for p in ok_parts if p.language).most_common(1)
    language_code = language[0][0] if language else None
    if abstract:
        summary = next(p.summary for p in parts if p.abstract)
    else:
        summary = _merge_summary_texts([p.summary for p in ok_parts], _SUMY_NAMES.get(language_code or "en", "english"))

    key_points: dict[str, KeyPoint] = {}
    for part in ok_parts:
        for point in part.key_points:
            norm = _norm(point.text)
            if norm in key_points:
                key_points[norm].pages = sorted(set(key_points[norm].pages) | set(point.pages))
            else:
                key_points[norm] = point.model_copy()
    entities: dict[tuple[str, str], Entity] = {}
    for part in ok_parts:
        for entity in part.entities:
            key = (entity.type, entity.text.lower())
            if key in entities:
                entities[key].pages = sorted(set(entities[key].pages) | set(entity.pages))
            else:
                entities[key] = entity.model_copy()
    merged_entities = sorted(entities.values(), key=lambda e: (-len(e.pages), min(e.pages or [0])))
    return DocumentSummary(
        title=title,
        authors=list(authors),
        abstract=abstract,
        summary=summary,
        key_points=sorted(key_points.values(), key=lambda k: (min(k.pages or [0]))),
        entities=merged_entities,
        keywords=_interleave([p.keywords for p in ok_parts], KEYWORDS + 5),
        page_count=page_count,
        language=language_code,
        status="ok" if any(p.status == "ok" for p in parts) else "no_text",
    )


def _merge_summary_texts(texts: list[str], language: str) -> str:
    per_part = [nlp.split_sentences(t) for t in texts]
    flat = [(i, s) for i, sentences in enumerate(per_part) for s in sentences]
    if not flat:
        return ""
    budget = max(SUMMARY_WORDS, min(400, SUMMARY_WORDS + 30 * (len(texts) - 1)))
    chosen = set(nlp.summarize_to_budget([s for _, s in flat], budget, language=language))
    covered = {flat[i][0] for i in chosen}
    for part_index, sentences in enumerate(per_part):
        if part_index not in covered and sentences:
            ranked = nlp.rank_sentences(sentences, language=language)
            offset = sum(len(p) for p in per_part[:part_index])
            chosen.add(offset + ranked[0])
    return " ".join(flat[i][1] for i in sorted(chosen))


def _interleave(lists: list[list[str]], limit: int) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for rank in range(max((len(x) for x in lists), default=0)):
        for items in lists:
            if rank < len(items) and items[rank].lower() not in seen:
                seen.add(items[rank].lower())
                out.append(items[rank])
    return out[:limit]


# --- revision --------------------------------------------------------------------------------
_SHORTER = re.compile(r"\b(?:shorter|more concise|too long|less detail|briefer|condense|tighten|trim)\b", re.I)
_LONGER = re.compile(r"\b(?:longer|more detail(?:ed)?|too short|expand|elaborate|fuller)\b", re.I)
_FOCUS = re.compile(
    r"\b(?:focus(?:es|ed)? on|more (?:about|on)|emphasi[sz]e|mention|include|cover|add(?: more)? (?:about|on)?|"
    r"what about|missing)\s+(?:the\s+)?(?P<topic>[^.;,!?]+)", re.I,
)
_REMOVE = re.compile(
    r"\b(?:remove|drop|omit|leave out|don'?t mention|do not mention|without|no more|cut)\s+(?:the\s+)?(?P<topic>[^.;,!?]+)",
    re.I,
)
_RETITLE = re.compile(r"\b(?:title (?:should be|to|is)|rename (?:the )?title to|call it|retitle(?: it)?(?: to)?)\s*[:\"“']?(?P<title>[^\"”'\n]+)", re.I)
_NO_ABSTRACT = re.compile(r"\b(?:not|don'?t|do not|without)\b.{0,20}\babstract\b", re.I)


def revise_summary(summary: DocumentSummary, feedback: str, pages: Pages) -> DocumentSummary:
    """A new summary after a reviewer rejected ``summary`` with ``feedback`` (deterministic).

    Understood: "shorter" / "more detail", "focus on X" / "mention X", "remove X",
    "title should be X", "don't just copy the abstract". Any other feedback is read as topic
    words to focus on. The result always differs from ``summary``.
    """
    feedback = (feedback or "").strip()
    pages = [(int(n), t or "") for n, t in pages]
    doc = _prepare(pages, find_abstract=False) if pages else _Document(pages=[])
    language = _SUMY_NAMES.get(summary.language or "en", "english")
    candidates = [s for s in doc.sentences if _eligible(s.text)] or doc.sentences
    updates: dict = {}
    text = summary.summary

    if match := _RETITLE.search(feedback):
        updates["title"] = match.group("title").strip(" .\"'”")
    if _NO_ABSTRACT.search(feedback) and candidates:
        chosen = nlp.summarize_to_budget([s.text for s in candidates], SUMMARY_WORDS, language=language)
        text = " ".join(candidates[i].text for i in chosen)
    if _SHORTER.search(feedback):
        target = max(25, nlp.word_count(text) // 2)
        text = _condense_strict(text, target, language)
        updates["key_points"] = summary.key_points[: max(2, len(summary.key_points) // 2)]
    elif _LONGER.search(feedback) and candidates:
        budget = max(SUMMARY_WORDS, int(nlp.word_count(text) * 1.6))
        extra = [s for s in candidates if s.text not in text]
        chosen = nlp.summarize_to_budget([s.text for s in extra], budget - nlp.word_count(text), language=language)
        text = " ".join([text] + [extra[i].text for i in chosen]).strip()
        more = _key_points(candidates, KEY_POINTS * 2, language)
        updates["key_points"] = _union_points(summary.key_points, more)

    removed = [m.group("topic").strip() for m in _REMOVE.finditer(feedback)]
    for topic in removed:
        text = " ".join(s for s in nlp.split_sentences(text) if not _mentions(s, topic))
        updates["key_points"] = [k for k in updates.get("key_points", summary.key_points) if not _mentions(k.text, topic)]
        updates["keywords"] = [k for k in summary.keywords if not _mentions(k, topic)]
    focus = [m.group("topic").strip() for m in _FOCUS.finditer(feedback)]
    if not focus and not removed and not updates and text == summary.summary:
        focus = [" ".join(nlp.keywords(feedback, 3) or nlp.words(feedback)[:4])]
    for topic in focus:
        hits = [s for s in candidates if _mentions(s.text, topic) and s.text not in text]
        if hits:
            ranked = nlp.rank_sentences([s.text for s in hits], language=language)
            best = [hits[i] for i in ranked[:2]]
            text = " ".join([text] + [s.text for s in best]).strip()
            points = updates.get("key_points", summary.key_points)
            updates["key_points"] = _union_points(points, [KeyPoint(text=s.text, pages=[s.page]) for s in best])
            if topic.lower() not in (k.lower() for k in summary.keywords):
                updates["keywords"] = [topic] + list(updates.get("keywords", summary.keywords))
    updates["summary"] = text
    revised = summary.model_copy(update=updates, deep=True)
    if revised.model_dump() == summary.model_dump():
        # Nothing in the pages matched the feedback: say so rather than pretend.
        note = f"(Revised after review: no passage in the document matches {feedback[:80]!r}.)"
        revised = revised.model_copy(update={"summary": f"{summary.summary} {note}".strip()})
    return revised


def _condense_strict(text: str, max_words: int, language: str) -> str:
    sentences = nlp.split_sentences(text)
    if len(sentences) <= 1:
        return text
    chosen = nlp.summarize_to_budget(sentences, max_words, language=language)
    if not chosen:
        chosen = nlp.rank_sentences(sentences, language=language)[:1]
    result = " ".join(sentences[i] for i in sorted(chosen))
    if result == text:  # every sentence fitted: drop the least central one
        keep = sorted(nlp.rank_sentences(sentences, language=language)[:-1])
        result = " ".join(sentences[i] for i in keep)
    return result


def _mentions(text: str, topic: str) -> bool:
    words = [w.lower() for w in nlp.words(topic) if w.lower() not in _FUNCTION_WORDS]
    if not words:
        return False
    lowered = {w.lower() for w in nlp.words(text)}
    return all(any(t == w or t.startswith(w) for t in lowered) for w in words)


def _union_points(first: list[KeyPoint], second: list[KeyPoint]) -> list[KeyPoint]:
    out = [k.model_copy() for k in first]
    seen = {_norm(k.text) for k in out}
    for point in second:
        if _norm(point.text) not in seen:
            out.append(point.model_copy())
            seen.add(_norm(point.text))
    return out


# =============================================================================================
# Outlines
# =============================================================================================
DEFAULT_SLIDES = 8
MAX_SLIDES = 60
#: Bullets per slide by default, and after "fewer bullets" / "more bullets".
BULLETS, FEWER_BULLETS, MORE_BULLETS = 4, 2, 6
#: A bullet longer than this many words is cut at a clause boundary (when it has one).
BULLET_WORDS = 24

_NUMBER_WORDS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20,
}
_COUNT = r"(?P<n>\d{1,3}|" + "|".join(sorted(_NUMBER_WORDS, key=len, reverse=True)) + r")"
_SLIDE_COUNT = [
    re.compile(r"--slides[= ]\s*(?P<n>\d{1,3})", re.I),
    re.compile(r"\bslides?\s*[:=]\s*(?P<n>\d{1,3})\b", re.I),
    re.compile(rf"\b{_COUNT}[\s-]*(?:slides?|slider)\b", re.I),
    re.compile(rf"\b(?:make it|in|to|with|only)\s+{_COUNT}\b(?!\s*(?:minutes?|min|%|percent))", re.I),
]
_QUOTED = re.compile(r"[\"“”‘’']([^\"“”‘’']{3,200})[\"“”‘’']")
_TOPIC = re.compile(
    r"\b(?:on|about|covering|summari[sz]ing|presenting|explaining|for a talk on|regarding)\s+(?:the\s+)?"
    r"(?P<topic>.+?)(?=\s+(?:for|to|with|using|based on|from|in\s+\d|so that|that)\b|[.;!?\n]|$)",
    re.I,
)
_AUDIENCE = re.compile(r"\bfor\s+(?P<who>(?:the\s+|a\s+|an\s+|our\s+)?[\w\s-]{3,60}?)(?=[.;,!?\n]|$|\s+(?:on|about)\b)", re.I)


def parse_slide_count(text: str) -> int | None:
    """The slide count a request asks for ("10-slide", "--slides 8", "twelve slides"), if any."""
    for pattern in _SLIDE_COUNT:
        match = pattern.search(text or "")
        if match:
            raw = match.group("n").lower()
            value = int(raw) if raw.isdigit() else _NUMBER_WORDS.get(raw)
            if value:
                return value
    return None


def _parse_topic(request: str) -> str | None:
    quoted = _QUOTED.search(request)
    if quoted:
        return quoted.group(1).strip()
    match = _TOPIC.search(request)
    if match:
        topic = re.sub(r"^(?:a|an|the|our)\s+", "", match.group("topic").strip(" .,:;"), flags=re.I)
        topic = re.sub(rf"^{_COUNT}[\s-]*slides?\s*", "", topic, flags=re.I)
        if len(nlp.words(topic)) >= 1:
            return topic[0].upper() + topic[1:]
    return None


def _parse_audience(request: str) -> str | None:
    for match in _AUDIENCE.finditer(request):
        who = match.group("who").strip()
        if who and not re.match(r"^(?:a talk|a conference|the paper|\d)", who, re.I) and len(who.split()) <= 6:
            return who
    return None


@dataclass
class _Candidate:
    text: str
    source: str
    kind: str  # "key_point" | "summary"


_ARC_CUES = {
    "problem": re.compile(r"\b(?:problem|challenge|lack|issue|overrun|increase|grew|cost|risk|difficult|however|gap|need)", re.I),
    "approach": re.compile(r"\b(?:we (?:propose|present|introduce|use|apply|develop)|approach|method|model|framework|system|design|using|based on|algorithm)", re.I),
    "results": re.compile(r"(?:\d+(?:\.\d+)?\s?%|\$\s?\d|\b(?:result|show|improve|outperform|achiev|accuracy|score|save|reduc|found|significant))", re.I),
    "discussion": re.compile(r"\b(?:limitation|however|although|discuss|suggest|implication|trade-?off|future|caveat|depend)", re.I),
    "conclusion": re.compile(r"\b(?:conclu|recommend|should|next|will|plan|propose|summary|overall|in short|due|owner|decision)", re.I),
}
_ARC_TITLES = {
    "agenda": "Agenda",
    "problem": "Motivation and problem",
    "approach": "Approach",
    "results": "Key results",
    "discussion": "Discussion",
    "conclusion": "Conclusion and next steps",
}


def _arc(count: int) -> list[str]:
    """Slide roles for a talk of ``count`` content slides: the arc, with topic sections in the middle."""
    if count <= 0:
        return []
    fixed = {
        1: ["overview"],
        2: ["problem", "conclusion"],
        3: ["problem", "results", "conclusion"],
        4: ["problem", "approach", "results", "conclusion"],
        5: ["agenda", "problem", "approach", "results", "conclusion"],
        6: ["agenda", "problem", "approach", "results", "discussion", "conclusion"],
    }
    if count in fixed:
        return fixed[count]
    middle = count - 6
    return ["agenda", "problem", "approach"] + ["section"] * middle + ["results", "discussion", "conclusion"]


def _bulletize(sentence: str) -> str:
    """A sentence as a slide bullet: no list number, no final stop, long ones cut at a clause."""
    text = re.sub(r"^\s*(?:\d{1,2}[.)]|[-•*])\s+", "", sentence).strip()
    tokens = text.split()
    if len(tokens) > BULLET_WORDS:
        head = " ".join(tokens[:BULLET_WORDS])
        cut = max(head.rfind(", "), head.rfind("; "), head.rfind(" – "))
        if cut > len(head) // 3:
            text = head[:cut]
    return text.rstrip(" .;:,")


def _candidates(sources: Sequence[SourceContext]) -> list[_Candidate]:
    out: list[_Candidate] = []
    seen: set[str] = set()
    for source in sources:
        pieces = [(kp, "key_point") for kp in source.key_points]
        pieces += [(s, "summary") for s in nlp.split_sentences(source.summary or "")]
        for text, kind in pieces:
            bullet = _bulletize(text)
            norm = _norm(bullet)
            if len(nlp.words(bullet)) < 3 or norm in seen:
                continue
            seen.add(norm)
            out.append(_Candidate(bullet, source.uri, kind))
    return out


def _section_titles(sources: Sequence[SourceContext], topic: str | None, needed: int, focus: list[str]) -> list[str]:
    """Titles of the middle slides: focus phrases first, then the sources' keywords (distinct)."""
    titles: list[str] = []
    taken = [set(_norm(topic or "").split())]
    pool = list(focus) + _interleave([list(s.keywords) for s in sources], 100)
    for phrase in pool:
        words = set(_norm(phrase).split()) - _FUNCTION_WORDS
        if not words or any(len(words & t) * 2 >= len(words) for t in taken):
            continue  # mostly words of a title already taken ("Web Services reached" after "Amazon Web Services")
        taken.append(words)
        titles.append(phrase[0].upper() + phrase[1:])
        if len(titles) >= needed:
            break
    while len(titles) < needed:
        titles.append(f"{topic or 'Details'}: part {len(titles) + 1}")
    return titles


def _score(candidate: _Candidate, role: str, title: str, focus_words: set[str]) -> float:
    words = {w.lower() for w in nlp.words(candidate.text)}
    title_words = {w.lower() for w in nlp.words(title)} - _FUNCTION_WORDS
    score = 2.0 * len(words & title_words) + 1.5 * len(words & focus_words)
    cue = _ARC_CUES.get(role)
    if cue is not None and cue.search(candidate.text):
        score += 2.0
    if candidate.kind == "key_point":
        score += 0.5
    return score


def draft_outline(
    request: str,
    *,
    slides: int | None,
    sources: Sequence[SourceContext],
    feedback: str | None = None,
    previous: Outline | None = None,
) -> Outline:
    """A deterministic slide outline for ``request`` grounded in ``sources``.

    The slide count is ``slides`` if given, else the one the request names ("10-slide",
    "--slides 10"), else 8; the outline has exactly that many content slides. With ``feedback``
    (and the ``previous`` outline a reviewer rejected), the revision honours simple requests:
    "add a slide on X", "remove the slide on X", "fewer/more bullets", "rename title to X",
    "N slides"; anything else is read as topics to focus on. A revision always differs from
    ``previous``.
    """
    request = (request or "").strip()
    if feedback and previous is not None:
        return _revise_outline(previous, feedback, request=request, sources=sources)
    count = slides if slides is not None else parse_slide_count(request) or DEFAULT_SLIDES
    if not 1 <= count <= MAX_SLIDES:
        from ..errors import InvalidInput

        raise InvalidInput(f"a presentation of {count} slides cannot be outlined: ask for 1 to {MAX_SLIDES} slides")
    focus = _feedback_focus(feedback) if feedback else []
    outline = _build_outline(request, count, sources, focus=focus, bullets=BULLETS)
    if feedback:  # feedback without a previous outline: apply it to the fresh draft
        return _revise_outline(outline, feedback, request=request, sources=sources, force_change=False)
    return outline


def _build_outline(
    request: str, count: int, sources: Sequence[SourceContext], *, focus: list[str], bullets: int,
    title: str | None = None,
) -> Outline:
    topic = _parse_topic(request) or next((s.title for s in sources if s.title), None) or "Presentation"
    audience = _parse_audience(request)
    roles = _arc(count)
    sections = _section_titles(sources, topic, roles.count("section"), focus)
    titles: list[str] = []
    section_iter = iter(sections)
    for role in roles:
        if role == "section":
            titles.append(next(section_iter))
        elif role == "overview":
            titles.append(topic)
        else:
            titles.append(_ARC_TITLES[role])

    candidates = _candidates(sources)
    focus_words = {w.lower() for f in focus for w in nlp.words(f)} - _FUNCTION_WORDS
    assigned: dict[int, list[_Candidate]] = {i: [] for i in range(count)}
    content_slots = [i for i, role in enumerate(roles) if role != "agenda"]
    # Two greedy passes over (slide, candidate) pairs, best match first: first every slide gets
    # one bullet (so no slide is left empty while another has four), then slides fill up.
    pairs = sorted(
        ((-_score(c, roles[i], titles[i], focus_words), ci, i) for ci, c in enumerate(candidates) for i in content_slots),
    )
    used: set[int] = set()
    for room in (1, bullets):
        for _neg, ci, i in pairs:
            if ci in used or len(assigned[i]) >= room:
                continue
            assigned[i].append(candidates[ci])
            used.add(ci)

    out: list[Slide] = []
    for i, role in enumerate(roles):
        if role == "agenda":
            agenda = [t for j, t in enumerate(titles) if j != i][: max(bullets, 6)]
            out.append(Slide(title=titles[i], bullets=agenda, notes=_notes(role, titles[i], [], topic, audience)))
            continue
        chosen = sorted(assigned[i], key=lambda c: candidates.index(c))
        bullet_texts = [c.text for c in chosen] or _placeholder_bullets(role, titles[i], topic)
        out.append(Slide(title=titles[i], bullets=bullet_texts, notes=_notes(role, titles[i], chosen, topic, audience)))
    topics = [t for t, role in zip(titles, roles) if role in ("section", "overview")] or sections
    if not topics:
        topics = _interleave([list(s.keywords) for s in sources], 5)
    return Outline(title=title or topic, slides=out, topics=topics, slide_count=len(out))


def _placeholder_bullets(role: str, title: str, topic: str) -> list[str]:
    """Bullets for a slide no source speaks to: prompts for the speaker, never invented facts."""
    prompts = {
        "problem": [f"Why {topic} matters now", "What is not working today"],
        "approach": [f"How we approach {topic}", "Main steps and choices"],
        "results": ["What changed, with figures", "Evidence and comparison"],
        "discussion": ["Open questions and limits", "Risks and trade-offs"],
        "conclusion": ["Main takeaway", "Next steps and owners"],
        "overview": [f"What {topic} is about", "Key message"],
    }
    return prompts.get(role, [f"Key facts about {title}", f"How {title} relates to {topic}"])


def _notes(role: str, title: str, chosen: list[_Candidate], topic: str, audience: str | None) -> str:
    """Speaker notes: what to say on the slide, and where its bullets come from."""
    who = f" ({audience})" if audience else ""
    lead = {
        "agenda": f"Walk the audience{who} through the structure of the talk on {topic}.",
        "problem": f"Set out why {topic} needs attention.",
        "approach": "Explain how the work was done and the main choices.",
        "results": "Give the figures that matter and what they show.",
        "discussion": "Discuss limits, risks and open questions.",
        "conclusion": "Close with the main takeaway and the next steps.",
        "overview": f"Give the essentials of {topic}.",
    }.get(role, f"Present {title} and how it fits the story of {topic}.")
    sources = sorted({c.source for c in chosen})
    if sources:
        lead += " Source: " + ", ".join(sources) + "."
    return lead


# --- outline revision ------------------------------------------------------------------------
_ADD_SLIDE = re.compile(r"\badd (?:a |an |one |another )?(?:new )?slides? (?:on|about|for|covering)\s+(?:the\s+)?(?P<topic>[^.;!?\n]+)", re.I)
_REMOVE_SLIDE = re.compile(
    r"\b(?:remove|drop|delete|cut) (?:the )?slides? (?:on|about|for|titled|called)\s+(?:the\s+)?[\"“']?(?P<topic>[^.;!?\n\"”']+)", re.I
)
_REMOVE_SLIDE_NUMBER = re.compile(r"\b(?:remove|drop|delete|cut) slide (?:number )?(?P<n>\d{1,2})\b", re.I)
_RENAME_TITLE = re.compile(
    r"\b(?:rename (?:the )?(?:deck |presentation )?title to|change (?:the )?title to|(?:the )?title should be|call (?:it|the deck))\s*"
    r"[:\"“']?(?P<title>[^\"”'\n]+?)[\"”']?\s*(?:[.;!?]|$)", re.I,
)
_RENAME_SLIDE = re.compile(r"\brename slide (?P<n>\d{1,2}) to\s*[\"“']?(?P<title>[^\"”'\n.;!?]+)", re.I)
_FEWER_BULLETS = re.compile(r"\b(?:fewer|less|shorter) (?:bullets?|bullet points|text|words)\b|\btoo (?:wordy|much text|many bullets)\b", re.I)
_MORE_BULLETS = re.compile(r"\bmore (?:bullets?|bullet points|detail|details|content)\b", re.I)
_FEWER_SLIDES = re.compile(r"\b(?:fewer|less) slides\b|\btoo many slides\b|\bshorter (?:deck|talk|presentation)\b", re.I)
_MORE_SLIDES = re.compile(r"\bmore slides\b|\blonger (?:deck|talk|presentation)\b", re.I)


def _feedback_focus(feedback: str) -> list[str]:
    topics = [m.group("topic").strip() for m in _FOCUS.finditer(feedback or "")]
    return [t for t in topics if t and not re.match(r"^(?:a |an )?slides?\b", t, re.I)]


def _revise_outline(
    previous: Outline, feedback: str, *, request: str, sources: Sequence[SourceContext], force_change: bool = True
) -> Outline:
    """Apply reviewer ``feedback`` to ``previous``; the result always differs when ``force_change``."""
    feedback = feedback.strip()
    slides = [s.model_copy(deep=True) for s in previous.slides]
    title = previous.title
    topics = list(previous.topics)
    candidates = _candidates(sources)
    used = {_norm(b) for s in slides for b in s.bullets}
    handled = False

    requested = parse_slide_count(feedback)
    focus = _feedback_focus(feedback)
    if requested is None and _FEWER_SLIDES.search(feedback):
        requested = max(1, len(slides) - 2)
    if requested is None and _MORE_SLIDES.search(feedback):
        requested = len(slides) + 2
    if requested is not None and requested != len(slides):
        if not 1 <= requested <= MAX_SLIDES:
            from ..errors import InvalidInput

            raise InvalidInput(f"a presentation of {requested} slides cannot be outlined: ask for 1 to {MAX_SLIDES} slides")
        bullets = max((len(s.bullets) for s in slides), default=BULLETS)
        rebuilt = _build_outline(request or title, requested, sources, focus=focus or topics, bullets=max(1, bullets), title=title)
        slides, handled = rebuilt.slides, True

    if match := _RENAME_TITLE.search(feedback):
        title, handled = match.group("title").strip(" .\"'”"), True
    for match in _RENAME_SLIDE.finditer(feedback):
        n = int(match.group("n"))
        if 1 <= n <= len(slides):
            slides[n - 1].title, handled = match.group("title").strip(), True
    for match in _REMOVE_SLIDE_NUMBER.finditer(feedback):
        n = int(match.group("n"))
        if 1 <= n <= len(slides) and len(slides) > 1:
            del slides[n - 1]
            handled = True
    for match in _REMOVE_SLIDE.finditer(feedback):
        topic = match.group("topic").strip()
        keep = [s for s in slides if not _mentions(s.title, topic)]
        if keep and len(keep) < len(slides):
            slides, handled = keep, True
    for match in _ADD_SLIDE.finditer(feedback):
        topic = match.group("topic").strip()
        slide = _slide_on(topic, candidates, used, BULLETS)
        position = len(slides) - 1 if len(slides) > 1 else len(slides)  # before the conclusion
        slides.insert(position, slide)
        used.update(_norm(b) for b in slide.bullets)
        if topic not in topics:
            topics.append(topic)
        handled = True
    if _FEWER_BULLETS.search(feedback):
        for s in slides:
            s.bullets = s.bullets[: max(1, min(FEWER_BULLETS, len(s.bullets) - 1))]
        handled = True
    elif _MORE_BULLETS.search(feedback):
        for s in slides:
            extra = _best_candidates(s.title, candidates, used, MORE_BULLETS - len(s.bullets))
            s.bullets.extend(extra)
            used.update(_norm(b) for b in extra)
        handled = True
    if not handled or focus:
        # Topics to emphasise: put matching source bullets on the slides that fit them best.
        for topic in focus or [" ".join(nlp.keywords(feedback, 2) or nlp.words(feedback)[:3])]:
            target = max(range(len(slides)), key=lambda i: (_overlap(slides[i].title, topic), -i))
            extra = _best_candidates(topic, candidates, used, 2, require_match=True)
            if extra:
                slides[target].bullets = extra + slides[target].bullets
                used.update(_norm(b) for b in extra)
            else:
                slides.insert(max(0, len(slides) - 1), _slide_on(topic, candidates, used, BULLETS))
            if topic and topic not in topics:
                topics.append(topic)
    revised = Outline(title=title, slides=slides, topics=topics, slide_count=len(slides))
    if force_change and revised.model_dump() == previous.model_dump():
        # Nothing in the feedback could be applied mechanically: record it where the speaker sees it.
        slides[0].notes = (slides[0].notes + f" Reviewer feedback to address: {feedback}").strip()
        revised = Outline(title=title, slides=slides, topics=topics, slide_count=len(slides))
    return revised


def _overlap(a: str, b: str) -> int:
    return len(({w.lower() for w in nlp.words(a)} - _FUNCTION_WORDS) & ({w.lower() for w in nlp.words(b)} - _FUNCTION_WORDS))


def _best_candidates(topic: str, candidates: list[_Candidate], used: set[str], n: int, *, require_match: bool = False) -> list[str]:
    if n <= 0:
        return []
    scored = [
        (-_overlap(c.text, topic), i, c) for i, c in enumerate(candidates)
        if _norm(c.text) not in used and (not require_match or _overlap(c.text, topic) > 0)
    ]
    return [c.text for _s, _i, c in sorted(scored)[:n]]


def _slide_on(topic: str, candidates: list[_Candidate], used: set[str], n: int) -> Slide:
    title = topic[0].upper() + topic[1:] if topic else "Additional topic"
    bullets = _best_candidates(topic, candidates, used, n, require_match=True)
    notes = f"Added at the reviewer's request: {topic}."
    if not bullets:
        bullets = _placeholder_bullets("section", title, title)
        notes += " No source passage mentions it: fill in from your own material."
    return Slide(title=title, bullets=bullets, notes=notes)
