"""LexRank (Erkan & Radev 2004) in numpy: which sentences of a text are the most central.

Sentences become bags of stemmed words (Snowball stemmers, stop words removed); two sentences
are linked when the idf-modified cosine of their tf·idf vectors exceeds ``threshold``; a
sentence's centrality is its stationary probability in a damped random walk over the links
(PageRank-style teleport; sentences linked to nothing spread their mass evenly; a sentence's
similarity to itself does not count). This is the model sumy implemented, minus sumy: the same
tf (count over the sentence's largest count), idf (``log(n / (1 + df))``) and threshold, with
every pair computed at once instead of a Python loop per pair.

No model weights, no downloads: snowballstemmer ships its stemmers as code, and the stop words
come from ``stop-words`` (the English list, which there mixes in content words such as
"computer" and "fix", is the short classic list below, as sumy shipped it — Apache-2.0).
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections import Counter
from collections.abc import Sequence

import numpy

__all__ = ["rank", "stop_words"]

THRESHOLD = 0.1
DAMPING = 0.85

ENGLISH_STOP_WORDS = frozenset(
    """
    a a's able about above according accordingly across actually after afterwards again against ain't all allow
    allows almost alone along already also although always am among amongst an and another any anybody anyhow
    anyone anything anyway anyways anywhere apart appear appreciate appropriate are aren't around as aside ask
    asking associated at available away awfully b be became because become becomes becoming been before
    beforehand behind being believe below beside besides best better between beyond both brief but by c c'mon c's
    came can can't cannot cant cause causes certain certainly changes clearly co com come comes concerning
    consequently consider considering contain containing contains corresponding could couldn't course currently d
    definitely described despite did didn't different do does doesn't doing don't done down downwards during e
    each edu eg eight either else elsewhere enough entirely especially et etc even ever every everybody everyone
    everything everywhere ex exactly example except f far few fifth first five followed following follows for
    former formerly forth four from further furthermore g get gets getting given gives go goes going gone got
    gotten greetings h had hadn't happens hardly has hasn't have haven't having he he'd he'll he's hello help
    hence her here here's hereafter hereby herein hereupon hers herself hi him himself his hither hopefully how
    how's howbeit however i i'd i'll i'm i've ie if ignored immediate in inasmuch inc indeed indicate indicated
    indicates inner insofar instead into inward is isn't it it'd it'll it's its itself j just k keep keeps kept
    know known knows l last lately later latter latterly least less lest let let's like liked likely little look
    looking looks ltd m mainly many may maybe me mean meanwhile merely might more moreover most mostly much must
    mustn't my myself n name namely nd near nearly necessary need needs neither never nevertheless new next nine
    no nobody non none noone nor normally not nothing novel now nowhere o obviously of off often oh ok okay old
    on once one ones only onto or other others otherwise ought our ours ourselves out outside over overall own p
    particular particularly per perhaps placed please plus possible presumably probably provides q que quite qv r
    rather rd re really reasonably regarding regardless regards relatively respectively right s said same saw say
    saying says second secondly see seeing seem seemed seeming seems seen self selves sensible sent serious
    seriously seven several shall shan't she she'd she'll she's should shouldn't since six so some somebody
    somehow someone something sometime sometimes somewhat somewhere soon sorry specified specify specifying still
    sub such sup sure t t's take taken tell tends th than thank thanks thanx that that's thats the their theirs
    them themselves then thence there there's thereafter thereby therefore therein theres thereupon these they
    they'd they'll they're they've think third this thorough thoroughly those though three through throughout
    thru thus to together too took toward towards tried tries truly try trying twice two u un under unfortunately
    unless unlikely until unto up upon us use used useful uses using usually uucp v value various very via viz vs
    w want wants was wasn't way we we'd we'll we're we've welcome well went were weren't what what's whatever
    when when's whence whenever where where's whereafter whereas whereby wherein whereupon wherever whether which
    while whither who who's whoever whole whom whose why why's will willing wish with within without won't wonder
    would wouldn't x y yes yet you you'd you'll you're you've your yours yourself yourselves z zero
    """.split()
)

_WORD_RE = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
_LOCAL = threading.local()  # Snowball stemmer objects keep per-word state: one per thread


@functools.cache
def stop_words(language: str = "english") -> frozenset[str]:
    """Stop words of ``language`` (an English name such as ``"german"``); empty when unknown."""
    language = language.lower()
    if language in ("english", "en"):
        return ENGLISH_STOP_WORDS
    from stop_words import LANGUAGE_MAPPING, StopWordError, get_stop_words

    language = LANGUAGE_MAPPING.get(language, language)
    try:
        return frozenset(get_stop_words(language))
    except StopWordError:
        return frozenset()


def _stems(language: str) -> dict[str, str] | None:
    """This thread's memo of stems for ``language`` (None when there is no stemmer for it).

    Snowball in pure Python costs ~0.1 ms a word and speech repeats its words: each word is
    stemmed once per thread (stemmer objects keep per-word state, so they are per thread too).
    """
    cache = _LOCAL.__dict__.setdefault("stems", {})
    if language not in cache:
        import snowballstemmer

        try:
            stemmer = snowballstemmer.stemmer(language)
        except KeyError:
            cache[language] = None
        else:
            memo: dict[str, str] = {}
            cache[language] = (stemmer, memo)
    entry = cache[language]
    if entry is None:
        return None
    stemmer, memo = entry
    if len(memo) > 200_000:
        memo.clear()
    _LOCAL.stemmer = stemmer
    return memo


def terms(sentence: str, language: str = "english") -> list[str]:
    """The stemmed content words of ``sentence``, lower-cased, stop words removed."""
    stops = stop_words(language)
    kept = [w for w in (w.lower() for w in _WORD_RE.findall(sentence)) if w not in stops]
    memo = _stems(language)
    if memo is None:
        return kept
    out = []
    for w in kept:
        stem = memo.get(w)
        if stem is None:
            stem = memo[w] = _LOCAL.stemmer.stemWord(w)
        out.append(stem)
    return out


def similarity(bags: Sequence[Sequence[str]]) -> numpy.ndarray:
    """The idf-modified cosine of every pair of bags of terms (an n×n matrix)."""
    n = len(bags)
    df = Counter(t for bag in bags for t in set(bag))
    column = {t: j for j, t in enumerate(df)}
    idf = numpy.array([math.log(n / (1 + df[t])) for t in df]) if df else numpy.zeros(0)
    weights = numpy.zeros((n, max(1, len(column))))
    for i, bag in enumerate(bags):
        counts = Counter(bag)
        if not counts:
            continue
        top = max(counts.values())
        for t, c in counts.items():
            weights[i, column[t]] = c / top
    if df:
        weights[:, : len(idf)] *= idf
    norms = numpy.sqrt(numpy.einsum("ij,ij->i", weights, weights))
    dots = weights @ weights.T
    scale = numpy.outer(norms, norms)
    return numpy.divide(dots, scale, out=numpy.zeros_like(dots), where=scale > 0)


def centrality(cosine: numpy.ndarray, threshold: float = THRESHOLD, damping: float = DAMPING) -> numpy.ndarray:
    """Stationary probabilities of the damped walk over links ``cosine > threshold``."""
    n = len(cosine)
    links = (cosine > threshold).astype(float)
    numpy.fill_diagonal(links, 0.0)
    degrees = links.sum(axis=1)
    dangling = degrees == 0
    transition = numpy.divide(links, degrees[:, None], out=numpy.zeros_like(links), where=~dangling[:, None])
    p = numpy.full(n, 1.0 / n)
    for _ in range(200):
        nxt = (1.0 - damping) / n + damping * (transition.T @ p + p[dangling].sum() / n)
        if numpy.abs(nxt - p).sum() < 1e-10:
            return nxt
        p = nxt
    return p


def rank(sentences: Sequence[str], language: str = "english") -> list[int]:
    """Indexes of ``sentences``, most central first; ties keep text order."""
    if len(sentences) <= 1:
        return list(range(len(sentences)))
    scores = centrality(similarity([terms(s, language) for s in sentences]))
    return sorted(range(len(sentences)), key=lambda i: -scores[i])
