"""Action items from a cleaned meeting: who does what, by when, and how sure we are.

Found in the cleaned :class:`~marginalia.engines.meeting_cleaning.Utterance` s (content only:
backchannels and audio/meta talk never become tasks):

* commitments — "I'll send …", "I'm going to …", "let me …": the owner is the speaker;
* requests — "can you …", "<Name>, could you …", "you should …": the owner is the person
  addressed (named in the sentence, else the next other speaker, else — with two people in the
  room — the other one); a refusal ("no", "I can't") drops the request;
* assignments — "<Name> will …", "<Name> should …", "let's have <Name> …", "<Name> to …":
  the owner is the person named, also when that person never speaks in the transcript
  (pseudonyms such as ``[PERSON5]``, or a capitalised name that is never written in lower case);
* explicit "action item: …" lines.

Excluded: questions that are not requests, hypotheticals ("if I …", "I would …", "maybe I'll"),
negations ("I won't"), jokes (laughter right after), and what follows "I'll" that is talk, not a
task ("I'll be quick", "I'll show you", "I'll share my screen"). The task is rewritten as an
imperative phrase in the third person ("I'll send you the draft", said by Ann to Bob -> owner Ann,
task "Send Bob the draft"); the due date is resolved against the meeting's date; every item has
the ids of the segments it came from and a ``confidence`` (what the reviewer is told to check).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..schemas import ActionItem
from . import text as nlp
from .meeting_cleaning import BACKCHANNEL_WORDS, Utterance, is_meta, word_overlap
from .meeting_people import People

__all__ = ["MAX_ACTION_ITEMS", "extract_actions", "dedupe_actions"]

MAX_ACTION_ITEMS = 15

#: Verbs that make a phrase a follow-up task.
TASK_VERBS = re.compile(
    r"^(?:send|email|e-mail|mail|write|prepare|draft|finish|finalise|finalize|check|update|fix|review|schedule|book|share|"
    r"test|deploy|look\s+into|look\s+at|follow\s+up|set\s+up|contact|call|organi[sz]e|create|circulate|upload|download|implement|"
    r"ask|find|investigate|run|install|configure|document|analy[sz]e|compare|collect|gather|summari[sz]e|report|"
    r"migrate|move|build|design|order|buy|arrange|confirm|clarify|reply|answer|read|annotate|translate|add|remove|"
    r"merge|release|publish|plan|estimate|measure|evaluate|benchmark|talk\s+to|speak\s+to|get\s+back|reach\s+out|coordinate|"
    r"upgrade|quarantine|patch|renew|remind|inform|notify|announce|approve|sign|submit|file|pay|invoice|"
    r"back\s+up|restore|clean\s+up|refactor|rewrite|change|ship|roll\s+out|roll\s+back|monitor|verify|validate|"
    r"prototype|provision|rotate|audit|label|sketch|mock\s+up|research|chase|print|post|work\s+(?:together\s+)?(?:on|with)|take\s+care\s+of|"
    r"handle|deal\s+with|bring|provide|give|put|get|make|present|continue|start|complete|process|prepare|train|"
    r"recompute|compute|correct|edit|extend|improve|integrate|include|try\s+to|think\s+about|explore|search|"
    r"sort\s+out|put\s+together|come\s+up\s+with|figure\s+out|send\s+out|write\s+up|go\s+through|look\s+for|decide|"
    r"discuss|meet|visit|join|record|transcribe|evaluate|clean|split|convert|align|check\s+out|reserve|invite|"
    r"forward|introduce|list|note|pick|select|draw|specify|define|agree|finish|fill)\b",
    re.IGNORECASE,
)
#: What follows "I'll" / "can you" that is talk about the meeting itself, not a task.
_NOT_TASKS = re.compile(
    r"^(?:just\s+)?(?:be\b|say\b|tell\s+you\b|think\b(?!\s+about)|guess\b|show\s+you\b|talk\b(?!\s+to)|explain\b|"
    r"stop\b|leave\b|mean\b|wait\b|admit\b|have\b|see\b|go\b(?!\s+through)|let\b|pass\b|put\s+it\b|"
    r"do\s+it\b|do\s+that\b|do\s+this\b|give\s+you\b|need\b|move\s+on\b|skip\b|repeat\b|share\s+(?:my|the)\s+screen\b|"
    r"come\s+back\b|hand\s+over\b|turn\b|open\b|close\b|switch\b|ask\s+you\b|start\s+(?:with|by|again|off)\b|"
    r"give\s+(?:you\s+|us\s+)?(?:a|an|the|my|our)?\s*(?:short\s+|quick\s+|brief\s+)?(?:talk|presentation|overview|introduction|demo)\b|"
    r"take\s+(?:a|the)\s+(?:look|minute|second)\b(?!\s+at\s+\w+\s+\w+)|bet\b|believe\b|agree\b|answer\s+(?:that|this|it)\b|"
    r"mention\b|assume\b|remember\b|hope\b|introduce\s+(?:myself|you)\b|present\s+(?:myself|you)\b|sit\b|stay\b|"
    r"hear\b|speak\s+up\b|get\s+(?:a|some)\s+(?:coffee|tea|drink|lunch)\b|draw\s+(?:it|this|that)\b|"
    r"read\s+(?:it|this|that)\b|write\s+(?:it|that)\s+(?:down|up)\b|put\s+(?:it|that)\s+(?:on|in)\b|continue\b(?!\s+\w+\s+\w+)|"
    r"join\s+(?:us|you|them|him|her|the\s+(?:call|meeting|team|group|session))\b|join\s+(?:in|later|tomorrow)\b|"
    r"(?:share|tell|explain|show)\s+(?:(?:that|this|it|us|me|them|him|her)\s+)?(?:how|what|why|where|which|who)\b|"
    r"(?:make|do|give|hold)\s+(?:a|the|my|our|his|her|their)?\s*(?:presentation|talk|demo)\b|"
    r"finish\s+(?:up\s+)?(?:with|by)\b|wrap\s+up\b|turn\s+(?:it\s+)?over\b|"
    r"select\b|click\b|scroll\b|zoom\b|find\s+(?:it|something|that|this)\b|search\b(?!\s+for\s+\w+\s+\w+))",
    re.IGNORECASE,
)
#: Private life and small talk: not the meeting's business.
_PRIVATE = re.compile(
    r"\b(?:holiday|holidays|vacation|lunch|dinner|breakfast|coffee|beer|drink|party|birthday|weekend|"
    r"visa|doctor|dentist|kids?|wife|husband|girlfriend|boyfriend)\b",
    re.IGNORECASE,
)
_HYPOTHETICAL = re.compile(
    r"\b(?:if|unless|whether|suppose|imagine|what\s+if|in\s+case|would|wouldn't|might|maybe|perhaps|probably|"
    r"could\s+have|should\s+have|would\s+have|i\s+wish|in\s+theory|ideally)\b",
    re.IGNORECASE,
)
_NEGATED = re.compile(r"\b(?:won't|will\s+not|not\s+going\s+to|can't|cannot|don't|never|shouldn't|no\s+need)\b", re.I)
_REFUSAL = re.compile(
    r"^(?:no\b|nope\b|i\s+can't\b|i\s+cannot\b|i\s+(?:would|'d)\s+rather\s+not\b|not\s+(?:really|now|today|me)\b|"
    r"sorry,?\s+i\s+can't)",
    re.IGNORECASE,
)
_AFFIRMATIVE = re.compile(
    r"^(?:yes|yeah|yep|sure|ok(?:ay)?|of\s+course|no\s+problem|will\s+do|i\s+can|i\s+will|i'll|definitely|absolutely|fine|alright)\b",
    re.IGNORECASE,
)
_NAME = r"(?P<name>\[[A-Z]+\d*\]|[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*){0,2})"
#: What opens a commitment of the speaker's; the task follows it.
_COMMIT_LEAD = re.compile(
    r"(?<![\w'])(?:(?:thing|step|experiment)\s+I(?:'m|\s+am)\s+(?:going\s+to|gonna)\s+(?:try|do)\s+is(?:\s+to)?|"
    r"I(?:'ll|\s+will|\s+shall)|I(?:'m|\s+am)\s+(?:going\s+to|gonna)|let\s+me|I\s+can\s+take\s+care\s+of|"
    r"I\s+(?:promise|volunteer|offer)\s+to|I\s+(?:still\s+)?(?:have|need)\s+to|I\s+should)\s+",
    re.IGNORECASE,
)
#: "we decided that …", "it's agreed that …": an assignment that follows is settled, not a hypothesis.
_SETTLED = re.compile(r"\b(?:decided|agreed|settled|confirmed)\s+(?:that\s+)?$", re.IGNORECASE)
_COMMIT_WEAK = re.compile(r"(?<![\w'])I\s+(?:have|need|still\s+have|still\s+need)\s+to\b|(?<![\w'])I\s+should\b", re.I)
_REQUEST = re.compile(
    rf"(?:(?:^|(?<=[.,;!?]\s)){_NAME}\s*,\s*)?\b(?:can|could|would|will)\s+you(?:\s+(?:please|also|maybe|just))*\s+(?P<task>.+)",
    re.IGNORECASE,
)
#: What may open a sentence before its "you should …" / "you can …" and keep it an instruction
#: (a person addressed, discourse words); anything else ("the usual reason is that you have to",
#: "I think you should") makes the "you" generic or the sentence an opinion.
_INSTRUCTION_LEAD = (
    rf"^(?:(?:so|and|then|okay|ok|well|now|also|but|yeah|right|alright|maybe)\s*,?\s*)*(?:(?-i:{_NAME})\s*,\s*)?"
)
_YOU_SHOULD = re.compile(
    _INSTRUCTION_LEAD + r"you(?:'ll|\s+will|\s+should|\s+need\s+to|\s+have\s+to|(?:'re|\s+are)\s+(?:(?:also|then)\s+)?"
    r"(?:going\s+to|gonna))\s+(?P<task>.+)",
    re.I,
)
#: "You can write the probing": an instruction only when it is clear who "you" is (see _candidate).
_YOU_CAN = re.compile(_INSTRUCTION_LEAD + r"you\s+(?:can|could)\s+(?P<task>.+)", re.I)
_IF_YOU_COULD = re.compile(
    rf"(?:^|(?<=[.,;!?]\s))(?:(?:in\s+any\s+case|so|and|then|okay)\s*,?\s*)*(?:(?-i:{_NAME})\s*,\s*)?"
    r"if\s+you\s+could(?:\s+(?:please|also|maybe|just))*\s+(?P<task>.+)",
    re.I,
)
#: "Would you …?" / "Will you …?" without "please" or "mind": a question about what someone would do.
_ASKS_OPINION = re.compile(r"\b(?:would|will)\s+you\b(?!\s+(?:please|mind|be\s+able|kindly))", re.IGNORECASE)
_WOULD_BE_GOOD = re.compile(r"\b(?:would|will)\s+be\s+(?:great|good|nice|helpful|perfect|ideal)\b", re.IGNORECASE)
#: Meta talk about what the call shows or sounds like (not greetings and goodbyes).
_SCREEN_OR_AUDIO = re.compile(
    r"\b(?:screen|shar\w*|slide|hear|mute\w*|mic\w*|audio|camera|video|link|window|echo)\b", re.I
)
#: "<Name>, …" or "…, <Name>?": the person a speaker turns to.
_VOCATIVE = re.compile(rf"(?:^|[.;!?]\s+|,\s*){_NAME}\s*(?:,|[?.!]$)")
#: Talk done during the call itself: what follows is not a follow-up task.
_IN_CALL = re.compile(
    r"\b(?:just\s+a\s+(?:moment|second|sec|minute)|one\s+(?:moment|second|sec)|(?:i'll|i\s+will|let\s+me)\s+show\s+(?:you|us|it)|"
    r"you\s+(?:should|can)\s+(?:now\s+)?see|on\s+(?:my|the)\s+screen|in\s+the\s+chat|on\s+the\s+(?:white\s*board|board|flip\s*chart))\b|\bhere(?:\s+in\s+(?:this|the)\b[^.!?]{0,80})?[.!]?$",
    re.I,
)
_PLEASE = re.compile(rf"^(?:{_NAME}\s*,\s*)?please\s+(?P<task>.+)", re.IGNORECASE)
_ASSIGN = re.compile(
    rf"(?<![\w\[\]]){_NAME}(?:\s+and\s+(?P<second>\[[A-Z]+\d*\]|[A-Z][\w'-]*))?(?:\s+(?:over\s+)?(?:here|there))?\s*,?\s+(?:will|shall|should|'ll|(?:is|are)\s+(?:going\s+to|gonna|supposed\s+to)|"
    r"needs?\s+to|has\s+to|have\s+to|can\s+(?:take\s+care\s+of|do|handle|prepare|send|write|check)|(?:is|are)\s+to|to)\s+(?P<task>.+)"
)
#: "the two designers are going to …": an assignment to every speaker with that role.
_GROUP_ASSIGN = re.compile(
    r"\b(?:the|both|all)\s+(?:(?:two|three|four)\s+)?(?:of\s+the\s+)?(?P<group>[a-z]+s)\s+(?:will|should|'ll|"
    r"(?:are|'re)\s+(?:going\s+to|gonna|supposed\s+to|to)|need\s+to|have\s+to)\s+(?P<task>.+)",
    re.IGNORECASE,
)
_HAVE_ASK = re.compile(
    rf"\b(?i:let(?:'s|\s+us)\s+(?:have|ask|get))\s+{_NAME}\s+(?:to\s+)?(?P<task>.+)"
    rf"|\b{_NAME.replace('?P<name>', '?P<name2>')}\s+(?:is|will\s+be)\s+responsible\s+for\s+(?P<task2>.+)"
)
_EXPLICIT = re.compile(r"\b(?:action(?:\s+item)?|to-?do)\s*[:\-]\s*(?P<task>.+)", re.IGNORECASE)
_CLAUSE_END = re.compile(
    r"\s*(?:[;?!]|\.(?:\s|$)|,\s*(?:but|so|because|since|which|and\s+then\s+we|and\s+we|and\s+you|and\s+i|if|okay|right)\b|"
    r"\s+(?:because|since|so\s+that|so\s+we|so\s+you|so\s+i|but|if|unless|when\s+we|and\s+then\s+we|and\s+we'll|and\s+i'll|and\s+you'll|okay)\b|"
    r"\s+and\s+(?:i|we|you|he|she|they)\s|\s+(?:maybe|perhaps|probably)\s+(?:we|i|you|it|they|he|she)\b)",
    re.IGNORECASE,
)
_DUE_PHRASE = re.compile(
    r"\s*,?\s*\b(?:by|until|till|before|on|for|due)?\s*(?:the\s+)?(?:end\s+of\s+(?:the\s+|this\s+|next\s+)?(?:week|month|day)|"
    r"next\s+(?:week|month|\w+day)|this\s+(?:week|month|\w+day|afternoon|evening)|tomorrow|today|tonight|"
    r"(?:mon|tues|wednes|thurs|fri|satur|sun)day)\b",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class _Candidate:
    item: ActionItem
    index: int  # utterance index (order said)
    also: tuple[str, ...] = ()  # further owners of the same task ("the two designers")


#: Verbs whose object is an "if …" / "whether …" clause: "check with the team if it is possible".
_ASKING = re.compile(r"^(?:check|ask|find\s+out|see|confirm|verify|clarify|enquire|inquire)\b", re.IGNORECASE)


def _clause(task: str) -> str:
    for m in _CLAUSE_END.finditer(task):
        if _ASKING.match(task) and re.match(r"\s*,?\s*if\b", m.group(0), re.IGNORECASE):
            continue
        return task[: m.start()]
    return task


def _third_person(task: str, *, speaker: str | None, addressee: str | None, owner: str | None) -> tuple[str, bool]:
    """``task`` with I/me/my and you/your resolved; True when a vague object ("it", "that") is left."""

    def poss(name: str | None, fallback: str) -> str:
        return f"{name}'s" if name else fallback

    own = speaker is not None and speaker == owner  # "I'll send my notes": the owner's own notes
    subs = [
        (r"\b(?:myself)\b", ""),
        (r"\bme\b", "them" if own else speaker or "the speaker"),
        (r"\bmy\b", "their" if own else poss(speaker, "the speaker's")),
        (r"\bI\b", "they" if own else speaker or "the speaker"),
        (r"\b(?:yourself|yourselves)\b", ""),
        (r"\byour\b", "their" if addressee and addressee == owner else poss(addressee, "their")),
        (r"\byou\b", "them" if addressee is None or addressee == owner else addressee),
        (r"\b(?:us|ourselves)\b", "the team"),
        (r"\bour\b", "the team's"),
    ]
    # a restarted possessive ("my our data") keeps its last word
    out = re.sub(r"\b(?:my|our|your|his|her|their)\s+(?=(?:my|our|your|his|her|their)\b)", "", task, flags=re.I)
    for pattern, repl in subs:
        out = re.sub(pattern, repl, out, flags=re.IGNORECASE if pattern != r"\bI\b" else 0)
    out = " ".join(out.split())
    vague = bool(re.match(r"^\w+(?:\s+\w+)?\s+(?:it|that|this|them|those|these)\b\.?$", out, re.IGNORECASE))
    return out, vague


def _tidy(task: str) -> str:
    task = _CLAUSES.split(_clause(task.strip()), maxsplit=1)[0]
    task = re.sub(r"(?<=\w) - (?=\w)", "-", task)  # transcribed hyphens: "word - specific" -> "word-specific"
    task = re.sub(
        r"^(?:(?:please|also|then|just|actually|definitely|quickly|like|probably|maybe|sort\s+of|kind\s+of|go\s+ahead\s+and|"
        r"you\s+know|try\s+to|try\s+and)\s+)+",
        "",
        task,
        flags=re.I,
    )
    task = re.sub(
        r"\s*\b(?:as\s+well|too|also|then|please|again|and\s+so\s+on|or\s+something|first)\s*$", "", task, flags=re.I
    )
    task = re.sub(r"(?:\s+\[[A-Z]+\d*\])?\s+or$", "", task.strip(" ,.;:-?"))  # "merge them [PERSON17] or?"
    task = re.sub(r"\s+(?:and|but)$", "", task).strip(" ,")
    words = task.split()
    if len(words) > 25:
        task = " ".join(words[:25]) + "…"
    return task


def _addressee(u: Utterance, utterances: list[Utterance]) -> Utterance | None:
    """The next thing another person said within a few sentences: the answer to ``u``."""
    for later in utterances[u.index + 1 : u.index + 6]:
        if later.speaker and later.speaker != u.speaker:
            return later
    return None


def _previous_speaker(u: Utterance, utterances: list[Utterance]) -> str | None:
    for earlier in reversed(utterances[max(0, u.index - 6) : u.index]):
        if earlier.speaker and earlier.speaker != u.speaker:
            return earlier.speaker
    return None


def _turned_to(u: Utterance, utterances: list[Utterance], people: People) -> str | None:
    """The person the speaker of ``u`` turned to by name ("[PERSON17], you can?", "…, Bob?") in
    ``u`` or in their sentences just before it (only backchannels of others in between)."""
    for earlier in reversed(utterances[max(0, u.index - 4) : u.index + 1]):
        if earlier.speaker != u.speaker:
            if earlier.kind == "content":
                return None  # someone else took the floor: the address is over
            continue
        for m in _VOCATIVE.finditer(earlier.text):
            named = people.resolve(m.group("name"))
            if named and named != u.speaker:
                return named
    return None


def _is_joke(u: Utterance, utterances: list[Utterance]) -> bool:
    """Laughter in the exchange: the two segments before, the same one, or the next one."""
    nearby = utterances[max(0, u.index - 4) : u.index + 4]
    return any(x.laughter for x in nearby if u.segment - 2 <= x.segment <= u.segment + 1)


def _in_call(u: Utterance, utterances: list[Utterance]) -> bool:
    """Said about what is being done in the call right now ("just a moment, I'll share …",
    "I'll send you a link here"), or next to talk about the screen or the audio."""
    if _IN_CALL.search(u.text):
        return True
    nearby = utterances[max(0, u.index - 4) : u.index + 3]
    return any(
        x.kind == "meta" and _SCREEN_OR_AUDIO.search(x.text)
        for x in nearby
        if u.segment - 2 <= x.segment <= u.segment + 1
    )


def _commitment(u: Utterance, text: str) -> tuple[re.Match, str] | None:
    """The first "I'll …" / "I'm going to …" of ``text`` that is followed by a task."""
    for m in _COMMIT_LEAD.finditer(text):
        if _HYPOTHETICAL.search(_discourse_free(text[: m.start()])):
            return None  # "maybe I'll …", "if I …, I'll …"
        task = text[m.end() :]
        if not _NOT_TASKS.match(task) and TASK_VERBS.match(_tidy(task)):
            return m, task
    return None


#: "We need to …" / "someone has to …": a need that a commitment right after it takes on.
_NEED = re.compile(r"\b(?:we|someone|somebody)\s+(?:also\s+)?(?:need|needs|have|has)\s+to\b", re.IGNORECASE)


def _need_before(u: Utterance, utterances: list[Utterance], task: str, date: str | None) -> tuple[str, int] | None:
    """The due date and segment of a need said just before ``u`` ("we also need to tell the support
    team by next Friday") when the task is about the same thing (two content words in common)."""
    mine = {w.lower() for w in nlp.words(task) if len(w) > 3}
    for earlier in reversed(utterances[max(0, u.index - 2) : u.index]):
        if earlier.kind != "content" or not _NEED.search(earlier.text):
            continue
        shared = mine & {w.lower() for w in nlp.words(earlier.text) if len(w) > 3}
        if len(shared) >= 2 and (due := nlp.due_date(earlier.text, reference=date)):
            return due, earlier.segment
    return None


def _discourse_free(prefix: str) -> str:
    """``prefix`` without opening discourse words set off by a comma ("Probably, well, now we …")."""
    return re.sub(r"^(?:(?:probably|maybe|perhaps|well|so|now|okay)\s*,\s*)+", "", prefix.strip(), flags=re.I)


def _request(text: str) -> re.Match | None:
    return (
        _REQUEST.search(text)
        or _IF_YOU_COULD.search(text)
        or _PLEASE.match(text)
        or _YOU_SHOULD.match(text)
        or _YOU_CAN.match(text)
    )


def _candidate(u: Utterance, utterances: list[Utterance], people: People, date: str | None) -> _Candidate | None:
    text = u.text
    reply_due: str | None = None
    owner: str | None = None
    addressee: str | None = None
    task: str | None = None
    confidence = 0.0
    evidence = [u.segment]
    kind = "assignment"
    others: list[str] = []

    if m := _EXPLICIT.search(text):
        task, confidence, kind = m.group("task"), 0.9, "explicit"
        if a := _ASSIGN.match(task.strip()):
            if named := people.resolve(a.group("name")):
                owner, task = named, a.group("task")
    elif m := _HAVE_ASK.search(text):
        owner = people.resolve(m.group("name") or m.group("name2"))
        task, confidence = (m.group("task") or m.group("task2")), 0.75
    elif m := _request(text):
        kind = "request"
        lead = re.sub(
            r"\b(?:would|could|can|will)\s+you\b|\bif\s+you\s+could\b", "", text[: m.start("task")], flags=re.I
        )
        if _HYPOTHETICAL.search(lead):
            return None
        if m.re is _IF_YOU_COULD and not (u.is_question or _WOULD_BE_GOOD.search(text)):
            return None  # "if you could make it smaller, then …": a condition, not a request
        task = m.group("task")
        turned_to = people.resolve(m.groupdict().get("name")) or _turned_to(u, utterances, people)
        reply = _addressee(u, utterances)
        if turned_to:
            owner, confidence = turned_to, 0.7
        elif m.re is _YOU_CAN:
            return None  # "you can search for the date": a way of doing things, said to nobody in particular
        elif reply is not None:
            owner, confidence = reply.speaker, 0.5
        elif answered := _previous_speaker(u, utterances):
            owner, confidence = answered, 0.45  # nobody answers: said to the person just talking
        elif len(people.speakers) == 2:
            owner, confidence = next((p for p in people.speakers if p != u.speaker), None), 0.5
        agreed = reply is not None and reply.speaker == owner and bool(_AFFIRMATIVE.match(reply.text))
        if reply is not None and reply.speaker == owner:
            if _REFUSAL.match(reply.text):
                return None
            if agreed:
                confidence += 0.2
                evidence.append(reply.segment)
                reply_due = nlp.due_date(reply.text, reference=date)
        if not turned_to and not agreed and _ASKS_OPINION.search(text[: m.start("task")]):
            return None  # "would you change the cover?" asks what someone would do, unless they say yes
        addressee = owner
        if owner is None:
            return None
    elif u.is_question:
        return None
    else:
        for a in _ASSIGN.finditer(text):
            named = people.resolve(a.group("name"))
            if named and named != u.speaker:
                prefix = text[: a.start()]
                settled = bool(_SETTLED.search(prefix))  # "we decided that [PERSON6] will …"
                if not settled and _HYPOTHETICAL.search(_discourse_free(prefix)):
                    continue
                owner, task = named, a.group("task")
                confidence = 0.85 if settled else 0.75 if named in people.speakers else 0.7
                if " could " in a.group(0) or " can " in a.group(0):
                    confidence -= 0.15
                break
        if task is None and (g := _GROUP_ASSIGN.search(text)) and not _HYPOTHETICAL.search(text[: g.start()]):
            members = [p for p in people.group(g.group("group")) if p != u.speaker]
            if len(members) >= 2:
                (owner, *others), task, confidence = members, g.group("task"), 0.7
        if task is None and u.speaker and (found := _commitment(u, text)):
            m, task = found
            kind = "commitment"
            owner = u.speaker
            confidence = 0.5 if _COMMIT_WEAK.match(text[m.start() :]) else 0.75
            after = _addressee(u, utterances)
            addressee = _previous_speaker(u, utterances) or (after.speaker if after else None)
    if task is None or owner is None and confidence < 0.9:
        return None
    if u.is_question and kind != "request" and kind != "explicit":
        return None
    if _NEGATED.search(text[: text.find(task[:20]) if task[:20] in text else len(text)]):
        return None
    raw_task, task = task, _tidy(task)
    if not TASK_VERBS.match(task) or _NOT_TASKS.match(task) or _PRIVATE.search(task) or _is_joke(u, utterances):
        return None
    due = nlp.due_date(f"{text[: max(0, text.find(raw_task[:20]))]} {task}", reference=date)
    if kind != "explicit" and not due and _in_call(u, utterances):
        return None  # done in the call, as it is said: nothing to follow up
    if due:
        task = _DUE_PHRASE.sub("", task).strip(" ,")
    due = due or reply_due
    if not due and (need := _need_before(u, utterances, task, date)):
        due, said = need  # "we need to tell the support team by next Friday. I'll send them the announcement"
        evidence.append(said)
    task, vague = _third_person(task, speaker=u.speaker, addressee=addressee, owner=owner)
    words = [w.lower() for w in nlp.words(task)]
    if vague or len(words) < 3 or all(w in BACKCHANNEL_WORDS for w in words[1:]) or is_meta(task):
        return None  # "Present this", "Send him", "Share the screen": nothing a person could follow up
    if words[-1] in _CUT_OFF:
        return None  # "Check with their": the sentence broke off
    if re.match(r"^\w+\s+(?:it|that|this|them)\b", task, re.IGNORECASE):
        confidence -= 0.2  # "Make it on the whiteboard": what "it" is, the reviewer must check
    if due:
        confidence += 0.05
    task = task[:1].upper() + task[1:]
    item = ActionItem(
        owner=owner, task=task, due=due, evidence=sorted(set(evidence)), confidence=round(min(confidence, 0.95), 2)
    )
    return _Candidate(item, u.index, tuple(others))


#: A task ending on one of these was cut off mid-phrase.
_CUT_OFF = frozenset(
    "the a an of and or but their his her my your our its".split()  # not "from": "to start training from"
)
_CLAUSES = re.compile(r"\s*(?:,\s*|\s+)(?:and|while|whereas)(?:\s+then)?\s+(?=(?:the\s+)?[A-Z\[])|;\s*")


def _clauses(u: Utterance) -> list[Utterance]:
    """``u``, and when it joins clauses with their own subjects ("the designer will … and
    Marketing is going to …"), each later clause on its own, so every assignment is found."""
    parts = [p for p in _CLAUSES.split(u.text) if p and p.strip()]
    if len(parts) < 2:
        return [u]
    return [u, *(dataclasses.replace(u, text=p.strip()) for p in parts[1:])]


def extract_actions(utterances: list[Utterance], people: People, date: str | None) -> list[ActionItem]:
    """The meeting's action items in the order they were said (at most :data:`MAX_ACTION_ITEMS`)."""
    found = [
        c
        for u in utterances
        if u.kind == "content"
        for clause in _clauses(u)
        for c in [_candidate(clause, utterances, people, date)]
        if c is not None
    ]
    items = dedupe_actions(
        item for c in found for item in [c.item, *(c.item.model_copy(update={"owner": o}) for o in c.also)]
    )
    if len(items) > MAX_ACTION_ITEMS:
        keep = sorted(range(len(items)), key=lambda i: (-(items[i].confidence or 0), i))[:MAX_ACTION_ITEMS]
        items = [items[i] for i in sorted(keep)]
    return items


def dedupe_actions(items: Iterable[ActionItem]) -> list[ActionItem]:
    """One item per owner and task: repeats merge their evidence, the best confidence stays."""
    out: list[ActionItem] = []
    for a in items:
        twin = next((o for o in out if o.owner == a.owner and word_overlap(o.task, a.task) >= 0.7), None)
        if twin is None:
            out.append(a.model_copy(deep=True))
        else:
            twin.evidence = sorted(set(twin.evidence) | set(a.evidence))
            twin.due = twin.due or a.due
            if a.confidence is not None:
                twin.confidence = max(twin.confidence or 0, a.confidence)
    return out
