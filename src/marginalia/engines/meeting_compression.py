"""Shorter summary sentences: what a note-taker leaves out of a cleaned spoken sentence.

:mod:`~marginalia.engines.meeting_cleaning` already removed what only makes sense in speech
(fillers, false starts, backchannels). A sentence chosen for the summary still carries what a
person writing minutes would drop: the speaker's hedges ("I think that …", "I guess",
"probably" beside a modal verb), intensifiers ("really", "actually", "basically"), discourse
words left inside the sentence (", yeah,", "oh"), repeated phrases ("the sample speaker the
sample speaker"), and first-person plural talk that minutes write as the team's ("we can use
titanium" -> "The team can use titanium"). :func:`compress` does that and nothing else: no
word is added but "the team" for "we"/"us", and it only rewrites "we" when every "we" in the
sentence has a verb it knows how to agree with, so the result stays grammatical.

The rules are applied in a fixed order, each linear in the sentence's length; a sentence
the rules would cut below :data:`MIN_WORDS` words is returned as it was.
"""

from __future__ import annotations

import re

__all__ = ["MIN_WORDS", "compress", "third_person"]

#: A compression that leaves fewer words than this is not used (the sentence is kept whole).
MIN_WORDS = 5

#: Hedges and discourse words opening a sentence: "I think that", "I guess", "basically", "or".
_LEADING_RE = re.compile(
    r"^(?:(?:i|we)\s+(?:think|thought|guess|suppose|believe|reckon|feel|assume)(?:\s+that)?(?=\s+(?!so\b|of\b|about\b))"
    r"|i\s+mean|you\s+know|i'?d\s+say(?:\s+that)?|i\s+would\s+say(?:\s+that)?|i'm\s+(?:guessing|thinking|sure)(?:\s+that)?"
    r"|(?:it\s+)?seems?\s+(?:like|that)|basically|actually|obviously|of\s+course|in\s+fact|apparently|personally"
    r"|honestly|to\s+be\s+honest|i\s+guess|well|so|and|but|also|then|now|or|anyway|okay|yeah|right|oh)"
    r"\s*,?\s+",
    re.IGNORECASE,
)
#: A hedge between commas, or a comment clause inside a sentence: ", I think," / ", you know,"
#: ("one thing I did not say I think, is that" too: the comma closes the comment).
_INNER_CLAUSE_RE = re.compile(
    r"\s*(?:,\s*)?(?:i\s+think|i\s+guess|i\s+suppose|i\s+mean|you\s+know|i'd\s+say|basically|actually|obviously|"
    r"of\s+course|in\s+fact|apparently|yeah|okay|oh|right|well)\s*,\s*",
    re.IGNORECASE,
)
#: Intensifiers and softeners whose removal does not change what was said.
_INTENSIFIERS_RE = re.compile(
    r"(?<![\w'-])(?:really|actually|basically|literally|obviously|essentially|totally|kind\s+of|sort\s+of|a\s+bit|"
    r"a\s+little\s+bit)(?![\w'-])\s*,?\s*",
    re.IGNORECASE,
)
#: "just" after a subject or a modal ("we just need" -> "we need"); not "just a remote" (= only).
_JUST_RE = re.compile(
    r"(?<![\w'-])(i|we|you|they|it|he|she|can|could|should|would|will|might|must|\w+'ll|\w+'d|to)\s+just\s+",
    re.IGNORECASE,
)
#: Hedges beside a modal verb, which keeps the uncertainty: "we can probably discuss".
_HEDGE_RE = re.compile(r"(?<![\w'-])(?:probably|maybe|perhaps|possibly)(?![\w'-])\s*,?\s*", re.IGNORECASE)
_HAS_MODAL_RE = re.compile(
    r"(?<![\w'-])(?:can|could|should|would|will|might|may|must|shall)(?![\w'-])|\w'(?:ll|d)\b", re.I
)
#: Discourse words left inside a sentence: " yeah ", " oh ", ", okay,".
_INNER_DISCOURSE_RE = re.compile(r"(?<=\s)(?:yeah|oh|uh|um|mm|hmm)(?:\s*,)?\s+", re.IGNORECASE)
#: A phrase of two or three words said again after one word, the first one abandoned: "I like that
#: I like the idea" -> "I like the idea", "a lot of a lot higher" -> "a lot higher".
_RESTARTED_PHRASE_RE = re.compile(r"(?<![\w'-])((?:[\w']+\s+){1,2}[\w']+)\s+[\w']+\s+\1(?![\w'-])", re.IGNORECASE)
#: A word or a phrase of up to four words said twice in a row ("it's it's", "the case the case").
_REPEATED_PHRASE_RE = re.compile(r"(?<![\w'-])((?:[\w'-]+\s+){0,3}[\w'-]+)(?:\s*,?\s+\1)+(?![\w'-])", re.IGNORECASE)
#: Tags closing a sentence.
_TRAILING_RE = re.compile(
    r"(?:\s*,?\s*(?:i\s+think|i\s+guess|i\s+suppose|you\s+know|or\s+something(?:\s+like\s+that)?|or\s+whatever|"
    r"and\s+stuff(?:\s+like\s+that)?|and\s+everything|and\s+so\s+on|and\s+things\s+like\s+that|as\s+well|"
    r"anyway|though|then|basically|actually|really|probably|maybe|yeah|okay|right))+\s*(?=[.!?]?$)",
    re.IGNORECASE,
)

_WORD_RE = re.compile(r"[^\W_]+(?:'[^\W_]+)*")
#: Last words of the tags _TRAILING_RE removes: the cheap test before it is tried.
_TAG_ENDINGS = frozenset(
    "think guess suppose know something that whatever stuff everything on well anyway though then basically "
    "actually really probably maybe yeah okay right".split()
)


def _has_repeat(text: str, *, gap: int, sizes: tuple[int, ...] = (1, 2, 3, 4)) -> bool:
    """A run of ``sizes`` words said again after ``gap`` other words: the cheap test before a pattern.

    Only positions of the same word are compared (a word said once starts no repeat).
    """
    words = _WORD_RE.findall(text.lower())
    where: dict[str, list[int]] = {}
    for i, w in enumerate(words):
        where.setdefault(w, []).append(i)
    longest = max(sizes)
    for places in where.values():
        for x, a in enumerate(places):
            for b in places[x + 1 :]:
                k = b - a - gap
                if k > longest:
                    break
                if k in sizes and words[a : a + k] == words[b : b + k]:
                    return True
    return False


# --- "we" -> "the team" --------------------------------------------------------------------
#: What follows "we" and how it reads after "the team".
_WE_VERBS = {
    "are": "is",
    "were": "was",
    "have": "has",
    "'ve": " has",
    "'re": " is",
    "'ll": " will",
    "'d": " would",
    "do": "does",
    "don't": "doesn't",
    "need": "needs",
    "want": "wants",
    "decided": "decided",
    "agreed": "agreed",
    "discussed": "discussed",
    "talked": "talked",
    "had": "had",
    "did": "did",
    "didn't": "didn't",
    "haven't": "hasn't",
    "aren't": "isn't",
    "weren't": "wasn't",
    "got": "got",
    "went": "went",
    "found": "found",
    "looked": "looked",
    "used": "used",
    "thought": "thought",
    "chose": "chose",
    "use": "uses",
    "get": "gets",
    "go": "goes",
    "keep": "keeps",
    "make": "makes",
    "know": "knows",
    **{m: m for m in "can could should would will might may must shall cannot can't couldn't shouldn't won't".split()},
}
#: "we" (with what follows it), "our", or "us" (not "let us").
_GROUP_RE = re.compile(
    r"(?<![\w'-])(?:(?P<we>we)(?P<follow>'(?:ve|re|ll|d)(?![\w'-])|(?![\w'-])(?:\s+[\w']+)?)|(?P<other>our|(?<!let )us)(?![\w'-]))",
    re.IGNORECASE,
)
_LETS_RE = re.compile(r"(?<![\w'-])let's(?![\w'-])", re.IGNORECASE)


def third_person(sentence: str) -> str:
    """``sentence`` with "we"/"our"/"us" written as the team's, or unchanged if it would not read.

    "We can use titanium for our case, so we don't need rubber" -> "The team can use titanium for
    the case, so they don't need rubber": the first "we" becomes "the team" (its verb agreeing),
    later ones "they". A first "we" followed by a verb not in the agreement table ("we spin it"),
    or a "let's" in the sentence, leaves it as it was.
    """
    if _LETS_RE.search(sentence) or not _GROUP_RE.search(sentence):
        return sentence
    out: list[str] = []
    last = 0
    named = False  # "the team" said once: later references are "they" / "them"
    for m in _GROUP_RE.finditer(sentence):
        word, follow = m.group("we") or m.group("other"), m.group("follow") or ""
        upper = word[0].isupper() and m.start() == 0
        if word.lower() == "our":
            new = "The" if upper else "the"
        elif word.lower() == "us":
            new = "them" if named else "the team"
            named = True
        elif named:
            new = ("They" if upper else "they") + follow
        else:
            verb = _WE_VERBS.get(follow.strip().lower())
            if verb is None:
                return sentence
            new = ("The team" if upper else "the team") + (verb if verb.startswith(" ") else " " + verb)
            named = True
        out.append(sentence[last : m.start()] + new)
        last = m.end()
    return "".join(out) + sentence[last:]


def _first_upper(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


def _words(text: str) -> int:
    return len(_WORD_RE.findall(text))


def compress(sentence: str) -> str:
    """``sentence`` as a note-taker would write it (see the module doc); never fewer than MIN_WORDS words."""
    original = " ".join(sentence.split())  # single spaces keep every pattern below linear
    s = original.rstrip(" .!?…")
    if not s:
        return original
    tail = original[len(s) :].strip()
    end = "?" if "?" in tail else "!" if "!" in tail else "." if tail else ""
    previous = None
    while previous != s:  # "Well, I think that basically ..." peels one layer at a time
        previous = s
        s = _LEADING_RE.sub("", s, count=1)
    s = _INNER_CLAUSE_RE.sub(" ", s)
    s = _INNER_DISCOURSE_RE.sub("", s)
    s = _INTENSIFIERS_RE.sub("", s)
    s = _JUST_RE.sub(r"\1 ", s)
    if _HAS_MODAL_RE.search(s):
        s = _HEDGE_RE.sub("", s)
    if _has_repeat(s, gap=0):
        s = _REPEATED_PHRASE_RE.sub(r"\1", s)
    if _has_repeat(s, gap=1, sizes=(2, 3)):
        s = _RESTARTED_PHRASE_RE.sub(r"\1", s)
    if s and s.rsplit(None, 1)[-1].strip(",;:").lower() in _TAG_ENDINGS:
        head, tail = s[:-80], s[-80:]  # tags close a sentence: look at its end only
        s = head + _TRAILING_RE.sub("", tail)
    s = re.sub(r"\s+", " ", s)
    s = re.sub(r"\s+([,.;:!?])", r"\1", s)
    s = re.sub(r"^[\s,;:-]+|[\s,;:-]+$", "", s)
    s = re.sub(r",\s*,", ",", s)
    if _words(s) < MIN_WORDS:
        return original
    s = third_person(_first_upper(s))
    return _first_upper(s) + (end or ".")
