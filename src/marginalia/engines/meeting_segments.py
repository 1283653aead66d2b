"""The topics of a meeting: where the talk changes subject, and what each part was about.

:func:`segment` is TextTiling (Hearst 1997) over the cleaned sentences: the lexical cohesion
of each gap between sentences is the cosine between the stemmed content words of the
``WINDOW`` sentences before and after it; a gap deep in a valley of cohesion (depth above
mean − sd/2) is a topic boundary, and parts shorter than ``MIN_WORDS`` are joined to a neighbour.
Windows slide with counters, so the cost is linear in the meeting's length.

:func:`describe` gives each part a title — its most characteristic phrase (two content words
said together, else one word), weighted against the rest of the meeting — and its 1–3 most
central complete sentences (LexRank within the part).
"""

from __future__ import annotations

import bisect
import itertools
import math
import re
import statistics
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from . import lexrank
from . import text as nlp
from .meeting_cleaning import BACKCHANNEL_WORDS, Utterance, has_restart, is_complete, word_overlap

__all__ = ["NOVELTY", "Part", "describe", "is_summarisable", "segment", "summary_sentences"]

WINDOW = 10
MIN_WORDS = 400
#: A topic is at least this many words of content on average: a one-hour meeting (~8,000 words
#: once cleaned) gets up to 7 topics, the deepest boundaries first.
WORDS_PER_PART = 1_200
MAX_PARTS = 12
#: Below this many words of content a meeting is cut at its own scale (see :func:`segment`).
SHORT_MEETING_WORDS = 2 * MIN_WORDS
#: The smallest topic of a short meeting, in words.
MIN_SHORT_WORDS = 60
#: A summary sentence must bring new content words: one whose stemmed content words are more
#: than this share already said by the sentences chosen before it is skipped (a repeat). Chosen
#: on the QMSum fixtures; ``benchmarks/quality.py`` reports it with leave-one-meeting-out figures.
NOVELTY = 0.3
#: A topic offers the summary at most this many of its best sentences (bounds the work on a
#: transcript of thousands of sentences; a topic of a real meeting has fewer).
OFFERED = 200
#: Words that are never a topic in speech, whatever their frequency.
SPEECH_WORDS = frozenset(
    """yeah yes okay ok right um uh hmm mm gonna wanna gotta kinda sorta dunno thing things stuff guess mean
    know think sure really actually basically just well lot bit little kind sort maybe probably alright cool
    good great fine nice go going get got say said see look want need let lets one two also anyway wow huh
    hey hi hello bye thanks thank please sorry pretty quite something anything everything nothing way
    people time point idea question problem mean talk talking work working course whole sense case stuff
    fact kind sort part start started put make made use used come yep mhm ehm eh uhm er erm today
    different important able bit idea ideas like much many maybe other same sure quite very""".split()
)


@dataclass
class Part:
    """One topic of the meeting: a run of utterances, its title and its summary sentences."""

    start: int  # utterance index, inclusive
    end: int  # exclusive
    title: str = ""
    sentences: list[int] | None = None  # utterance indexes of its summary, in order
    ranked: list[int] | None = None  # its complete sentences, most central first
    words: int = 0


def _bag(u: Utterance) -> list[str]:
    return [t for t in lexrank.terms(u.text) if len(t) > 2 and t not in SPEECH_WORDS]


def _cosine(a: Counter, b: Counter) -> float:
    if not a or not b:
        return 0.0
    small, large = (a, b) if len(a) < len(b) else (b, a)
    dot = sum(v * large.get(k, 0) for k, v in small.items())
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    return dot / (na * nb) if na and nb else 0.0


def segment(utterances: list[Utterance]) -> list[Part]:
    """Topic parts covering ``utterances`` in order.

    A short meeting is cut at its own scale (a 5-minute stand-up of 350 words that settles three
    things has three topics): below :data:`SHORT_MEETING_WORDS`, the smallest part, the words per
    part and the cohesion window shrink with the meeting, down to :data:`MIN_SHORT_WORDS` words,
    100 words and 3 utterances, and a cut needs cohesion to fall below half its mean; a longer
    meeting is cut as before."""
    n = len(utterances)
    if n == 0:
        return []
    words = [nlp.word_count(u.text) if u.kind == "content" else 0 for u in utterances]
    total = sum(words)
    min_words, per_part, window = MIN_WORDS, WORDS_PER_PART, WINDOW
    if total < SHORT_MEETING_WORDS:
        min_words = min(MIN_WORDS, max(MIN_SHORT_WORDS, total // 5))
        per_part = min(WORDS_PER_PART, max(100, total // 3))
        window = min(WINDOW, max(3, n // 8))
    if total < 2 * min_words:
        return [Part(0, n, words=total)]
    bags = [_bag(u) if u.kind == "content" else [] for u in utterances]
    # left holds bags[gap - window : gap], right bags[gap : gap + window], moved one gap at a time
    left, right = Counter(bags[0]), Counter[str]()
    for b in bags[1 : 1 + window]:
        right.update(b)
    cohesion: list[float] = []
    for gap in range(1, n):
        cohesion.append(_cosine(left, right))
        moving = bags[gap]
        left.update(moving)
        right.subtract(moving)
        if gap - window >= 0:
            left.subtract(bags[gap - window])
        if gap + window < n:
            right.update(bags[gap + window])
        left += Counter()  # drop zero and negative counts
        right += Counter()
    depth = _depths(cohesion)
    if len(depth) < 3:
        return [Part(0, n, words=total)]
    cutoff = statistics.mean(depth) - statistics.pstdev(depth) / 2
    # A short meeting has too few gaps for depth statistics alone: a cut there also needs the
    # cohesion across the gap to fall below half the meeting's mean (one topic talked over in
    # turns stays one topic)
    ceiling = statistics.mean(cohesion) / 2 if total < SHORT_MEETING_WORDS else math.inf
    candidates = sorted(
        (i for i, d in enumerate(depth) if d > cutoff and d > 0 and cohesion[i] <= ceiling), key=lambda i: -depth[i]
    )
    before = list(itertools.accumulate(words, initial=0))  # before[i]: words of utterances[:i]
    edges = [0, n]
    limit = max(1, min(MAX_PARTS, before[n] // per_part))
    for i in candidates:
        if len(edges) - 1 >= limit:
            break
        cut = i + 1  # gap i sits before utterance i+1
        at = bisect.bisect_left(edges, cut)
        lo, hi = edges[at - 1], edges[at]
        if before[cut] - before[lo] >= min_words and before[hi] - before[cut] >= min_words:
            edges.insert(at, cut)
    return [Part(a, b, words=sum(words[a:b])) for a, b in zip(edges, edges[1:], strict=False)]


def _depths(scores: list[float]) -> list[float]:
    """TextTiling depth of each gap: how far cohesion climbs back up on both sides."""
    out = []
    for i, s in enumerate(scores):
        lpeak = s
        for j in range(i - 1, -1, -1):
            if scores[j] < lpeak:
                break
            lpeak = scores[j]
        rpeak = s
        for j in range(i + 1, len(scores)):
            if scores[j] < rpeak:
                break
            rpeak = scores[j]
        out.append((lpeak - s) + (rpeak - s))
    return out


_TOKEN_RE = re.compile(r"[A-Za-z][\w'-]*")


def _phrases(text: str) -> list[tuple[str, ...]]:
    """Runs of content words (surface forms) of ``text``, split at stop words and punctuation."""
    out: list[tuple[str, ...]] = []
    for chunk in re.split(r"[.,;:!?()\"]+", text):
        run: list[str] = []
        for w in _TOKEN_RE.findall(chunk):
            low = w.lower()
            if low in lexrank.ENGLISH_STOP_WORDS or low in SPEECH_WORDS or low in BACKCHANNEL_WORDS or len(low) < 3:
                if run:
                    out.append(tuple(run))
                run = []
            else:
                run.append(w)
        if run:
            out.append(tuple(run))
    return out


def _phrase_counts(runs: list[list[tuple[str, ...]]]) -> Counter:
    """How often each run of 1-3 content words is said (lower-cased), over utterances' ``runs``."""
    counts: Counter = Counter()
    for phrases in runs:
        for run in phrases:
            low = [w.lower() for w in run]
            for size in (1, 2, 3):
                counts.update(tuple(low[i : i + size]) for i in range(len(low) - size + 1))
    return counts


def _surface(runs: list[list[tuple[str, ...]]], key: tuple[str, ...]) -> str:
    """The most common spelling of a phrase (keeps "LCD", "EKS", "Priya")."""
    seen: Counter = Counter()
    for phrases in runs:
        for run in phrases:
            if len(run) < len(key) or key[0] not in (w.lower() for w in run):
                continue
            low = [w.lower() for w in run]
            for i in range(len(low) - len(key) + 1):
                if tuple(low[i : i + len(key)]) == key:
                    seen[" ".join(run[i : i + len(key)])] += 1
    return seen.most_common(1)[0][0] if seen else " ".join(key)


_VERB_FORM = re.compile(r"(?:ing|ed|ly)$")


def title_phrases(runs: list[list[tuple[str, ...]]], part: Part, totals: Counter, k: int = 2) -> list[str]:
    """Up to ``k`` phrases most characteristic of ``part`` against the whole meeting.

    A phrase's weight is ``count_here² / count_everywhere`` (frequent here, and said mostly
    here), times its length in words: "remote control" beats "remote" and "control".
    Single words that look like verb forms or adverbs ("spinning", "printed") are not titles.
    """
    inside = runs[part.start : part.end]
    counts = _phrase_counts(inside)
    scored = [
        (len(key) * c * c / totals[key], key)
        for key, c in counts.items()
        if c >= 2 and len(set(key)) == len(key) and not (len(key) == 1 and _VERB_FORM.search(key[0]))
    ]
    scored.sort(key=lambda x: (-x[0], x[1]))
    chosen: list[tuple[str, ...]] = []
    for _, key in scored:
        if any(set(key) & set(c) for c in chosen):
            continue
        chosen.append(key)
        if len(chosen) == k or len(key) > 1:  # a phrase of several words is a title on its own
            break
    if len(chosen) == 2 and len(chosen[0]) == len(chosen[1]) == 1:  # "EKS" and "upgrade" said as "EKS upgrade"
        pair = next((p for p in ((*chosen[0], *chosen[1]), (*chosen[1], *chosen[0])) if counts.get(p)), None)
        if pair:
            chosen = [pair]
    return [_surface(inside, key) for key in chosen]


def describe(
    utterances: list[Utterance],
    parts: list[Part],
    *,
    max_sentences: int = 3,
    text: Callable[[Utterance], str] | None = None,
) -> None:
    """Give every part its title, its statements most central first, and its summary sentences (in place).

    The statements a summary can quote (:func:`is_summarisable`) are ranked once, by LexRank
    over the whole meeting (``text`` gives the words ranked, the sentence itself by default):
    a topic's best sentence is the one most central to the meeting among its own, so a small
    topic does not offer its chattiest line. Each part keeps that order (``ranked``) and its
    first 1-3 (``sentences``, in order said; one per 400 words of the part).
    """
    runs = [_phrases(u.text) if u.kind == "content" else [] for u in utterances]
    totals = _phrase_counts(runs)
    candidates = [u.index for u in utterances if is_summarisable(u)]
    said = text or (lambda u: u.text)
    order = [candidates[j] for j in nlp.rank_sentences([said(utterances[i]) for i in candidates])]
    for part in parts:
        part.title = _title(title_phrases(runs, part, totals))
        part.ranked = [i for i in order if part.start <= i < part.end]
        want = max(1, min(max_sentences, part.words // 400 + 1))
        part.sentences = sorted(part.ranked[:want])


#: A speaker's own commitment ("I'll write the runbook by Friday"): the minutes list it as an action
#: item, the summary does not repeat it.
_COMMITMENT_RE = re.compile(
    r"^(?:(?:ok(?:ay)?|so|and|then|yes|yeah),?\s+)*i(?:'ll|\s+will|'m\s+going\s+to|'m\s+gonna|\s+can\s+take)\s", re.I
)


#: A sentence opening on a pronoun that points back ("It waits for the queue", "They said so"): out of
#: its context nobody knows what it is about.
_POINTS_BACK_RE = re.compile(r"^(?:it|it's|this|that|that's|these|those|they|they're|he|she|him|her|them)\b", re.I)


def is_summarisable(u: Utterance) -> bool:
    """A statement a summary can quote: complete, not a question, no phrase restarted inside it, not
    opening on a pronoun that points back, not the speaker's own commitment (that is an action item)."""
    return (
        u.kind == "content"
        and not u.is_question
        and is_complete(u.text)
        and not has_restart(u.text)
        and not _COMMITMENT_RE.match(u.text)
        and not _POINTS_BACK_RE.match(u.text)
    )


def _title(phrases: list[str]) -> str:
    if not phrases:
        return ""
    title = phrases[0] if len(phrases[0].split()) > 1 else " and ".join(phrases)
    return title[:1].upper() + title[1:]


def summary_sentences(
    utterances: list[Utterance],
    parts: list[Part],
    budget: int,
    *,
    text: Callable[[Utterance], str],
    render: Callable[[Utterance], str],
    novelty: float = NOVELTY,
) -> list[int]:
    """Indexes (in order said) of the summary's sentences: central, new, every topic covered.

    The topics take turns, the largest first, each offering its next best sentence (its
    ``ranked`` order from :func:`describe`); a sentence whose content words are mostly said
    already (more than ``novelty`` of them, see :data:`NOVELTY`) is deferred, one that does not
    fit in what is left of ``budget`` words skipped. Deferred sentences are taken afterwards, in
    the order met, while words are left, unless one nearly repeats a chosen sentence (word
    overlap 0.7 or more): a short, focused meeting, where every sentence shares the topic's
    words, still fills its budget. ``text`` gives the sentence whose words
    are compared (the compressed sentence), ``render`` the one that is counted and shown (with
    its speaker when it says "I"). Both are called only for the sentences reached.
    """
    queues = sorted((p for p in parts if p.ranked), key=lambda p: -p.words)
    chosen: list[int] = []
    deferred: list[int] = []
    said: set[str] = set()
    remaining = budget
    for r in range(min(OFFERED, max((len(p.ranked or []) for p in queues), default=0))):
        if remaining < 8:
            break
        for part in queues:
            ranked = (part.ranked or [])[:OFFERED]
            if r >= len(ranked):
                continue
            i = ranked[r]
            bag = set(lexrank.terms(text(utterances[i])))
            if bag and len(bag & said) > novelty * len(bag):
                deferred.append(i)
                continue
            count = nlp.word_count(render(utterances[i]))
            if count <= remaining:
                chosen.append(i)
                said |= bag
                remaining -= count
    for i in deferred:
        if remaining < 8:
            break
        count = nlp.word_count(render(utterances[i]))
        if count <= remaining and all(word_overlap(utterances[i].text, utterances[j].text) < 0.7 for j in chosen):
            chosen.append(i)
            remaining -= count
    return sorted(chosen)
