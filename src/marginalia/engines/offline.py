"""The offline engine: deterministic minutes with no model weights and no network.

It is the embedded default, so it has to be genuinely useful on real meetings, not a stub:

* summary: LexRank (:mod:`marginalia.engines.text`) over the cleaned sentences of the
  meeting, whole sentences up to a word budget, led by one sentence naming who met and on what;
* topics: yake key phrases of the whole meeting, conversational filler removed;
* decisions: sentences with decision cues ("we decided", "agreed on", "let's go with", ...);
* action items: commitments ("I'll send ..." -> the speaker), requests ("Alice, can you ..." ->
  Alice; "can you ..." answered "sure" -> whoever answered), assignments ("Bob will ...",
  "Bob to ..."), explicit "action item: ..." and dated obligations ("we need to ... by Friday");
  the due date resolved against the meeting's date;
* evidence: the ids of the transcript segments every decision and action item came from.

Same input, same output: no randomness, no clock (the meeting date comes from the transcript
or from ``hint_date``). Document methods live in :mod:`marginalia.engines.offline_summary`
(summaries) and :mod:`marginalia.engines.offline_outline` (slide outlines), text-to-SQL in
:mod:`marginalia.search.nl`; all are imported on first use.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import UnsupportedInput
from ..schemas import ActionItem, Decision, DocumentSummary, Minutes, Outline, SourceContext, Transcript
from . import text as nlp

__all__ = ["OfflineEngine", "SUMMARY_WORDS"]

#: Words in the extractive summary (the budget the quality benchmark measures).
SUMMARY_WORDS = 150
MAX_TOPICS = 6
MAX_DECISIONS = 10
MAX_ACTION_ITEMS = 15
#: Key phrases are read from at most this many characters (~5 hours of speech): a longer meeting
#: is sampled evenly (every k-th sentence or segment), which keeps yake and sentence splitting
#: bounded in the merge of a huge transcript while every part of it still has its say.
MAX_TOPIC_CHARS = 300_000

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

_DECISION_RE = re.compile(
    r"\b(?:we(?:'ve| have)?\s+(?:all\s+)?(?:decided|agreed|settled|chose|chosen|concluded)"
    r"|(?:it(?:'s| is| was)\s+)?decided\s+(?:to|that|on)"
    r"|(?:the\s+)?(?:final\s+)?decision\s+(?:is|was|will be)"
    r"|(?:we|everyone|everybody)\s+agree[sd]?\b"
    r"|agreed\s+(?:to|on|that|upon)"
    r"|let(?:'s| us)\s+(?:go|stick)\s+with"
    r"|we(?:'ll| will| are going to|'re going to|'re gonna| are gonna)\s+(?:go\s+(?:for|with)|use|stick\s+with|keep|adopt|switch\s+to|move\s+to)"
    r"|we(?:'re| are)\s+(?:going|gonna)\s+with"
    r"|(?:so\s+)?that's\s+(?:decided|settled|agreed)"
    r"|consensus\s+(?:is|was)"
    r"|conclusion\s+(?:is|was)"
    r")\b",
    re.IGNORECASE,
)

#: First-person commitments; the task is what follows.
_COMMIT_RE = re.compile(
    r"\b(?:I(?:'ll| will| shall)|I(?:'m| am)\s+(?:going to|gonna)|I\s+can\s+take|let\s+me|I\s+(?:promise|volunteer)\s+to)\s+(?P<task>.+)",
    re.IGNORECASE,
)
#: "<Name>, can you ..." / "can you ..." requests. Names start only where a word starts (the
#: lookbehind): trying every position inside a long word would make the search quadratic.
_REQUEST_RE = re.compile(
    r"(?:(?<![\w\[\]])(?P<name>[A-Z\[][\w\[\]]*(?:\s+[A-Z][\w]*)?)\s*,\s*)?\b(?:can|could|would|will)\s+you(?:\s+please)?\s+(?P<task>.+)",
    re.IGNORECASE,
)
#: "<Name> will ..." / "<Name> is going to ..." / "<Name> to ..." (minute style); names start
#: where a word starts, which keeps the scan linear on one huge word.
_ASSIGN_RE = re.compile(
    r"(?<![\w\[\]])(?P<name>\[?[A-Z][\w]*\]?(?:\s+[A-Z][\w]*)?)\s+(?:will|shall|is\s+going\s+to|is\s+gonna|(?:has|needs)\s+to|to)\s+(?P<task>.+)"
)
_EXPLICIT_RE = re.compile(r"\b(?:action(?:\s+item)?|to-?do|task)\s*[:\-]\s*(?P<task>.+)", re.IGNORECASE)
_OBLIGATION_RE = re.compile(
    r"\b(?:we|someone|somebody|you\s+guys|the\s+team)\s+(?:(?:also|really|still|just|definitely|probably|then)\s+)?(?:need(?:s)?\s+to|have\s+to|has\s+to|must|should|'ve\s+got\s+to)\s+(?P<task>.+)",
    re.IGNORECASE,
)
_AFFIRMATIVE_RE = re.compile(
    r"^(?:yes|yeah|yep|sure|ok(?:ay)?|of course|no problem|will do|i can|i will|i'll do (?:it|that)|definitely|absolutely|fine)\b",
    re.IGNORECASE,
)

#: What follows "I'll" that is not a task one could follow up on.
_NOT_TASKS = re.compile(
    r"^(?:just\s+)?(?:be\b|say\b|tell you\b|think\b|guess\b|show you\b|talk\b|explain\b|start\b|stop\b|leave\b|"
    r"mean\b|wait\b|admit\b|have\b|see\b|go\b(?!\s+(?:through|over|and|ahead and))|let\b|pass\b|put it\b|try\b(?!\s+to\s+\w+\s+\w+)|"
    r"do it\b|do that\b|do this\b|read\b(?!\s+\w+\s+\w+)|give you\b|need\b|move on\b|skip\b|continue\b(?!\s+\w+\s+\w+)|"
    r"repeat\b|check\b(?!\s+\w+)|share (?:my|the) screen\b|come back\b|hand over\b|turn\b|open\b|close\b|switch\b|"
    r"ask you\b|finish (?:this|my) (?:presentation|slide)|take (?:a|the) (?:look|minute|second)\b(?!\s+at\s+\w+\s+\w+)|"
    r"bet\b|believe\b|agree\b|buy that\b|answer\b|mention\b|assume\b|remember\b|get\b(?!\s+(?:back|in touch|the|a|it|them|that)\b)|"
    r"hope\b|use\b(?=\s+(?:it|this|that)\b)|keep\b(?=\s+(?:it|this|that)\b)|take it\b|introduce\b|present\b|sit\b|stay\b|draw\b|write (?:it|that) (?:down|up)\b)",
    re.IGNORECASE,
)
#: Verbs that make a request or commitment a follow-up task.
_TASK_VERBS = re.compile(
    r"\b(?:send|email|e-mail|mail|write|prepare|draft|finish|finalise|finalize|check|update|fix|review|schedule|book|share|"
    r"test|deploy|look into|follow up|set up|contact|call|organi[sz]e|create|circulate|upload|download|implement|"
    r"ask|find|investigate|run|install|configure|document|analy[sz]e|compare|collect|gather|summari[sz]e|report|"
    r"migrate|move|build|design|order|buy|arrange|confirm|clarify|reply|answer|read|annotate|translate|add|remove|"
    r"merge|release|publish|plan|estimate|measure|evaluate|benchmark|talk to|speak to|get back|reach out|coordinate|"
    r"upgrade|quarantine|patch|renew|remind|tell|inform|notify|announce|approve|sign|submit|file|pay|invoice|"
    r"back up|restore|clean up|refactor|rewrite|change|ship|roll out|roll back|rollback|monitor|verify|validate|"
    r"prototype|provision|rotate|renew|audit|label|sketch|mock up|research|look at|chase|print|post)\b",
    re.IGNORECASE,
)
_TITLE_RE = re.compile(
    r"\b(?:welcome\s+(?:back\s+)?to|this\s+is|today(?:'s| is)?\s+(?:our|the)?|it's)\s+(?:our|the|this)?\s*"
    r"(?P<title>(?:[\w-]+\s+){0,5}?(?:meeting|stand-?up|sync|review|retro(?:spective)?|planning|kick-?off|call|session|workshop|check-?in))\b",
    re.IGNORECASE,
)
#: A key phrase with one of these words is a fragment of a sentence or a date, not a topic.
_TOPIC_JUNK = (
    frozenset(
        "on by at to for the a an with from into about and or but if than then was were is are be been "
        "today tomorrow yesterday week month".split()
    )
    | {m.lower() for m in calendar.month_name if m}
    | {d.lower() for d in calendar.day_name}
)
_BRACKETS_RE = re.compile(r"^[\[(]+|[\])]+$")


@dataclass(frozen=True, slots=True)
class _Sentence:
    """One cleaned sentence of the transcript and where it came from."""

    index: int  # position among all sentences
    segment: int  # global segment id
    position: int  # index of the segment within this transcript (chunk)
    speaker: str | None
    text: str


def _norm_name(name: str | None) -> str:
    return _BRACKETS_RE.sub("", (name or "").strip()).lower()


def _words_lower(text: str) -> list[str]:
    return [w.lower() for w in nlp.words(text)]


def _is_content(sentence: str) -> bool:
    """Worth summarising: long enough and not mostly filler."""
    ws = _words_lower(sentence)
    if len(ws) < 7 or sentence.rstrip().endswith("?"):
        return False
    content = [w for w in ws if w not in _FILLER_WORDS and len(w) > 2]
    fragments = sum(1 for w in ws if len(w) == 1 and w not in ("i", "a"))
    return len(content) >= 3 and len(content) / len(ws) >= 0.3 and fragments <= 1


def _clip_task(task: str) -> str:
    task = re.split(r"(?<=[.!?])\s", task.strip(), maxsplit=1)[0]
    task = re.sub(r"^(?:please|also|then|just|actually|maybe|probably|definitely)\s+", "", task.strip(), flags=re.I)
    task = re.sub(r"\s+(?:myself|yourself|himself|herself|ourselves)\b", "", task, flags=re.I)
    task = re.sub(r"\s*(?:,\s*)?(?:okay|ok|right|yeah|alright|please)?\s*[?.!,;:]*$", "", task, flags=re.I)
    words = task.split()
    if len(words) > 30:
        task = " ".join(words[:30]) + "…"
    return task[:1].upper() + task[1:] if task else task


def _similar(a: str, b: str) -> bool:
    wa, wb = set(_words_lower(a)), set(_words_lower(b))
    if not wa or not wb:
        return a.strip().lower() == b.strip().lower()
    return len(wa & wb) / min(len(wa), len(wb)) >= 0.8


class OfflineEngine:
    """Deterministic minutes (and, through its helpers, summaries, outlines and SQL) offline."""

    name = "offline"
    model = None

    def __init__(self, *, summary_words: int = SUMMARY_WORDS, language: str = "english"):
        self.summary_words = summary_words
        self.language = language

    # --- minutes -----------------------------------------------------------------------------
    def extract_minutes(
        self, transcript: Transcript, *, first_segment: int = 0, hint_date: str | None = None
    ) -> Minutes:
        if not transcript.segments:
            raise UnsupportedInput("extract_minutes: the transcript has no segments, there is nothing to minute")
        sentences = self._sentences(transcript, first_segment)
        speakers = self._speakers(transcript)
        date = self._meeting_date(sentences, hint_date)
        topics = self._topics(sentences, speakers)
        return Minutes(
            date=date,
            title=self._title(sentences, topics),
            attendees=speakers,
            topics=topics,
            decisions=self._decisions(sentences),
            action_items=self._action_items(sentences, speakers, date),
            summary=self._summary(sentences, speakers, topics, self.summary_words),
        )

    def merge_minutes(self, parts: list[Minutes], transcript: Transcript) -> Minutes:
        """Reduce: union of attendees, decisions and action items; topics and summary re-ranked."""
        if not parts:
            raise UnsupportedInput("merge_minutes: no partial minutes to merge")
        if len(parts) == 1:
            return parts[0].model_copy(deep=True)
        speakers = self._speakers(transcript) or list(dict.fromkeys(a for p in parts for a in p.attendees))
        sample = transcript.model_copy(update={"segments": _evenly(transcript.segments, lambda seg: len(seg.text))})
        sentences = self._sentences(sample, 0) if sample.segments else []
        topics = (
            self._topics(sentences, speakers)
            if sentences
            else list(dict.fromkeys(t for p in parts for t in p.topics))[:MAX_TOPICS]
        )
        # The summary of the whole is ranked among the parts' own summary sentences.
        part_sentences = [s for p in parts for s in nlp.split_sentences(p.summary)[1:]]
        chosen = nlp.summarize_to_budget(part_sentences, self.summary_words - 25, language=self.language)
        lead = self._lead(speakers, topics)
        summary = " ".join([lead, *(part_sentences[i] for i in chosen)]).strip()
        decisions = self._dedupe_decisions(d for p in parts for d in p.decisions)[:MAX_DECISIONS]
        actions = self._dedupe_actions(a for p in parts for a in p.action_items)[:MAX_ACTION_ITEMS]
        date = next((p.date for p in parts if p.date), None)
        return Minutes(
            date=date,
            title=parts[0].title,
            attendees=speakers,
            topics=topics,
            decisions=decisions,
            action_items=actions,
            summary=summary,
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
            keep = [t for t in minutes.topics if t.lower() != what and what not in t.lower()]
            if len(keep) == len(minutes.topics):
                return False
            minutes.topics = keep
            return True
        if m := _REV_ADD_DECISION.match(text):
            decision = m.group("what").strip(" '\"")
            if not decision:
                return False
            minutes.decisions.append(Decision(text=_capitalise(decision), evidence=_evidence_for(decision, transcript)))
            return True
        if m := _REV_REMOVE_DECISION.match(text):
            keep = [d for i, d in enumerate(minutes.decisions, 1) if not _matches(m.group("what"), d.text, i)]
            if len(keep) == len(minutes.decisions):
                return False
            minutes.decisions = keep
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
            sentences = self._sentences(transcript, 0)
            budget = max(self.summary_words, nlp.word_count(minutes.summary)) * 2
            minutes.summary = self._summary(sentences, speakers, minutes.topics, budget)
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
    def _sentences(self, transcript: Transcript, first_segment: int) -> list[_Sentence]:
        # Segment ids are global; a chunk numbered from 0 is shifted by first_segment.
        offset = first_segment if transcript.segments and transcript.segments[0].id < first_segment else 0
        out: list[_Sentence] = []
        for position, seg in enumerate(transcript.segments):
            cleaned = nlp.clean_disfluencies(seg.text)
            for sentence in nlp.split_sentences(cleaned):
                if nlp.words(sentence):
                    out.append(_Sentence(len(out), seg.id + offset, position, seg.speaker, sentence))
        return out

    @staticmethod
    def _speakers(transcript: Transcript) -> list[str]:
        names = transcript.speakers or [s.speaker for s in transcript.segments if s.speaker]
        return list(dict.fromkeys(n for n in names if n))

    @staticmethod
    def _meeting_date(sentences: list[_Sentence], hint_date: str | None) -> str | None:
        """A full date said in the opening of the meeting, else ``hint_date``."""
        opening = sentences[: max(15, len(sentences) // 10)]
        for s in opening:
            for mention in nlp.find_date_mentions(s.text):
                if not mention.relative:
                    return mention.iso
        if hint_date:
            found = nlp.find_dates(hint_date)
            return found[0] if found else hint_date
        return None

    def _topics(self, sentences: list[_Sentence], speakers: list[str]) -> list[str]:
        text = " ".join(s.text for s in _evenly(sentences, lambda s: len(s.text) + 1))
        speaker_words = {w for name in speakers for w in _words_lower(name)}
        found = nlp.keywords(text, MAX_TOPICS * 2, extra_stopwords=SPEECH_STOPWORDS | speaker_words)
        topics: list[str] = []
        for phrase in found:
            lowered = _words_lower(phrase)
            if any(_singular(phrase) == _singular(t) for t in topics) or _TOPIC_JUNK & set(lowered):
                continue
            topics.append(phrase)
            if len(topics) == MAX_TOPICS:
                break
        return topics

    @staticmethod
    def _title(sentences: list[_Sentence], topics: list[str]) -> str:
        for s in sentences[:40]:
            m = _TITLE_RE.search(s.text)
            if m:
                title = " ".join(m.group("title").split())
                return title[:1].upper() + title[1:]
        if topics:
            return "Meeting: " + ", ".join(topics[:3])
        return "Meeting"

    @staticmethod
    def _lead(speakers: list[str], topics: list[str]) -> str:
        who = ", ".join(speakers[:6]) + (" and others" if len(speakers) > 6 else "")
        about = ", ".join(topics[:4])
        if who and about:
            return f"The meeting of {who} discussed {about}."
        if about:
            return f"The meeting discussed {about}."
        return f"The meeting of {who}." if who else ""

    def _summary(self, sentences: list[_Sentence], speakers: list[str], topics: list[str], budget: int) -> str:
        lead = self._lead(speakers, topics)
        texts = [s.text for s in sentences]
        remaining = max(20, budget - nlp.word_count(lead))
        chosen = nlp.summarize_to_budget(texts, remaining, language=self.language, eligible=_is_content)
        if not chosen:  # a short or chatty meeting: take whatever sentences there are
            chosen = nlp.summarize_to_budget(texts, remaining, language=self.language)
        return " ".join([lead, *(_capitalise(texts[i]) for i in chosen)]).strip()

    def _decisions(self, sentences: list[_Sentence]) -> list[Decision]:
        found: list[Decision] = []
        for s in sentences:
            if s.text.rstrip().endswith("?") or nlp.word_count(s.text) < 5:
                continue
            if _DECISION_RE.search(s.text):
                found.append(Decision(text=_capitalise(s.text), evidence=[s.segment]))
        return self._dedupe_decisions(found)[:MAX_DECISIONS]

    def _action_items(self, sentences: list[_Sentence], speakers: list[str], date: str | None) -> list[ActionItem]:
        by_name = {_norm_name(n): n for n in speakers}
        first_names: dict[str, str] = {}
        for n in speakers:
            parts = _norm_name(n).split()
            if len(parts) > 1:
                first_names.setdefault(parts[0], n)
        by_position: dict[int, list[_Sentence]] = {}
        for s in sentences:
            by_position.setdefault(s.position, []).append(s)

        def speaker_named(name: str | None) -> str | None:
            key = _norm_name(name)
            return by_name.get(key) or first_names.get(key)

        candidates: list[tuple[int, int, ActionItem]] = []  # (score, sentence index, item)
        for s in sentences:
            item, score = self._action_from(s, speaker_named, by_position, date)
            if item is not None:
                candidates.append((score, s.index, item))
        # The strongest candidates, shown in the order they were said.
        best = sorted(candidates, key=lambda c: (-c[0], c[1]))
        kept = self._dedupe_actions(item for _, _, item in sorted(best[: MAX_ACTION_ITEMS * 2], key=lambda c: c[1]))
        scores = {id(item): score for score, _, item in candidates}
        if len(kept) > MAX_ACTION_ITEMS:
            ranked = sorted(range(len(kept)), key=lambda i: (-scores.get(id(kept[i]), 0), i))[:MAX_ACTION_ITEMS]
            kept = [kept[i] for i in sorted(ranked)]
        return kept

    def _action_from(self, s: _Sentence, speaker_named, by_position, date) -> tuple[ActionItem | None, int]:
        text = s.text
        if text.rstrip().endswith("?") and not _REQUEST_RE.search(text):
            return None, 0
        owner: str | None = None
        task: str | None = None
        reply_text = ""
        evidence = [s.segment]
        score = 0
        m = _EXPLICIT_RE.search(text)
        if m:
            task, score = m.group("task"), 3
            named = _ASSIGN_RE.match(task.strip())
            if named and speaker_named(named.group("name")):
                owner, task = speaker_named(named.group("name")), named.group("task")
        if task is None and (m := _REQUEST_RE.search(text)):
            task = m.group("task")
            owner = speaker_named(m.group("name"))
            reply = self._reply(s, by_position)
            if reply is not None and owner in (None, reply.speaker):
                owner = reply.speaker
                evidence.append(reply.segment)
                reply_text = reply.text
            if owner is None or (m.group("name") is None and not _TASK_VERBS.search(task)):
                return None, 0
            score = 2
        if task is None:
            for m in _ASSIGN_RE.finditer(text):
                name = speaker_named(m.group("name"))
                if name:
                    owner, task, score = name, m.group("task"), 2
                    break
        if task is None and (m := _COMMIT_RE.search(text)) and s.speaker:
            if _NOT_TASKS.match(m.group("task")) or not _TASK_VERBS.search(m.group("task")):
                return None, 0
            owner, task, score = s.speaker, m.group("task"), 1
        due = nlp.due_date(text, reference=date) or (nlp.due_date(reply_text, reference=date) if reply_text else None)
        if task is None and (m := _OBLIGATION_RE.search(text)) and due and (date is None or due > date):
            task, score = m.group("task"), 1  # "we need to ... by Friday": dated, so a real to-do
        if task is None:
            return None, 0
        task = _clip_task(task)
        if nlp.word_count(task) < 2:
            return None, 0
        if due:
            score += 2
        if _TASK_VERBS.search(task):
            score += 1
        return ActionItem(owner=owner, task=task, due=due, evidence=sorted(set(evidence))), score

    @staticmethod
    def _reply(s: _Sentence, by_position: dict[int, list[_Sentence]]) -> _Sentence | None:
        """The next speaker's answer to a request, when it is an agreement."""
        for position in (s.position + 1, s.position + 2):
            for reply in by_position.get(position, [])[:1]:
                if reply.speaker and reply.speaker != s.speaker and _AFFIRMATIVE_RE.match(reply.text):
                    return reply
                if reply.speaker and reply.speaker != s.speaker:
                    return None
        return None

    @staticmethod
    def _dedupe_decisions(decisions: Iterable[Decision]) -> list[Decision]:
        out: list[Decision] = []
        for d in decisions:
            twin = next((o for o in out if _similar(o.text, d.text)), None)
            if twin is None:
                out.append(d.model_copy(deep=True))
            else:
                twin.evidence = sorted(set(twin.evidence) | set(d.evidence))
        return out

    @staticmethod
    def _dedupe_actions(items: Iterable[ActionItem]) -> list[ActionItem]:
        out: list[ActionItem] = []
        for a in items:
            twin = next((o for o in out if o.owner == a.owner and _similar(o.task, a.task)), None)
            if twin is None:
                out.append(a.model_copy(deep=True))
            else:
                twin.evidence = sorted(set(twin.evidence) | set(a.evidence))
                twin.due = twin.due or a.due
        return out


def _evenly(items: list, size, budget: int = MAX_TOPIC_CHARS) -> list:
    """``items`` when their total ``size`` fits ``budget``, else every k-th of them (in order)
    with k chosen so that the sample fits: an even spread over the whole, not its beginning."""
    total = sum(size(item) for item in items)
    if total <= budget:
        return items
    step = -(-total // budget)
    return items[::step]


def _singular(phrase: str) -> str:
    return " ".join(
        w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in phrase.lower().split()
    )


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
    kept, used = [], 0
    for s in sentences:
        if len(kept) >= 2 and used + nlp.word_count(s) > target:
            break
        kept.append(s)
        used += nlp.word_count(s)
    return " ".join(kept)


def _sentence_end(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?")) else text + "."
