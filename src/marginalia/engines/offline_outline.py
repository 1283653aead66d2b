"""The offline engine's slide outlines, by rules.

No model, no weights, no network, same answer every time. What it does, and why:

* **Outlines** follow the arc of a talk (agenda, problem, approach, results, discussion,
  conclusion) with bullets drawn from the sources' key points, and honour the requested slide
  count exactly. ``Outline.slides`` are the content slides; the cover slide rendered by
  :func:`marginalia.tools.slides.render_pptx` from ``Outline.title`` is not counted (as in
  SciDuet, where a deck's slide count excludes its title slide).
* **Revisions** apply simple reviewer feedback ("add a slide on X", "fewer bullets",
  "rename title to X", "N slides", "focus on X") and always produce something different.

:class:`marginalia.engines.offline.OfflineEngine` delegates its outline method here; the key points
and keywords of its sources come from :mod:`marginalia.engines.offline_summary`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ..schemas import Outline, Slide, SourceContext
from . import text as nlp
from .offline_summary import _FOCUS, _FUNCTION_WORDS, _interleave, _mentions, _norm

__all__ = [
    "MAX_SLIDES",
    "draft_outline",
    "parse_slide_count",
]


DEFAULT_SLIDES = 8
MAX_SLIDES = 60
#: Bullets per slide by default, and after "fewer bullets" / "more bullets".
BULLETS, FEWER_BULLETS, MORE_BULLETS = 4, 2, 6
#: A bullet longer than this many words is cut at a clause boundary (when it has one).
BULLET_WORDS = 24

_NUMBER_WORDS = {
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
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
    "twenty": 20,
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
_AUDIENCE = re.compile(
    r"\bfor\s+(?P<who>(?:the\s+|a\s+|an\s+|our\s+)?[\w\s-]{3,60}?)(?=[.;,!?\n]|$|\s+(?:on|about)\b)", re.I
)


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
    "problem": re.compile(
        r"\b(?:problem|challenge|lack|issue|overrun|increase|grew|cost|risk|difficult|however|gap|need)", re.I
    ),
    "approach": re.compile(
        r"\b(?:we (?:propose|present|introduce|use|apply|develop)|approach|method|model|framework|system|design|using|based on|algorithm)",
        re.I,
    ),
    "results": re.compile(
        r"(?:\d+(?:\.\d+)?\s?%|\$\s?\d|\b(?:result|show|improve|outperform|achiev|accuracy|score|save|reduc|found|significant))",
        re.I,
    ),
    "discussion": re.compile(
        r"\b(?:limitation|however|although|discuss|suggest|implication|trade-?off|future|caveat|depend)", re.I
    ),
    "conclusion": re.compile(
        r"\b(?:conclu|recommend|should|next|will|plan|propose|summary|overall|in short|due|owner|decision)", re.I
    ),
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
    request: str,
    count: int,
    sources: Sequence[SourceContext],
    *,
    focus: list[str],
    bullets: int,
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
        (
            (-_score(c, roles[i], titles[i], focus_words), ci, i)
            for ci, c in enumerate(candidates)
            for i in content_slots
        ),
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
_ADD_SLIDE = re.compile(
    r"\badd (?:a |an |one |another )?(?:new )?slides? (?:on|about|for|covering)\s+(?:the\s+)?(?P<topic>[^.;!?\n]+)",
    re.I,
)
_REMOVE_SLIDE = re.compile(
    r"\b(?:remove|drop|delete|cut) (?:the )?slides? (?:on|about|for|titled|called)\s+(?:the\s+)?[\"“']?(?P<topic>[^.;!?\n\"”']+)",
    re.I,
)
_REMOVE_SLIDE_NUMBER = re.compile(r"\b(?:remove|drop|delete|cut) slide (?:number )?(?P<n>\d{1,2})\b", re.I)
_RENAME_TITLE = re.compile(
    r"\b(?:rename (?:the )?(?:deck |presentation )?title to|change (?:the )?title to|(?:the )?title should be|call (?:it|the deck))\s*"
    r"[:\"“']?(?P<title>[^\"”'\n]+?)[\"”']?\s*(?:[.;!?]|$)",
    re.I,
)
_RENAME_SLIDE = re.compile(r"\brename slide (?P<n>\d{1,2}) to\s*[\"“']?(?P<title>[^\"”'\n.;!?]+)", re.I)
_FEWER_BULLETS = re.compile(
    r"\b(?:fewer|less|shorter) (?:bullets?|bullet points|text|words)\b|\btoo (?:wordy|much text|many bullets)\b", re.I
)
_MORE_BULLETS = re.compile(r"\bmore (?:bullets?|bullet points|detail|details|content)\b", re.I)
_FEWER_SLIDES = re.compile(
    r"\b(?:fewer|less) slides\b|\btoo many slides\b|\bshorter (?:deck|talk|presentation)\b", re.I
)
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

            raise InvalidInput(
                f"a presentation of {requested} slides cannot be outlined: ask for 1 to {MAX_SLIDES} slides"
            )
        bullets = max((len(s.bullets) for s in slides), default=BULLETS)
        rebuilt = _build_outline(
            request or title, requested, sources, focus=focus or topics, bullets=max(1, bullets), title=title
        )
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
    return len(
        ({w.lower() for w in nlp.words(a)} - _FUNCTION_WORDS) & ({w.lower() for w in nlp.words(b)} - _FUNCTION_WORDS)
    )


def _best_candidates(
    topic: str, candidates: list[_Candidate], used: set[str], n: int, *, require_match: bool = False
) -> list[str]:
    if n <= 0:
        return []
    scored = [
        (-_overlap(c.text, topic), i, c)
        for i, c in enumerate(candidates)
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
