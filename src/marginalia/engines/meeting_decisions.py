"""Decisions of a meeting, with the segments that show them.

Two kinds of evidence, both read from cleaned utterances:

* a decision said in one sentence: "we decided to …", "we agreed on …", "let's go with …",
  "so that's settled" (confidence 0.8);
* a proposal accepted across turns: one person proposes ("let's …", "we should …", "how about
  …", "I suggest …") and, within the next few sentences, someone else accepts ("yeah, let's do
  that", "sounds good", "agreed", "okay") before anyone objects ("no", "but …", "I don't think").
  One acceptance gives 0.65, two or more 0.75. The decision is the proposal without its opener
  ("let's use a rubber case" -> "Agreed to use a rubber case"), with the ids of the proposal's
  and the acceptances' segments.

Proposals about running the meeting ("let's start", "let's move on", "let's see") are not
decisions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from ..schemas import Decision
from . import text as nlp
from .meeting_cleaning import Utterance, is_complete, word_overlap

__all__ = ["MAX_DECISIONS", "dedupe_decisions", "extract_decisions"]

MAX_DECISIONS = 10
LOOKAHEAD = 5  # utterances after a proposal in which an acceptance counts

_STATED = re.compile(
    r"\b(?:we(?:'ve| have)?\s+(?:all\s+)?(?:decided|agreed|settled|chose|chosen|concluded)"
    r"|(?:it(?:'s| is| was)\s+)?decided\s+(?:to|that|on)"
    r"|(?:the\s+)?(?:final\s+)?decision\s+(?:is|was|will be)"
    r"|(?:we|everyone|everybody)\s+agree[sd]?\b"
    r"|agreed\s+(?:to|on|that|upon)"
    r"|let(?:'s| us)\s+(?:go|stick)\s+with"
    r"|we(?:'ll| will| are going to|'re going to|'re gonna| are gonna)\s+(?:go\s+(?:for|with)|stick\s+with|adopt|switch\s+to)"
    r"|we(?:'re| are)\s+(?:going|gonna)\s+with"
    r"|that's\s+(?:decided|settled|agreed)"
    r"|consensus\s+(?:is|was)"
    r")\b",
    re.IGNORECASE,
)
_PROPOSAL = re.compile(
    r"^(?:(?:so|okay|yeah|well|and|but)\s*,?\s*)*(?P<lead>let(?:'s| us)|I\s+think\s+we\s+should|we\s+should|we\s+could|"
    r"why\s+don't\s+we|how\s+about|what\s+about|I\s+(?:would\s+)?(?:suggest|propose)(?:\s+that)?(?:\s+we)?|"
    r"I'd\s+(?:suggest|propose)(?:\s+that)?(?:\s+we)?|shall\s+we|maybe\s+we\s+should|I\s+think\s+we\s+(?:need|have)\s+to)\s+(?P<rest>.+)",
    re.IGNORECASE,
)
_MEETING_TALK = re.compile(
    r"^(?:start|begin|move\s+on|see|go\s+(?:on|ahead|back|to|through|round|over)|wait|continue|stop|finish|have\s+a\s+look|"
    r"look|talk|discuss|say|call\s+it|get\s+started|end|break|skip|do\s+(?:it|that|this)|hear|come\s+back|leave\s+it|"
    r"think|check\s+the\s+time|wrap\s+up|take\s+a\s+break|get\s+on|just|not|keep\s+going|focus|summari[sz]e|recap|sit|open|close)\b",
    re.IGNORECASE,
)
#: An explicit agreement: one is enough.
_ACCEPT = re.compile(
    r"^(?:(?:yeah|yes|okay|ok|right|so)\s*,?\s*)*(?:agreed|i\s+agree|sounds\s+(?:good|great|fine)|good\s+idea|"
    r"that's\s+(?:fine|good|great|a\s+good\s+idea)|fine\s+with\s+me|perfect|definitely|absolutely|exactly|that\s+works|"
    r"let's\s+do\s+(?:it|that)|go\s+for\s+it|(?:yeah|yes),?\s+(?:let's|we\s+should|that|i\s+think\s+so))\b",
    re.IGNORECASE,
)
#: A bare "yeah" / "okay": two people must say it.
_NOD = re.compile(r"^(?:yeah|yes|yep|okay|ok|sure|right|alright|fine|cool|great)\b", re.IGNORECASE)
_CONDITIONAL = re.compile(r"\b(?:if|whether|unless|which|what|when|how|would|could|might|maybe)\b", re.I)
#: Proposals that are talk, hopes or jokes rather than something the group settles.
_PROPOSAL_NOISE = re.compile(
    r"\b(?:hope|try\s+to|let's|carry\s+on|later|see\s+what|think\s+about|talk\s+about|something|anything|stuff)\b", re.I
)
_OBJECTION = re.compile(
    r"^(?:no\b|nope\b|not\b)|\b(?:but|however|don't\s+think|not\s+sure|disagree|rather\s+not)\b", re.I
)


#: A lead-in that makes a stated decision less sure ("I think we agree …", "probably we decided …").
_HEDGE = re.compile(r"\b(?:i\s+think|i\s+guess|probably|maybe|perhaps|i'm\s+not\s+sure)\b", re.IGNORECASE)
#: Where a stated decision's sentence turns to something else.
_STATED_END = re.compile(
    r"\s*(?:[?;]|,\s*(?:because|but|so|and\s+then|okay|right|i\s+know|well|you\s+know|yeah)\b|\s+because\s+)",
    re.IGNORECASE,
)


#: A decision that points back at what was just offered: "let's go with that rota".
_REFERS_BACK = re.compile(
    r"\b(?:with|on|for|to)\s+(?:that|this|these|those)(?:\s+(?!will\b|is\b|we\b|they\b|it\b)\w+)?\b", re.IGNORECASE
)
#: An offer or a proposal: what "that" can point back to.
_OFFER = re.compile(
    r"\b(?:I|we)\s+(?:can|could|will|'ll)\b|\b(?:I|we)'ll\b|\b[A-Z]\w+\s+(?:could|can|will)\s+\w+|\blet's\b|\bhow\s+about\b|"
    r"\bwe\s+should\b",
)
_ACCEPTING_LEAD = re.compile(
    r"^(?:(?:that\s+works(?:\s+for\s+me)?|sounds\s+good|fine(?:\s+with\s+me)?|okay|ok|yes|yeah|sure|good)\s*,?\s*)+(?:and\s+)?",
    re.IGNORECASE,
)


def _offers_before(u: Utterance, utterances: list[Utterance]) -> list[Utterance]:
    """The offers or proposals others made just before ``u`` (at most three, in the order said)."""
    offers: list[Utterance] = []
    for earlier in reversed(utterances[max(0, u.index - 6) : u.index]):
        if earlier.kind != "content" or earlier.speaker == u.speaker and not offers:
            continue
        if earlier.is_question or not _OFFER.search(earlier.text) or len(offers) == 3:
            break
        offers.insert(0, earlier)
    return offers


def _offer_text(sentence: str) -> str:
    text = _ACCEPTING_LEAD.sub("", sentence.strip())
    text = re.split(r",\s*(?:since|because|as)\b|\s+because\s+", text, maxsplit=1)[0].strip(" ,.")
    return text[:1].upper() + text[1:]


def _stated_text(sentence: str, cue: re.Match) -> str:
    """The decision as said from its subject on: "Problem, we decided to X, so Y" -> "We decided to X."."""
    text = re.sub(r"\b(?:you\s+know|i\s+mean)\b,?\s*", "", sentence[cue.start() :], flags=re.IGNORECASE)
    text = _STATED_END.split(text, maxsplit=1)[0].strip(" ,.")
    return text[:1].upper() + text[1:] + "."


def _decision_text(rest: str) -> str:
    rest = re.split(r"[?;]|,\s*(?:because|but|so|and\s+then|okay|right)\b|\s+because\s+", rest.strip(), maxsplit=1)[0]
    rest = rest.strip(" ,.")
    rest = re.sub(r"^(?:just|maybe|also|probably|definitely)\s+", "", rest, flags=re.I)
    if re.match(r"^(?:a|an|the|some|this|that|these|those)\b", rest, re.I):
        return f"Agreed on {rest}."
    return f"Agreed to {rest}."


def extract_decisions(utterances: list[Utterance]) -> list[Decision]:
    """Decisions in the order they were made (at most :data:`MAX_DECISIONS`)."""
    found: list[Decision] = []
    for u in utterances:
        if u.kind != "content" or u.is_question and not _PROPOSAL.match(u.text):
            continue
        stated = _STATED.search(u.text)
        if (
            stated
            and not u.is_question
            and nlp.word_count(u.text[: stated.start()]) <= 8
            and not _CONDITIONAL.search(u.text[: stated.start()])
            and is_complete(u.text)
        ):
            hedged = bool(_HEDGE.search(u.text[: stated.start()]))
            text, evidence = _stated_text(u.text, stated), [u.segment]
            if _REFERS_BACK.search(text) and (offers := _offers_before(u, utterances)):
                said = "; ".join(
                    f"{x.speaker}: {_offer_text(x.text)}" if x.speaker else _offer_text(x.text) for x in offers
                )
                text, evidence = f"{text[:-1]} ({said}).", sorted({*evidence, *(x.segment for x in offers)})
            found.append(Decision(text=text, evidence=evidence, confidence=0.65 if hedged else 0.8))
            continue
        m = _PROPOSAL.match(u.text)
        if not m or _MEETING_TALK.match(m.group("rest")) or nlp.word_count(m.group("rest")) < 2:
            continue
        rest = _decision_text(m.group("rest"))
        if _PROPOSAL_NOISE.search(rest) or not is_complete(rest):
            continue
        accepted: list[int] = []
        nodders: set[str] = set()
        strong = 0
        for later in utterances[u.index + 1 : u.index + 1 + LOOKAHEAD]:
            if later.speaker == u.speaker and (accepted or later.kind == "content"):
                break  # the proposer goes on to something else: the answers so far are all
            if not later.speaker or later.speaker == u.speaker:
                continue
            if _OBJECTION.search(later.text[:60]):
                accepted = []
                break
            if _ACCEPT.match(later.text):
                accepted.append(later.segment)
                strong += 1
            elif _NOD.match(later.text):
                accepted.append(later.segment)
                nodders.add(later.speaker)
        if strong or len(nodders) >= 2:
            confidence = 0.75 if strong and len(accepted) > 1 else 0.65
            evidence = sorted({u.segment, *accepted})
            found.append(Decision(text=rest, evidence=evidence, confidence=confidence))
    return dedupe_decisions(found)[:MAX_DECISIONS]


def dedupe_decisions(decisions: Iterable[Decision]) -> list[Decision]:
    out: list[Decision] = []
    for d in decisions:
        twin = next((o for o in out if word_overlap(o.text, d.text) >= 0.8), None)
        if twin is None:
            out.append(d.model_copy(deep=True))
        else:
            twin.evidence = sorted(set(twin.evidence) | set(d.evidence))
    return out
