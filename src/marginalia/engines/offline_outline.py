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
from dataclasses import dataclass, field

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
#: A slide with fewer bullets than this from its sources is marked ``thin``.
THIN_BULLETS = 2

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
    kind: str  # "key_point" | "summary" | "section"


@dataclass
class _Plan:
    """One slide before its bullets: a title, the points it owns, the words that attract more."""

    title: str
    points: list[_Candidate] = field(default_factory=list)
    role: str = "section"  # "section" (the source's own) | "overview" | "topic" | "conclusion"


#: Titles of a talk's opening and closing when the sources have no sections of their own
#: (or too few for the slides asked): the conventional arc of a talk about a piece of work.
_ARC = [
    ("overview", "Motivation"),
    ("approach", "Approach"),
    ("results", "Results"),
    ("conclusion", "Conclusion"),
]
_ARC_CUES = {
    "overview": re.compile(
        r"\b(?:problem|challenge|lack|issue|need|goal|aim|question|motivat|important|however|gap|cost|risk)", re.I
    ),
    "approach": re.compile(
        r"\b(?:we (?:propose|present|introduce|use|apply|develop|create|construct|deploy)|approach|method|model|"
        r"framework|system|design|using|based on|algorithm|data ?set|corpus)",
        re.I,
    ),
    "results": re.compile(
        r"(?:\d+(?:\.\d+)?\s?%|\$\s?\d|\b(?:result|show|improve|outperform|achiev|accuracy|score|save|reduc|found|"
        r"significant|better|worse))",
        re.I,
    ),
    "conclusion": re.compile(
        r"\b(?:conclu|recommend|should|next|future|plan|overall|in short|demonstrat|suggest|implication)", re.I
    ),
}
#: Section headings that are not content ("Abstract" is said by the overview).
_SKIP_SECTION = re.compile(r"^(?:abstract|keywords?|summary)$", re.I)
_SECTION_NUMBER = re.compile(r"^\s*(?:\d{1,2}(?:\.\d{1,2})*\.?|[IVX]{1,4}\.)\s+")
#: Words a noun-phrase title neither starts nor ends with (a sentence fragment does).
_FRAGMENT_EDGE = _FUNCTION_WORDS | frozenset("i you he she we they us them our your his her my its".split())
MAX_TITLE_WORDS = 8
#: Verbs that key-phrase extraction leaves in phrases ("paper introduces", "shows the deficiency").
_VERBS = frozenset(
    "is are was were be been being has have had do does did introduce introduces introduced present presents "
    "presented propose proposes proposed show shows showed shown describe describes described make makes made "
    "continue continues continued increase increases increased focus focuses focused use uses provide provides "
    "require requires demonstrate demonstrates aim aims allow allows lead leads found find finds get gets give "
    "gives take takes become becomes reached reach reaches grew grow grows remain remains".split()
)


def is_fragment_title(title: str) -> bool:
    """A slide title that reads as a piece of a sentence rather than a short noun phrase."""
    tokens = [t.lower() for t in nlp.words(title)]
    if not tokens or len(tokens) > MAX_TITLE_WORDS:
        return True
    if tokens[0] in _FRAGMENT_EDGE - {"a", "an", "the"} or tokens[-1] in _FRAGMENT_EDGE:
        return True
    if len(tokens) > 2 and tokens[1] in ("a", "an", "the"):  # "Express a negative": a verb and its object
        return True
    if any(t in _VERBS for t in tokens) or any(t.endswith("-") for t in title.split()):
        return True
    return bool(re.search(r"[.,;:]$", title.strip())) or any(t in {"we", "our", "us", "i"} for t in tokens)


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
        pieces = [(p, "section") for section in source.sections for p in section.points]
        pieces += [(kp, "key_point") for kp in source.key_points]
        pieces += [(s, "summary") for s in nlp.split_sentences(source.summary or "")]
        for text, kind in pieces:
            bullet = _bulletize(text)
            norm = _norm(bullet)
            if len(nlp.words(bullet)) < 3 or norm in seen:
                continue
            seen.add(norm)
            out.append(_Candidate(bullet, source.uri, kind))
    return out


_CONTEXT_MARK = re.compile(r"\b(?:abstract|context|background|summary|notes?|details)\s*:\s*", re.I)


def request_context(request: str) -> SourceContext | None:
    """Context written into the request itself ("... Abstract: We create ..."), used like a source.

    The instruction is the first sentence; what follows a label such as "Abstract:" or
    "Context:", or any further sentences, is material for the slides.
    """
    match = _CONTEXT_MARK.search(request or "")
    if match:
        body = request[match.end() :]
    else:
        sentences = nlp.split_sentences(request or "")
        body = " ".join(sentences[1:]) if len(sentences) > 2 else ""
    sentences = [s for s in nlp.split_sentences(body) if len(nlp.words(s)) >= 5]
    if not sentences:
        return None
    return SourceContext(
        uri="request",
        kind="text",
        summary=" ".join(sentences),
        key_points=sentences,
        keywords=nlp.keywords(" ".join(sentences), 10),
    )


def _clean_heading(title: str) -> str:
    text = _SECTION_NUMBER.sub("", title).strip(" .:")
    if text.isupper() and len(text) > 4:  # "RELATED WORK" -> "Related work"
        text = text.capitalize()
    return text


def _section_plans(sources: Sequence[SourceContext]) -> list[_Plan]:
    """The sources' own sections, in order, each with its key sentences."""
    plans: list[_Plan] = []
    for source in sources:
        for section in source.sections:
            title = _clean_heading(section.title)
            if not title or _SKIP_SECTION.match(title):
                continue
            points = [_Candidate(_bulletize(p), source.uri, "section") for p in section.points]
            plans.append(_Plan(title=title, points=[p for p in points if len(nlp.words(p.text)) >= 3]))
    return plans


def _fit(plans: list[_Plan], count: int, sources: Sequence[SourceContext], focus: list[str]) -> list[_Plan]:
    """``plans`` merged or extended to exactly ``count`` slides, the sources' order kept."""
    plans = [_Plan(p.title, list(p.points), p.role) for p in plans]
    while len(plans) > count:  # merge the adjacent pair with the least material
        i = min(range(len(plans) - 1), key=lambda j: (len(plans[j].points) + len(plans[j + 1].points), j))
        a, b = plans[i], plans[i + 1]
        title = f"{a.title} and {b.title}" if len((a.title + " " + b.title).split()) <= 6 else a.title
        plans[i : i + 2] = [_Plan(title, a.points + b.points, a.role)]
    has = {_norm(p.title) for p in plans}
    if len(plans) < count and not any(w in t for t in has for w in ("introduction", "background", "motivation")):
        plans.insert(0, _Plan("Introduction", role="overview"))
    if not any(p.role == "section" for p in plans):  # no sections of its own: the arc of a talk
        for role, title in _ARC[1:3]:
            if len(plans) < count:
                plans.append(_Plan(title, role=role))
    if len(plans) < count and not any(w in t for t in has for w in ("conclu", "summary", "discussion")):
        plans.append(_Plan("Conclusion", role="conclusion"))
    taken = {_norm(p.title) for p in plans}
    for phrase in _topic_titles(sources, focus, taken):  # more slides: the sources' key topics
        if len(plans) >= count:
            break
        plans.insert(_place_for(phrase, plans), _Plan(phrase, role="topic"))
    while len(plans) < count:  # still short: split the slide with the most material in two
        i = max(range(len(plans)), key=lambda j: (len(plans[j].points), -j))
        titles = {_norm(p.title) for p in plans}
        label = _topic_of(plans[i].points[(len(plans[i].points) + 1) // 2 :], titles)
        if len(plans[i].points) < 2 or label is None:
            break
        half = (len(plans[i].points) + 1) // 2
        first, second = plans[i].points[:half], plans[i].points[half:]
        plans[i : i + 1] = [_Plan(plans[i].title, first, plans[i].role), _Plan(label, second, "topic")]
    spare = (t for t in _SPARE_TITLES if _norm(t) not in {_norm(p.title) for p in plans})
    while len(plans) < count:  # nothing left to say: the usual parts of a talk, marked thin
        title = next(spare, None) or f"Open question {count - len(plans)}"
        position = len(plans) - 1 if plans and plans[-1].role == "conclusion" else len(plans)
        plans.insert(position, _Plan(title, role=_role_of_title(title)))
    return plans


#: Titles for slides no source material is left for (in this order), each marked thin.
_SPARE_TITLES = (
    "Background",
    "Related work",
    "Experiments",
    "Discussion",
    "Limitations",
    "Future work",
    "Goals",
    "Next steps",
    "Risks",
    "Timeline",
    "Open questions",
    "Summary",
)


def _place_for(phrase: str, plans: list[_Plan]) -> int:
    """Where a topic slide goes: after the slide whose title and points share most of its words,
    never after a closing slide (conclusion, summary, discussion)."""
    words = set(_norm(phrase).split()) - _FUNCTION_WORDS
    closing = len(plans)
    while closing > 0 and _role_of_title(plans[closing - 1].title) == "conclusion":
        closing -= 1
    if not closing:
        return len(plans)
    best = max(
        range(closing),
        key=lambda i: (
            len(words & set(_norm(plans[i].title + " " + " ".join(c.text for c in plans[i].points)).split())),
            i,
        ),
    )
    return best + 1


def _topic_titles(sources: Sequence[SourceContext], focus: list[str], taken: set[str]) -> list[str]:
    """Short noun phrases for extra slides: focus phrases, then the sources' keywords (distinct)."""
    titles: list[str] = []
    used = [set(t.split()) - _FUNCTION_WORDS for t in taken]
    material = [w for c in _candidates(sources) for w in [set(_norm(c.text).split())]]
    for phrase in list(focus) + _interleave([list(s.keywords) for s in sources], 100):
        words = set(_norm(phrase).split()) - _FUNCTION_WORDS
        if not words or is_fragment_title(phrase) or any(len(words & t) * 2 >= len(words) for t in used if t):
            continue
        if phrase not in focus and (len(words) < 2 or not any(words <= m for m in material)):
            continue  # a one-word keyword is no slide title; a topic no sentence speaks to is no slide
        used.append(words)
        titles.append(phrase[0].upper() + phrase[1:])
    return titles


def _topic_of(points: list[_Candidate], taken: set[str]) -> str | None:
    found = nlp.keywords(" ".join(p.text for p in points), 5)
    for phrase in found:
        if _norm(phrase) not in taken and not is_fragment_title(phrase):
            return phrase[0].upper() + phrase[1:]
    return None


def _score(candidate: _Candidate, plan: _Plan, focus_words: set[str]) -> float:
    words = {w.lower() for w in nlp.words(candidate.text)}
    title_words = {w.lower() for w in nlp.words(plan.title)} - _FUNCTION_WORDS
    score = 2.0 * len(words & title_words) + 1.5 * len(words & focus_words)
    cue = _ARC_CUES.get(plan.role) or _ARC_CUES.get(_role_of_title(plan.title))
    if cue is not None and cue.search(candidate.text):
        score += 2.0
    if candidate.kind == "key_point":
        score += 0.5
    return score


def _role_of_title(title: str) -> str:
    lowered = title.lower()
    for role, words in (
        ("overview", ("introduction", "background", "motivation", "overview", "problem")),
        ("approach", ("method", "approach", "model", "framework", "design", "data")),
        ("results", ("result", "evaluation", "experiment", "finding", "analysis")),
        ("conclusion", ("conclu", "discussion", "summary", "future", "recommend", "next")),
    ):
        if any(w in lowered for w in words):
            return role
    return "section"


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
    "--slides 10"), else 8; the outline has exactly that many content slides. Context written
    in the request ("Abstract: ...") is a source like the others. With ``feedback`` (and the
    ``previous`` outline a reviewer rejected), the revision honours simple requests: "add a
    slide on X", "remove the slide on X", "fewer/more bullets", "rename title to X",
    "N slides"; anything else is read as topics to focus on. A revision always differs from
    ``previous``.
    """
    request = (request or "").strip()
    in_request = request_context(request)
    if in_request is not None:
        sources = [*sources, in_request]
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
    """Slides that follow the sources' own sections (merged or extended to ``count``), each with
    the section's key sentences and the sources' key points that fit it best; a slide with too
    little material gets fewer bullets (maybe none) and ``thin: true``, never filler."""
    topic = _parse_topic(request) or next((s.title for s in sources if s.title), None) or "Presentation"
    audience = _parse_audience(request)
    plans = _fit(_section_plans(sources), count, sources, focus)
    used = {_norm(c.text) for p in plans for c in p.points}
    for plan in plans:
        plan.points = plan.points[:bullets]
    candidates = [c for c in _candidates(sources) if _norm(c.text) not in used]
    focus_words = {w.lower() for f in focus for w in nlp.words(f)} - _FUNCTION_WORDS
    pairs = sorted(
        (-_score(c, plan, focus_words), ci, i)
        for ci, c in enumerate(candidates)
        for i, plan in enumerate(plans)
        if _score(c, plan, focus_words) > 0.5 or plan.role != "topic"
    )
    taken: set[int] = set()
    for room in (1, bullets):  # every slide one bullet first, then they fill up
        for _neg, ci, i in pairs:
            if ci in taken or len(plans[i].points) >= room:
                continue
            plans[i].points.append(candidates[ci])
            taken.add(ci)
    out = [
        Slide(
            title=plan.title,
            bullets=[c.text for c in plan.points],
            notes=_notes(plan, topic, audience),
            thin=len(plan.points) < THIN_BULLETS,
        )
        for plan in plans
    ]
    topics = [p.title for p in plans if p.role in ("section", "topic")][:8]
    return Outline(title=title or topic, slides=out, topics=topics, slide_count=len(out))


def _notes(plan: _Plan, topic: str, audience: str | None) -> str:
    """Speaker notes: what the slide is for, where its bullets come from, and if it is thin."""
    who = f" ({audience})" if audience else ""
    lead = {
        "overview": f"Set out for the audience{who} why {topic} matters and what the talk covers.",
        "approach": "Explain how the work was done and the main choices.",
        "results": "Give the figures that matter and what they show.",
        "conclusion": "Close with the main takeaway and the next steps.",
    }.get(plan.role, f"Present {plan.title} as the source does.")
    sources = sorted({c.source for c in plan.points})
    if sources:
        lead += " Source: " + ", ".join(sources) + "."
    if len(plan.points) < THIN_BULLETS:
        lead += " The sources say little on this: add your own material or drop the slide."
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
    if len(bullets) < THIN_BULLETS:
        notes += " The sources say little on this: add your own material."
    return Slide(title=title, bullets=bullets, notes=notes, thin=len(bullets) < THIN_BULLETS)
