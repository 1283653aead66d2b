"""The offline engine: deterministic minutes with no model weights and no network.

It is the embedded default, so it has to write minutes a person would keep, not a stub. It
composes one module per concept:

* :mod:`~marginalia.engines.meeting_cleaning` — the transcript cleaned before anything is
  selected (fillers, false starts, backchannels, audio/meta talk, noise tags; a speaker's
  consecutive turns merged);
* :mod:`~marginalia.engines.meeting_segments` — topics by lexical cohesion (TextTiling), each
  with a title and 1–3 central complete sentences; the summary is led by one sentence naming
  who met and on what, then the topics' sentences in order, within a word budget; the meeting's
  title is the dominant topic's (or the one the meeting gives itself: "welcome to the … stand-up");
* :mod:`~marginalia.engines.meeting_decisions` — stated decisions and proposals accepted
  across turns;
* :mod:`~marginalia.engines.meeting_actions` with :mod:`~marginalia.engines.meeting_people` —
  commitments, requests and assignments with their owners (also people who never speak), tasks
  in the third person, due dates resolved against the meeting's date;
* every decision and action item has the ids of the segments it came from and a confidence.

Same input, same output: no randomness, no clock (the meeting date comes from the transcript
or from ``hint_date``). Document methods live in :mod:`marginalia.engines.offline_summary`
(summaries) and :mod:`marginalia.engines.offline_outline` (slide outlines), text-to-SQL in
:mod:`marginalia.search.nl`; all are imported on first use.
"""

from __future__ import annotations

import dataclasses
import re

from ..errors import UnsupportedInput
from ..schemas import ActionItem, Decision, DocumentSummary, MeetingSection, Minutes, Outline, SourceContext, Transcript
from . import text as nlp
from .meeting_actions import MAX_ACTION_ITEMS, dedupe_actions, extract_actions
from .meeting_cleaning import Utterance, clean_transcript
from .meeting_compression import compress
from .meeting_decisions import MAX_DECISIONS, dedupe_decisions, extract_decisions
from .meeting_people import People
from .meeting_segments import NOVELTY, Part, describe, segment, summary_sentences

__all__ = ["OfflineEngine", "SUMMARY_WORDS"]

#: Words in the extractive summary (the budget the quality benchmark measures).
SUMMARY_WORDS = 150
MAX_TOPICS = 6

#: Spoken words that carry no topic.
SPEECH_STOPWORDS = frozenset(
    """yeah yes yep okay ok right um uh uhm hmm mm mhm oh ah eh ehm er erm like gonna wanna gotta
    kinda sorta dunno thing things stuff guess mean know think sure really actually basically
    just well lot bit little kind sort maybe probably okay alright cool good great fine nice
    go going get got say said see look want need let lets let's one two also anyway
    wow huh hey hi hello bye thanks thank please sorry pretty quite""".split()
)

_FILLER_WORDS = SPEECH_STOPWORDS | {
    "i",
    "you",
    "we",
    "it",
    "that",
    "so",
    "and",
    "but",
    "the",
    "a",
    "is",
    "was",
    "to",
    "of",
    "in",
    "this",
    "do",
    "don't",
    "it's",
    "that's",
    "i'm",
    "what",
    "have",
    "be",
    "are",
    "there",
    "no",
    "not",
    "if",
    "or",
    "for",
    "on",
    "with",
    "they",
    "my",
    "me",
    "can",
    "would",
}

_TITLE_RE = re.compile(
    r"\b(?:welcome\s+(?:back\s+)?to|this\s+is|today(?:'s| is)?\s+(?:our|the)?|it's)\s+(?:our|the|this)?\s*"
    r"(?P<title>(?:[\w-]+\s+){0,5}?(?:meeting|stand-?up|sync|review|retro(?:spective)?|planning|kick-?off|call|session|workshop|check-?in))\b",
    re.IGNORECASE,
)
_BRACKETS_RE = re.compile(r"^[\[(]+|[\])]+$")


def _norm_name(name: str | None) -> str:
    return _BRACKETS_RE.sub("", (name or "").strip()).lower()


def _words_lower(text: str) -> list[str]:
    return [w.lower() for w in nlp.words(text)]


class OfflineEngine:
    """Deterministic minutes (and, through its helpers, summaries, outlines and SQL) offline."""

    name = "offline"
    model: str | None = None

    def __init__(
        self, *, summary_words: int = SUMMARY_WORDS, language: str = "english", summary_novelty: float = NOVELTY
    ):
        self.summary_words = summary_words
        self.language = language
        #: see :data:`marginalia.engines.meeting_segments.NOVELTY` (the quality benchmark varies it)
        self.summary_novelty = summary_novelty

    # --- minutes -----------------------------------------------------------------------------
    def extract_minutes(
        self, transcript: Transcript, *, first_segment: int = 0, hint_date: str | None = None, chunks: int = 1
    ) -> Minutes:
        """Minutes of the transcript. A chunk of a longer meeting (``chunks > 1``) carries its date,
        decisions and action items only: :meth:`merge_minutes` segments and summarises the whole
        meeting again (topics cross chunk borders), so a chunk's own structure would be thrown
        away (it was about half of a chunk's work)."""
        if not transcript.segments:
            raise UnsupportedInput("extract_minutes: the transcript has no segments, there is nothing to minute")
        utterances = clean_transcript(transcript, first_segment=first_segment)
        speakers = self._speakers(transcript)
        date = self._meeting_date(utterances, hint_date)
        people = People.of(speakers, (u.text for u in utterances))
        actions = extract_actions(utterances, people, date)
        if chunks > 1:
            draft = Minutes(title="", summary="", attendees=speakers)
        else:
            draft = self._structure(utterances, speakers, tasks=_evidence_of(actions))
        return draft.model_copy(
            update={"date": date, "decisions": extract_decisions(utterances), "action_items": actions}
        )

    def merge_minutes(self, parts: list[Minutes], transcript: Transcript) -> Minutes:
        """Reduce: topics, sections, title and summary of the whole; decisions and items of the parts.

        Cleaning and topic segmentation are linear, so the whole transcript is read again for
        its structure; the parts' decisions and action items (segment ids are global) are
        merged, repeats joined.
        """
        if not parts:
            raise UnsupportedInput("merge_minutes: no partial minutes to merge")
        if len(parts) == 1:
            return parts[0].model_copy(deep=True)
        speakers = self._speakers(transcript) or list(dict.fromkeys(a for p in parts for a in p.attendees))
        actions = dedupe_actions(a for p in parts for a in p.action_items)[:MAX_ACTION_ITEMS]
        draft = self._structure(clean_transcript(transcript), speakers, tasks=_evidence_of(actions))
        return draft.model_copy(
            update={
                "date": next((p.date for p in parts if p.date), None),
                "decisions": dedupe_decisions(d for p in parts for d in p.decisions)[:MAX_DECISIONS],
                "action_items": actions,
            }
        )

    def _structure(
        self,
        utterances: list[Utterance],
        speakers: list[str],
        budget: int | None = None,
        *,
        tasks: frozenset[int] = frozenset(),
    ) -> Minutes:
        """Title, attendees, topics, sections and summary (no date, decisions or action items).

        ``tasks``: the segments the action items were read from; the summary does not say them
        again ("Tom will update the on-call calendar by Wednesday" is an action item already)."""
        parts = segment(utterances)
        shown = _Shown()
        describe(utterances, parts, text=shown.text)
        topics = list(dict.fromkeys(p.title for p in sorted(parts, key=lambda p: -p.words) if p.title))[:MAX_TOPICS]
        sections = [
            MeetingSection(
                title=p.title or "Discussion",
                summary=" ".join(shown.render(utterances[i]) for i in p.sentences or []),
                evidence=sorted({utterances[i].segment for i in p.sentences or []}),
            )
            for p in parts
            if p.sentences
        ]
        return Minutes(
            title=self._title(utterances, parts),
            attendees=speakers,
            topics=topics,
            sections=sections,
            summary=self._summary(utterances, parts, speakers, topics, budget or self.summary_words, shown, tasks),
        )

    def revise_minutes(self, minutes: Minutes, feedback: str, transcript: Transcript) -> Minutes:
        """A new iteration that honours simple reviewer instructions, one per line or sentence.

        Understood: "shorter summary" / "longer summary", "add action item: X owner Y [due Z]",
        "remove action item X", "X is owned by Y" / "assign X to Y", "add topic Z",
        "remove topic Z", "add decision: X", "remove decision X", "title: X", "date: X".
        Anything else is kept, verbatim, as a reviewer's note at the end of the summary, so no
        feedback is silently lost. The result is always a new object.
        """
        revised = minutes.model_copy(deep=True)
        notes: list[str] = []
        for instruction in _instructions(feedback):
            if not self._apply(revised, instruction, transcript):
                notes.append(instruction)
        if notes:
            revised.summary = (
                f"{revised.summary.rstrip()} Reviewer notes: {' '.join(_sentence_end(n) for n in notes)}".strip()
            )
        return revised

    def _apply(self, minutes: Minutes, instruction: str, transcript: Transcript) -> bool:
        """Apply one reviewer instruction to ``minutes`` in place; False when not understood."""
        text = instruction.strip().rstrip(".!")
        speakers = self._speakers(transcript) or minutes.attendees
        if m := _REV_ADD_ACTION.match(text):
            task, owner, due = _split_action(m.group("body"), speakers, minutes.date)
            if not task:
                return False
            minutes.action_items.append(
                ActionItem(owner=owner, task=_capitalise(task), due=due, evidence=_evidence_for(task, transcript))
            )
            return True
        if m := _REV_REMOVE_ACTION.match(text):
            keep = [
                a
                for i, a in enumerate(minutes.action_items, 1)
                if not _matches(m.group("what"), f"{a.task} {a.owner or ''}", i)
            ]
            if len(keep) == len(minutes.action_items):
                return False
            minutes.action_items = keep
            return True
        if m := (_REV_ASSIGN.match(text) or _REV_OWNED.match(text)):
            owner = _speaker_like(m.group("owner"), speakers)
            hits = [a for i, a in enumerate(minutes.action_items, 1) if _matches(m.group("what"), a.task, i)]
            for a in hits:
                a.owner = owner
            return bool(hits)
        if m := _REV_ADD_TOPIC.match(text):
            topic = m.group("what").strip(" '\"")
            if topic and all(t.lower() != topic.lower() for t in minutes.topics):
                minutes.topics.append(topic)
            return bool(topic)
        if m := _REV_REMOVE_TOPIC.match(text):
            what = m.group("what").strip(" '\"").lower()
            kept_topics = [t for t in minutes.topics if t.lower() != what and what not in t.lower()]
            if len(kept_topics) == len(minutes.topics):
                return False
            minutes.topics = kept_topics
            return True
        if m := _REV_ADD_DECISION.match(text):
            decision = m.group("what").strip(" '\"")
            if not decision:
                return False
            minutes.decisions.append(Decision(text=_capitalise(decision), evidence=_evidence_for(decision, transcript)))
            return True
        if m := _REV_REMOVE_DECISION.match(text):
            kept_decisions = [d for i, d in enumerate(minutes.decisions, 1) if not _matches(m.group("what"), d.text, i)]
            if len(kept_decisions) == len(minutes.decisions):
                return False
            minutes.decisions = kept_decisions
            return True
        if m := _REV_TITLE.match(text):
            minutes.title = m.group("what").strip(" '\"") or minutes.title
            return True
        if m := _REV_DATE.match(text):
            found = nlp.find_dates(m.group("what"), reference=minutes.date)
            if not found:
                return False
            minutes.date = found[0]
            return True
        if _REV_SHORTER.search(text):
            minutes.summary = _shorten(minutes.summary)
            return True
        if _REV_LONGER.search(text) and transcript.segments:
            budget = max(self.summary_words, nlp.word_count(minutes.summary)) * 2
            minutes.summary = self._structure(
                clean_transcript(transcript), speakers, budget, tasks=_evidence_of(minutes.action_items)
            ).summary
            return True
        return False

    # --- documents, outlines, SQL: other modules --------------------------------------------
    def summarize_pages(self, pages: list[tuple[int, str]], *, first_page_abstract: bool = True) -> DocumentSummary:
        from . import offline_summary

        return offline_summary.summarize_pages(pages, first_page_abstract=first_page_abstract)

    def merge_summaries(self, parts: list[DocumentSummary], page_count: int) -> DocumentSummary:
        from . import offline_summary

        return offline_summary.merge_summaries(parts, page_count)

    def revise_summary(self, summary: DocumentSummary, feedback: str, pages: list[tuple[int, str]]) -> DocumentSummary:
        from . import offline_summary

        return offline_summary.revise_summary(summary, feedback, pages)

    def draft_outline(
        self,
        request: str,
        *,
        slides: int | None,
        sources: list[SourceContext],
        feedback: str | None = None,
        previous: Outline | None = None,
    ) -> Outline:
        from . import offline_outline

        return offline_outline.draft_outline(
            request, slides=slides, sources=sources, feedback=feedback, previous=previous
        )

    def question_to_sql(self, question: str, *, schema: str) -> str:
        from ..search import nl

        return nl.question_to_sql(question, schema=schema)

    # --- steps -------------------------------------------------------------------------------
    @staticmethod
    def _speakers(transcript: Transcript) -> list[str]:
        names = transcript.speakers or [s.speaker for s in transcript.segments if s.speaker]
        return list(dict.fromkeys(n for n in names if n))

    @staticmethod
    def _meeting_date(utterances: list[Utterance], hint_date: str | None) -> str | None:
        """A full date said in the opening of the meeting, else ``hint_date``."""
        opening = utterances[: max(15, len(utterances) // 10)]
        for u in opening:
            for mention in nlp.find_date_mentions(u.text):
                if not mention.relative:
                    return mention.iso
        if hint_date:
            found = nlp.find_dates(hint_date)
            return found[0] if found else hint_date
        return None

    @staticmethod
    def _title(utterances: list[Utterance], parts: list[Part]) -> str:
        """The title the meeting gives itself, else its dominant topic's."""
        for u in utterances[:40]:
            m = _TITLE_RE.search(u.text)
            if m:
                title = " ".join(m.group("title").split())
                return title[:1].upper() + title[1:]
        dominant = max(parts, key=lambda p: p.words, default=None)
        return dominant.title if dominant is not None and dominant.title else "Meeting"

    @staticmethod
    def _lead(speakers: list[str], topics: list[str]) -> str:
        """The opener: who met, on what."""
        who = _and(speakers[:6]) + (" and others" if len(speakers) > 6 else "")
        about = _and([t[:1].lower() + t[1:] if not t[:2].isupper() else t for t in topics[:3]])
        if who and about:
            return f"{who} discussed {about}."
        if about:
            return f"The meeting discussed {about}."
        return f"{who} met." if who else ""

    def _summary(
        self,
        utterances: list[Utterance],
        parts: list[Part],
        speakers: list[str],
        topics: list[str],
        budget: int,
        shown: _Shown,
        tasks: frozenset[int] = frozenset(),
    ) -> str:
        """The opener, then the chosen sentences in the order said, compressed, within ``budget``
        words; none of them an action item's (``tasks``: their segments)."""
        lead = self._lead(speakers, topics)
        remaining = max(20, budget - nlp.word_count(lead))
        if tasks:
            parts = [
                dataclasses.replace(p, ranked=[i for i in p.ranked or [] if utterances[i].segment not in tasks])
                for p in parts
            ]
        chosen = summary_sentences(
            utterances, parts, remaining, text=shown.text, render=shown.render, novelty=self.summary_novelty
        )
        if not chosen:  # a short or chatty meeting: its most central content sentences
            content = [u for u in utterances if u.kind == "content" and not u.is_question and u.segment not in tasks]
            picked = nlp.summarize_to_budget([shown.render(u) for u in content], remaining, language=self.language)
            chosen = [content[i].index for i in picked]
        return " ".join([lead, *(shown.render(utterances[i]) for i in sorted(chosen))]).strip()


_FIRST_PERSON = re.compile(r"\b(?:I|I'm|I'll|I've|I'd|me|my|mine)\b")


class _Shown:
    """Each utterance's compressed text, computed once for one set of minutes."""

    def __init__(self) -> None:
        self._texts: dict[int, str] = {}

    def text(self, u: Utterance) -> str:
        text = self._texts.get(u.index)
        if text is None:
            text = self._texts[u.index] = compress(u.text)
        return text

    def render(self, u: Utterance) -> str:
        """The sentence as the minutes show it (see :func:`_summary_sentence`)."""
        text = self.text(u)
        return f"{u.speaker}: {text}" if u.speaker and _FIRST_PERSON.search(text) else text


def _summary_sentence(u: Utterance, *, compressed: bool = True) -> str:
    """A summary sentence as the minutes show it: compressed (:mod:`~marginalia.engines.meeting_compression`),
    and naming who said it when it is in the first person ("Aisha Okafor: I can take …")."""
    text = compress(u.text) if compressed else u.text
    return f"{u.speaker}: {text}" if u.speaker and _FIRST_PERSON.search(text) else text


def _evidence_of(actions: list[ActionItem]) -> frozenset[int]:
    """The segments action items were read from."""
    return frozenset(i for a in actions for i in a.evidence)


def _and(items: list[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _capitalise(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:] if sentence else sentence


# --- revision ------------------------------------------------------------------------------------

_ACTION_WORDS = r"(?:an?\s+|the\s+)?(?:action(?:\s+item)?|task|to-?do|follow-?up)s?"
_REV_ADD_ACTION = re.compile(rf"^(?:please\s+)?add\s+{_ACTION_WORDS}\s*(?:[:\-]|that|to)?\s*(?P<body>.+)$", re.I)
_REV_REMOVE_ACTION = re.compile(
    rf"^(?:please\s+)?(?:remove|delete|drop)\s+{_ACTION_WORDS}\s*(?:about|on|for|[:\-])?\s*(?P<what>.+)$", re.I
)
_REV_ASSIGN = re.compile(r"^(?:please\s+)?(?:assign|give)\s+(?P<what>.+?)\s+to\s+(?P<owner>[^,;]+)$", re.I)
_REV_OWNED = re.compile(
    r"^(?:the\s+)?(?:owner\s+of\s+)?(?P<what>.+?)\s+(?:is|should\s+be)\s+(?:owned\s+by|assigned\s+to|for)\s+(?P<owner>[^,;]+)$",
    re.I,
)
_REV_ADD_TOPIC = re.compile(r"^(?:please\s+)?add\s+(?:a\s+|the\s+)?topic\s*[:\-]?\s*(?P<what>.+)$", re.I)
_REV_REMOVE_TOPIC = re.compile(
    r"^(?:please\s+)?(?:remove|delete|drop)\s+(?:the\s+)?topic\s*[:\-]?\s*(?P<what>.+)$", re.I
)
_REV_ADD_DECISION = re.compile(r"^(?:please\s+)?add\s+(?:a\s+|the\s+)?decision\s*(?:[:\-]|that)?\s*(?P<what>.+)$", re.I)
_REV_REMOVE_DECISION = re.compile(
    r"^(?:please\s+)?(?:remove|delete|drop)\s+(?:the\s+)?decision\s*(?:about|on|[:\-])?\s*(?P<what>.+)$", re.I
)
_REV_TITLE = re.compile(
    r"^(?:the\s+)?(?:title\s*(?:[:=]|is|should\s+be)|rename\s+(?:it\s+)?(?:to\s+)?|change\s+(?:the\s+)?title\s+to|call\s+it)\s*(?P<what>.+)$",
    re.I,
)
_REV_DATE = re.compile(r"^(?:the\s+)?(?:meeting\s+)?date\s*(?:[:=]|is|was|should\s+be)\s*(?P<what>.+)$", re.I)
_REV_SHORTER = re.compile(r"\b(?:shorter|shorten|too\s+long|more\s+concise|concise|briefer|condense|trim)\b", re.I)
_REV_LONGER = re.compile(r"\b(?:longer|too\s+short|more\s+detail(?:ed|s)?|expand|elaborate)\b", re.I)
_REV_OWNER_PART = re.compile(
    r"[,;(]?\s*\b(?:owner|owned\s+by|assigned\s+to|assignee)\s*[:=]?\s*(?P<owner>[^,;()]+?)\s*(?=[,;)]|\bdue\b|\bby\b|$)\)?",
    re.I,
)
_REV_DUE_PART = re.compile(
    r"[,;(]?\s*\b(?:due|deadline)\s*[:=]?\s*(?P<due>(?:[^,;()]|,\s*\d{4}\b)+)\s*(?=[,;)]|\bowner\b|$)\)?", re.I
)


def _instructions(feedback: str) -> list[str]:
    """Reviewer feedback as separate instructions: lines, ';'-separated parts, sentences."""
    out: list[str] = []
    for part in re.split(r"[\n;]+", feedback or ""):
        part = re.sub(r"^\s*(?:[-*\u2022]|\d+[.)])\s+", "", part).strip()
        part = " ".join(part.split())  # one space between words keeps the _REV_* patterns linear
        if not part:
            continue
        # An instruction with a colon ("add action item: ...") is kept whole; others split.
        out.extend([part] if ":" in part else (nlp.split_sentences(part) or [part]))
    return out


def _speaker_like(name: str, speakers: list[str]) -> str:
    name = name.strip(" .'\"")
    for speaker in speakers:
        if _norm_name(speaker) == _norm_name(name) or _norm_name(speaker).split()[:1] == [_norm_name(name)]:
            return speaker
    return name


def _split_action(body: str, speakers: list[str], date: str | None) -> tuple[str, str | None, str | None]:
    """``"send the deck owner Bob due Friday"`` -> task, owner, due."""
    owner = due = None
    if m := _REV_OWNER_PART.search(body):
        owner = _speaker_like(m.group("owner"), speakers)
        body = body[: m.start()] + " " + body[m.end() :]
    if m := _REV_DUE_PART.search(body):
        due = nlp.due_date(m.group("due"), reference=date) or m.group("due").strip()
        body = body[: m.start()] + " " + body[m.end() :]
    if owner is None and (m := re.search(r"\s+for\s+(?P<owner>[\w\[\] .'-]+)$", body)):
        candidate = _speaker_like(m.group("owner"), speakers)
        if candidate in speakers:
            owner, body = candidate, body[: m.start()]
    if due is None:
        due = nlp.due_date(body, reference=date)
    task = " ".join(body.split()).strip(" ,;:-'\"")
    return task, owner, due


def _matches(what: str, text: str, position: int) -> bool:
    """Does a reviewer's reference ("2", "#2", "the budget one", "budget") name this item?"""
    what = what.strip(" '\"#").lower()
    if what.isdigit():
        return int(what) == position
    wanted = {w for w in _words_lower(what) if w not in _FILLER_WORDS and w not in {"one", "item", "about"}}
    have = set(_words_lower(text))
    return bool(wanted) and wanted <= have


def _evidence_for(text: str, transcript: Transcript) -> list[int]:
    """Segments that say what a reviewer added: best word overlap, if it is a real overlap."""
    wanted = {w for w in _words_lower(text) if w not in _FILLER_WORDS and len(w) > 2}
    if not wanted:
        return []
    best: tuple[int, int] | None = None
    for seg in transcript.segments:
        overlap = len(wanted & set(_words_lower(seg.text)))
        if overlap and (best is None or overlap > best[0]):
            best = (overlap, seg.id)
    if best and best[0] >= max(2, (len(wanted) + 1) // 2):
        return [best[1]]
    return []


def _shorten(summary: str) -> str:
    """About half the words, whole sentences, never empty."""
    sentences = nlp.split_sentences(summary)
    if len(sentences) <= 1:
        words = summary.split()
        return " ".join(words[: max(1, len(words) // 2)]) if len(words) > 12 else summary
    target = max(1, nlp.word_count(summary) // 2)
    kept: list[str] = []
    used = 0
    for s in sentences:
        if len(kept) >= 2 and used + nlp.word_count(s) > target:
            break
        kept.append(s)
        used += nlp.word_count(s)
    return " ".join(kept)


def _sentence_end(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."
