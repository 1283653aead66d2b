"""The offline meeting engine on crafted transcripts: each test states one behaviour of the minutes.

Transcripts are ``Speaker: text`` lines (segment ids are line numbers from 0).
"""

from __future__ import annotations

import pytest

from marginalia.engines import lexrank
from marginalia.engines.meeting_cleaning import clean_text, clean_transcript, is_complete
from marginalia.engines.meeting_segments import describe, segment
from marginalia.engines.offline import OfflineEngine
from marginalia.schemas import Minutes
from marginalia.tools.transcripts import parse_transcript


def minutes(text: str, date: str | None = "2026-03-02") -> Minutes:
    return OfflineEngine().extract_minutes(parse_transcript(text, filename="m.txt"), hint_date=date)


def items(m: Minutes) -> list[tuple[str | None, str]]:
    return [(a.owner, a.task) for a in m.action_items]


# --- action items ------------------------------------------------------------------------------
def test_an_audio_check_is_never_an_action_item():
    m = minutes(
        "Ana: Can you hear me?\nBo: Yes, I can hear you.\nAna: Can you see my screen now?\n"
        "Bo: Yes. Could you share your screen again?\nAna: Sure, I'll share my screen.\n"
        "Bo: You're on mute, can you unmute?\nAna: Next slide please.\n"
    )
    assert m.action_items == []


def test_a_person_who_never_speaks_owns_what_they_are_assigned():
    m = minutes("Ana: Priya will prepare the slides for the review.\nBo: Good, thanks.\n")
    assert items(m) == [("Priya", "Prepare the slides for the review")]


def test_a_pseudonymised_silent_person_owns_their_task():
    m = minutes("(PERSON1) [PERSON5] will prepare the annotation guidelines.\n(PERSON2) Okay.\n")
    assert items(m) == [("PERSON5", "Prepare the annotation guidelines")]


def test_a_task_given_to_a_role_in_the_plural_goes_to_every_speaker_with_that_role():
    m = minutes(
        "Project Manager: The User Interface Designer will list the buttons.\nIndustrial Designer: Okay.\n"
        "User Interface: Okay.\nProject Manager: And the two designers are going to build the prototype in clay.\n"
    )
    assert items(m) == [
        ("User Interface", "List the buttons"),
        ("Industrial Designer", "Build the prototype in clay"),
        ("User Interface", "Build the prototype in clay"),
    ]


def test_i_will_send_you_is_the_speakers_task_with_the_listener_named():
    m = minutes("Bob: Did you finish the report?\nAna: Almost. I'll send you the draft tomorrow.\n")
    (item,) = m.action_items
    assert (item.owner, item.task, item.due) == ("Ana", "Send Bob the draft", "2026-03-03")
    assert item.evidence == [1]


def test_can_you_goes_to_the_person_addressed_with_my_resolved():
    m = minutes("Ana: Bob, can you review my pull request before Friday?\nBo: Sure.\nBob: Yes, will do.\n")
    (item,) = m.action_items
    assert (item.owner, item.task) == ("Bob", "Review Ana's pull request")
    assert item.due == "2026-03-06"


def test_lets_have_someone_assigns_to_them():
    m = minutes("Ana: Let's have Carol update the budget spreadsheet.\nBob: Agreed.\n")
    assert items(m) == [("Carol", "Update the budget spreadsheet")]


@pytest.mark.parametrize(
    "line",
    [
        "Ana: If I had more time I'd rewrite the whole parser.",  # hypothetical
        "Ana: I would send it to them, but it is not ready.",  # hypothetical
        "Ana: I won't send the invoice this week.",  # negated
        "Ana: Hello everyone, good morning!",  # greeting
        "Ana: Will you send the report?",  # a question to nobody (one speaker)
        "Ana: I'll plan my holidays now. <laugh/>",  # a joke
        "Ana: I'll be quick today.",  # talk, not a task
        "Ana: Maybe I'll write a novel one day.",  # hypothetical
    ],
)
def test_what_is_not_an_action_item(line):
    assert minutes(line + "\n").action_items == []


def test_a_commitment_right_after_a_dated_need_takes_its_due_date():
    m = minutes(
        "Ana: We also need to tell the support team about the maintenance by next Friday.\n"
        "Ana: I'll send the announcement to the support team myself.\n"
    )
    (item,) = m.action_items
    assert (item.owner, item.task, item.due, item.evidence) == (
        "Ana",
        "Send the announcement to the support team",
        "2026-03-13",
        [0, 1],
    )


def test_a_refused_request_is_dropped_and_an_accepted_one_takes_the_answers_due_date():
    m = minutes("Ana: Could you email the vendor about prices?\nCy: I would rather not.\n")
    assert m.action_items == []
    m = minutes("Ana: Can you upgrade the ingress chart in staging?\nCy: Sure, I can do that by Monday.\n")
    (item,) = m.action_items
    assert (item.owner, item.due, item.evidence) == ("Cy", "2026-03-09", [0, 1])


def test_every_item_has_a_confidence_and_an_unsure_one_is_below_the_review_threshold():
    from marginalia.nodes.review import LOW_CONFIDENCE, review_flags

    m = minutes(
        "Ana: I'll write the upgrade runbook by Friday.\n"
        "Ana: Marketing should probably check the prices.\nBo: Hm.\n"  # hedged, silent owner
        "Ana: Could you test the installer on Windows?\nCy: Hmm, maybe later.\n"  # answered without a yes
    )
    assert all(a.confidence is not None for a in m.action_items)
    sure = next(a for a in m.action_items if "runbook" in a.task)
    assert sure.confidence >= LOW_CONFIDENCE
    unsure = [a for a in m.action_items if a.confidence < LOW_CONFIDENCE]
    assert unsure  # the answered-without-yes request
    flagged = {f["path"] for f in review_flags(m.model_dump(mode="json"))}
    assert {f"/action_items/{m.action_items.index(a)}" for a in unsure} <= flagged


def test_a_person_named_then_told_you_can_owns_the_task_and_you_can_said_to_nobody_is_not_a_task():
    m = minutes("Ana: Priya, you can?\nPriya: Yeah.\nAna: You can write the probing section.\n")
    assert items(m) == [("Priya", "Write the probing section")]
    m = minutes("Ana: The files are from different days.\nAna: You can search for the date and the title.\nBo: Yes.\n")
    assert m.action_items == []


def test_an_assignment_the_meeting_settled_is_kept_though_the_sentence_opens_with_probably():
    m = minutes("Ana: Probably, well, now we decided that Bob will work with the data.\nBob: Okay.\n")
    assert items(m) == [("Bob", "Work with the data")]
    assert m.action_items[0].confidence >= 0.8


def test_if_you_could_asks_the_person_just_answered():
    m = minutes(
        "Bob: You mean the parliament corpus?\nAna: Yes. In any case, if you could start downloading the corpus?\n"
    )
    assert items(m) == [("Bob", "Start downloading the corpus")]


def test_the_next_experiment_i_am_going_to_try_is_the_speakers_task():
    m = minutes("Ana: I'll, the next experiment I'm gonna try is to just create word - specific models.\n")
    assert items(m) == [("Ana", "Create word-specific models")]


def test_the_task_stops_where_the_speaker_starts_musing_and_restarted_possessives_are_merged():
    m = minutes("Ana: I will check the list of figures maybe we should add some.\nBo: Yes.\n")
    assert items(m) == [("Ana", "Check the list of figures")]
    m = minutes("Ana: I will continue to annotate my our data with my annotators.\n")
    assert items(m) == [("Ana", "Continue to annotate the team's data with their annotators")]


def test_check_whether_keeps_its_if_clause():
    m = minutes("Ana: I'll check in my department if there's someone who knows the standard.\n")
    assert items(m) == [("Ana", "Check in their department if there's someone who knows the standard")]


@pytest.mark.parametrize(
    "text",
    [
        # the generic "you" of an explanation
        "Ana: The usual reason is that you have to prepare the manuscript for a blind review.\nBo: Yes.\n",
        # an opinion in an argument, not an assignment
        "Ana: I still think that you should present them like your own papers.\nBo: Hm, yeah.\n",
        # done in the call as it is said
        "Ana: I will send you a link here in the chat.\nBo: It works, great.\n",
        "Ana: Just a moment, I'll search for the minutes of that session and show you.\nBo: Okay.\n",
        "Ana: Can you all see my screen?\nBo: Yes.\nAna: I will select the project folder in the tree.\n",
        # attendance is not a task
        "Ana: Priya will join us tomorrow.\nBo: Good.\n",
        # a request to explain now, answered at once
        "Ana: Bob, can you share how you downloaded the data from the website?\nBob: Sure, there is a link.\n",
        # asks what someone would do
        "Ana: When you have a remote control, would you change the cover?\nBo: Maybe.\n",
        # running the meeting, and work done on the whiteboard as it is said
        "Ana: So I'm gonna turn over to Bob to go ahead and make a presentation on the budget.\n",
        "Ana: I'll finish up with a bit of discussion on the plan for the next phase.\n",
        "Ana: From the discussion we had, Bob, can you draw the components on the whiteboard?\nBob: Yes, sure.\n",
        # banter: the laughter two turns before
        "Ana: Are you in Prague? <laugh/>\nBo: No, not yet.\nAna: You should put some wood in the stove.\n",
    ],
)
def test_talk_that_is_not_an_action_item(text):
    assert minutes(text).action_items == []


# --- decisions -----------------------------------------------------------------------------------
def test_a_proposal_accepted_by_others_is_a_decision_with_its_evidence():
    m = minutes(
        "Ana: Let's use a rubber case for the remote control.\nBob: Sounds good.\nCy: Yes, agreed.\n"
        "Ana: Let's move on to the next point.\nBob: Okay.\nCy: Okay.\n"  # running the meeting: no decision
    )
    (decision,) = m.decisions
    assert decision.text == "Agreed to use a rubber case for the remote control."
    assert decision.evidence == [0, 1, 2] and decision.confidence >= 0.6


def test_a_stated_decision_is_kept_from_its_subject_to_where_the_sentence_turns_and_a_hedge_lowers_it():
    m = minutes(
        "Ana: Problem, we decided to include voice recognition, so to have the standard buttons.\n"
        "Bob: Probably, well, now we decided that Cy will own the data set, you know.\n"
    )
    assert [(d.text, d.confidence) for d in m.decisions] == [
        ("We decided to include voice recognition.", 0.8),
        ("We decided that Cy will own the data set.", 0.65),
    ]


def test_a_decision_pointing_back_at_offers_says_what_was_offered():
    m = minutes(
        "Ana: Last item is the on-call rota for the upgrade weeks.\n"
        "Bo: I can take the first week with Cy, since we both know the setup.\n"
        "Cy: That works for me, and Dee could pair with Ana for the second week.\n"
        "Dee: Fine with me. Let's go with that rota for both weeks.\n"
    )
    (decision,) = m.decisions
    assert decision.text == (
        "Let's go with that rota for both weeks (Bo: I can take the first week with Cy; "
        "Cy: Dee could pair with Ana for the second week)."
    )
    assert decision.evidence == [1, 2, 3]


def test_a_proposal_someone_objects_to_is_not_a_decision():
    m = minutes("Ana: We should use a rubber case for the remote.\nBob: No, rubber feels cheap.\nCy: Yeah.\n")
    assert m.decisions == []


# --- cleaning --------------------------------------------------------------------------------------
def test_cleaning_removes_what_only_makes_sense_in_speech():
    said = "Um , so {vocalsound} th that's basically {disfmarker} we we need uh you know , a a new L_C_D_ screen ."
    assert clean_text(said) == "we need a new LCD screen."  # the start abandoned at {disfmarker} goes too
    t = parse_transcript(
        "Ana: Okay, so, um, the budget is fine.\nBo: Yeah, right.\nAna: And the the invoice is late, right?\n"
        "Bo: Can you hear me?\nAna: Yes.\n",
        filename="m.txt",
    )
    u = clean_transcript(t)
    assert [(x.text, x.kind) for x in u] == [
        ("The budget is fine.", "content"),
        ("Yeah, right.", "backchannel"),
        ("The invoice is late?", "content"),
        ("Can you hear me?", "meta"),
        ("Yes.", "backchannel"),
    ]
    assert u[0].turn == u[2].turn  # Ana's turns merged across Bo's backchannel


def test_complete_sentences():
    assert is_complete("The case will be made of rubber and the buttons of plastic.")
    assert not is_complete("If you think most people use the remote with their right hand.")
    assert not is_complete("So we could maybe use the")
    assert not is_complete("th that's the idea we had.")


# --- structure -------------------------------------------------------------------------------------
def _topic_talk(words: list[str], n: int, speaker: str) -> list[str]:
    lines = []
    for i in range(n):
        a, b, c = words[i % len(words)], words[(i + 2) % len(words)], words[(i + 5) % len(words)]
        lines.append(f"{speaker}: The {a} {b} needs more work because the {c} and the {a} {b} matter for us.")
    return lines


def test_a_short_meeting_is_cut_into_its_topics_at_its_own_scale():
    """Three things settled in 384 words (a stand-up) are three topics; one thing talked over in
    turns for as long stays one (each cut needs cohesion to fall, not only to dip)."""
    budget = ["budget", "invoice", "costs", "spending", "forecast", "salary", "quarter"]
    design = ["website", "colours", "layout", "fonts", "banner", "homepage", "navigation"]
    hiring = ["hiring", "interviews", "candidates", "recruiter", "offers", "onboarding", "referrals"]
    three = _topic_talk(budget, 8, "Ana") + _topic_talk(design, 8, "Bob") + _topic_talk(hiring, 8, "Cy")
    in_turns = [
        line
        for pair in zip(_topic_talk(budget, 12, "Ana"), _topic_talk(budget, 12, "Bob"), strict=True)
        for line in pair
    ]
    for lines, cuts in ((three, [0, 8, 16]), (in_turns, [0])):
        parts = segment(clean_transcript(parse_transcript("\n".join(lines) + "\n", filename="m.txt")))
        assert [p.start for p in parts] == cuts and sum(p.words for p in parts) < 400


def test_topics_are_segmented_by_lexical_cohesion_and_titled():
    budget = ["budget", "invoice", "costs", "spending", "forecast", "salary", "quarter"]
    design = ["website", "colours", "layout", "fonts", "banner", "homepage", "navigation"]
    lines = _topic_talk(budget, 80, "Ana") + _topic_talk(design, 80, "Bob")
    t = parse_transcript("\n".join(lines) + "\n", filename="m.txt")
    u = clean_transcript(t)
    parts = segment(u)
    assert len(parts) == 2 and abs(parts[1].start - 80) <= 3
    describe(u, parts)
    assert any(w in parts[0].title.lower() for w in budget) and any(w in parts[1].title.lower() for w in design)
    m = OfflineEngine().extract_minutes(t)
    assert [s.title for s in m.sections] == [parts[0].title, parts[1].title]
    assert all(1 <= len(s.evidence) <= 3 for s in m.sections)
    assert m.title in (parts[0].title, parts[1].title) and not m.title.startswith("Meeting:")


def test_lexrank_ranks_the_central_sentence_first():
    sentences = [
        "The remote control needs a rubber case.",
        "A rubber case makes the remote control soft.",
        "The remote control case could be rubber or plastic.",
        "Lunch is at noon.",
    ]
    order = lexrank.rank(sentences)
    assert order[-1] == 3 and order[0] in (0, 2)
    assert lexrank.terms("The meetings were running") == ["meet", "run"]


def test_a_chunk_of_a_longer_meeting_carries_what_the_merge_keeps_and_the_merge_equals_the_whole():
    """A chunk (``chunks > 1``) skips the topics and summary the merge works out again from the
    whole meeting, and keeps its date, decisions and action items."""
    from pathlib import Path

    import marginalia

    vtt = (Path(marginalia.__file__).parent / "samples" / "standup.vtt").read_bytes()
    transcript = parse_transcript(vtt, filename="standup.vtt")
    engine = OfflineEngine()
    half = len(transcript.segments) // 2
    pieces = [(0, half), (half, len(transcript.segments))]
    parts = []
    for a, b in pieces:
        piece = transcript.model_copy(update={"segments": transcript.segments[a:b]})
        alone = engine.extract_minutes(piece, first_segment=a)
        part = engine.extract_minutes(piece, first_segment=a, chunks=len(pieces))
        assert alone.summary and alone.topics and not part.summary and not part.topics and not part.sections
        assert (part.date, part.decisions, part.action_items) == (alone.date, alone.decisions, alone.action_items)
        parts.append(part)
    merged = engine.merge_minutes(parts, transcript)
    whole = engine.extract_minutes(transcript)
    assert merged.summary == whole.summary and merged.sections == whole.sections and merged.title == whole.title
    assert {a.task for a in merged.action_items} == {a.task for a in whole.action_items}
