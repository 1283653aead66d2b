"""The offline engine's document summaries: summaries of PDF pages, by rules.

No model, no weights, no network, same answer every time. What it does, and why:

* **Summary.** A document that states its own abstract is best summarised by it (measured on
  real papers, the author abstract beats every extractive ranker), so :func:`summarize_pages`
  uses it when the first page has one; otherwise it picks ~150 words of the most central
  sentences (LexRank). Key points are the most central body sentences, each with its page.
  Running headers/footers and the reference list are left out before ranking.
* **Title and authors** come from the PDF metadata when it is plausible (not a job number),
  else from the first page: the block of lines just above the author line.
* **Entities** are found by the rules of :mod:`marginalia.engines.offline_entities`.
* **Language** is the one whose stop words are most frequent (:func:`detect_language`).
* **Map-reduce.** :func:`merge_summaries` joins the summaries of page chunks, every chunk
  keeping a voice.
* **Revisions** apply simple reviewer feedback ("shorter", "focus on X", "remove X",
  "title should be X") and always produce something different.

:class:`marginalia.engines.offline.OfflineEngine` delegates its summary methods here; slide
outlines are in :mod:`marginalia.engines.offline_outline`.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from dataclasses import dataclass, field

from ..schemas import DocumentSummary, Entity, KeyPoint
from ..tools.pdf import abstract_span, abstract_text, split_authors
from ..tools.pdf_layout import BOILERPLATE_SECTIONS
from . import text as nlp
from .offline_entities import _ORG_WORDS, Pages, extract_entities

__all__ = [
    "SUMMARY_WORDS",
    "detect_language",
    "merge_summaries",
    "revise_summary",
    "summarize_pages",
]

#: Word budget of an extractive summary (the abstract, when there is one, is kept whole).
SUMMARY_WORDS = 150
#: How many key points one chunk of pages contributes (at least), and at most (one a section).
KEY_POINTS, MAX_KEY_POINTS = 6, 12
#: Keywords per chunk, and after a merge.
KEYWORDS = 10
#: An abstract longer than this is condensed (extractively) for ``summary``; ``abstract`` keeps it all.
MAX_ABSTRACT_SUMMARY_WORDS = 320


# =============================================================================================
# Page text -> body sentences with pages
# =============================================================================================
_REFERENCES_HEADING = re.compile(
    r"^(?:\d{1,2}\.?\s+)?(?:references|bibliography|literature cited|works cited)\s*$", re.I
)
_FRONT_MATTER = re.compile(
    r"copyright|\u00a9|licen[cs]e[ds]?\b|creative commons|all rights reserved|doi[:.]|\bissn\b|\bisbn\b|"
    r"correspondence should|received \d|accepted \d|academic editor|permits unrestricted|open access article|"
    r"properly cited|author information is available|read and approved the final|competing interests|"
    r"this work was (?:supported|funded)|we (?:would like to )?thank\b|grant (?:no|number)",
    re.I,
)
_REFERENCE_LIKE = re.compile(
    r"\bet al\.,? \(?\d{4}|\bpp\.\s*\d|\bIn Proceedings\b|\bvol\.\s*\d|\(\d{4}[a-z]?\)\.", re.I
)
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
    #: the heading of the section the sentence is in ("" before the first one)
    section: str = ""


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
    counts: Counter[str] = Counter()
    for _, text in pages:
        counts.update({_line_key(line) for line in text.split("\n") if line.strip()})
    threshold = max(3, math.ceil(len(pages) / 2))
    return {key for key, n in counts.items() if n >= threshold and len(key) < 120}


def _prepare(pages: Pages, *, find_abstract: bool) -> _Document:
    doc = _Document(pages=[(int(n), t or "") for n, t in pages])
    repeated = _repeated_lines(doc.pages)
    in_references = False
    skipping = False
    section = ""
    section_number = 0
    sections_of: dict[tuple[int, int], str] = {}
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
        kept: list[tuple[int, str]] = []
        for index, line in enumerate(lines):
            if in_references:
                break
            if _REFERENCES_HEADING.match(line):
                in_references = True
                break
            if _line_key(line) in repeated or _PAGE_NUMBER.match(line):
                continue
            heading = _text_heading(line, section_number)
            if heading is not None:
                section_number = _section_number(line) or section_number
                skipping = bool(BOILERPLATE_SECTIONS.match(heading))
                section = heading
            if skipping:  # acknowledgements, author contributions, competing interests ...
                continue
            kept.append((index, line))
            sections_of[(number, index)] = section
        doc.lines[number] = [line for _, line in kept]
        abstract_range = doc.abstract_lines if number == doc.abstract_page else None
        front = doc.front_matter if position == 0 else 0
        body = [
            (index, line)
            for index, line in kept
            if index >= front and not (abstract_range and abstract_range[0] <= index < abstract_range[1])
        ]
        doc.body_lines[number] = [line for _, line in body]
        for block_section, block in _by_section(body, number, sections_of):
            for sentence in nlp.split_sentences(_paragraphs(block)):
                doc.sentences.append(_Sentence(_tidy(sentence), number, section=block_section))
        if abstract_range and doc.abstract:
            for sentence in nlp.split_sentences(doc.abstract):
                doc.sentences.append(_Sentence(_tidy(sentence), number, in_abstract=True))
    return doc


_PAGE_NUMBER = re.compile(r"^\s*(?:page\s+)?\d{1,4}(?:\s*(?:/|of)\s*\d{1,4})?\s*$", re.I)
_KNOWN_SECTION = re.compile(
    r"^(?:abstract|introduction|background|motivation|related work|methods?|methodology|materials and methods|"
    r"approach|experiments?|experimental (?:setup|results)|evaluation|results(?: and discussion)?|discussion|"
    r"analysis|conclusions?|concluding remarks|summary(?: and discussion)?|future work|limitations)\s*$"
    r"|" + BOILERPLATE_SECTIONS.pattern[1:-1] + r"$",
    re.I,
)
_SECTION_NUMBER = re.compile(r"^(?:\d{1,2}\.?|[IVX]{1,4}\.)\s+(?=[A-Z])")


def _section_number(line: str) -> int | None:
    match = re.match(r"^(\d{1,2})\.?\s", line.strip())
    return int(match.group(1)) if match else None


def _text_heading(line: str, previous_number: int = 0) -> str | None:
    """The heading ``line`` states (numbering removed), or None: a known section name on a line
    of its own, or a numbered top-level heading ("3 Results") whose number follows the previous
    section's (a table row "12 Team system ..." is not a heading)."""
    line = line.strip()
    if _KNOWN_SECTION.match(line):
        return line
    number = _section_number(line)
    if number is not None and number != previous_number + 1:
        return None
    if _SECTION_NUMBER.match(line) and _NUMBERED_HEADING.match(line) and not re.search(r"[.,;:]$", line):
        rest = _SECTION_NUMBER.sub("", line)
        if len(rest.split()) <= 10 and sum(c.isalpha() for c in rest) >= 0.7 * len(rest.replace(" ", "")):
            return rest
    return None


def _by_section(body: list[tuple[int, str]], page: int, sections_of: dict) -> list[tuple[str, list[str]]]:
    """Consecutive lines of one section together, with its heading."""
    blocks: list[tuple[str, list[str]]] = []
    for index, line in body:
        section = sections_of.get((page, index), "")
        if not blocks or blocks[-1][0] != section:
            blocks.append((section, []))
        blocks[-1][1].append(line)
    return blocks


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
        title = next(
            (line for line in first_lines if len(nlp.words(line)) >= 3 and not _HEADER_LINE.search(line)), None
        )
    authors = meta_authors if len(meta_authors) >= len(page_authors) else page_authors
    return title, authors


@functools.lru_cache(maxsize=1)
def _stop_word_sets() -> dict[str, frozenset[str]]:
    from .lexrank import stop_words

    codes = {
        "english": "en",
        "german": "de",
        "french": "fr",
        "spanish": "es",
        "italian": "it",
        "portuguese": "pt",
        "czech": "cs",
        "slovak": "sk",
    }
    sets = {}
    for name, code in codes.items():
        if found := stop_words(name):
            sets[code] = found
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
# Summaries
# =============================================================================================
def summarize_pages(pages: Pages, *, first_page_abstract: bool = True, info: dict | None = None) -> DocumentSummary:
    """Summary of a chunk of pages ``[(page_number, text), ...]`` (numbers are 1-based, global).

    ``first_page_abstract``: the chunk starts the document, so look for its own abstract (and
    its title and authors) on the first two pages. ``info`` is :func:`marginalia.tools.pdf.pdf_info`
    of the file, when the caller has it: plausible metadata beats first-page guesses.
    """
    pages = [(int(n), t or "") for n, t in pages]
    if not any(t.strip() for _, t in pages):
        return DocumentSummary(
            title=(info or {}).get("title"),
            authors=list((info or {}).get("authors") or []),
            summary="",
            page_count=len(pages),
            status="no_text",
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
        summary = _framing_summary(candidates, sumy_language)
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


_FRAMING_SECTION = re.compile(
    r"^(?:introduction|background|motivation|conclusions?|concluding remarks|summary(?: and \w+)?|"
    r"discussion|conclusions? and future work|discussion and conclusions?)\b",
    re.I,
)


#: What authors write when they state what their paper does or found (Edmundson's cue words).
_CUE_PHRASES = re.compile(
    r"\b(?:(?:in )?this (?:paper|study|article|work)|we (?:propose|present|introduce|show|find|found|describe|"
    r"report|demonstrate|develop|examine|investigate|evaluate|argue)|our (?:results|findings|approach|method|"
    r"model|study)|the (?:aim|goal|purpose|objective) of|(?:results|findings) (?:show|suggest|indicate))",
    re.I,
)


def _framing_summary(candidates: list[_Sentence], language: str) -> str:
    """~:data:`SUMMARY_WORDS` words for a document without an abstract.

    A paper says what it did and found in its introduction and its conclusion (or discussion):
    those sentences are the pool when it has such sections (all candidates otherwise), and
    within it the sentences with a cue phrase ("in this paper", "we show", "our results")
    come first, each group most central (LexRank) first.
    """
    framing = [s for s in candidates if _FRAMING_SECTION.match(s.section)]
    pool = framing if len(framing) >= 4 else candidates
    if not pool:
        return ""
    ranked = nlp.rank_sentences([s.text for s in pool], language=language)
    order = [i for i in ranked if _CUE_PHRASES.search(pool[i].text)] + [
        i for i in ranked if not _CUE_PHRASES.search(pool[i].text)
    ]
    chosen: list[int] = []
    used = 0
    for i in order:
        count = nlp.word_count(pool[i].text)
        if used + count > SUMMARY_WORDS:
            if SUMMARY_WORDS - used < 8:
                break
            continue
        chosen.append(i)
        used += count
    return " ".join(pool[i].text for i in sorted(chosen))


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


_SUMY_NAMES = {
    "en": "english",
    "de": "german",
    "fr": "french",
    "es": "spanish",
    "it": "italian",
    "pt": "portuguese",
    "cs": "czech",
    "sk": "slovak",
}


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
    sections = {s.section for s in candidates if s.section}
    n = max(n, min(MAX_KEY_POINTS, 2 * len(sections)))
    chosen: list[int] = []
    seen: set[str] = set()
    covered: set[str] = set()
    # Every section's most central sentence first (a talk needs something on each), then the rest.
    first_pass = [i for i in ranked if candidates[i].section and candidates[i].section not in covered]
    for i in first_pass + ranked:
        norm = _norm(candidates[i].text)
        if norm in seen or (exclude and candidates[i].text in exclude):
            continue
        if i in first_pass and candidates[i].section in covered and len(chosen) < len(sections):
            continue
        seen.add(norm)
        covered.add(candidates[i].section)
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
            points[norm] = KeyPoint(text=sentence.text, pages=[sentence.page], section=sentence.section or None)
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
        key_points=sorted(key_points.values(), key=lambda k: min(k.pages or [0])),
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
    r"what about|missing)\s+(?:the\s+)?(?P<topic>[^.;,!?]+)",
    re.I,
)
_REMOVE = re.compile(
    r"\b(?:remove|drop|omit|leave out|don'?t mention|do not mention|without|no more|cut)\s+(?:the\s+)?(?P<topic>[^.;,!?]+)",
    re.I,
)
_RETITLE = re.compile(
    r"\b(?:title (?:should be|to|is)|rename (?:the )?title to|call it|retitle(?: it)?(?: to)?)\s*[:\"“']?(?P<title>[^\"”'\n]+)",
    re.I,
)
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
        updates["key_points"] = [
            k for k in updates.get("key_points", summary.key_points) if not _mentions(k.text, topic)
        ]
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
