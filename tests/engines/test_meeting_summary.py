"""The offline meeting summary on crafted sentences and transcripts: compression, restarts, selection.

Each test states one behaviour a reader of the minutes relies on; transcripts are
``Speaker: text`` lines.
"""

from __future__ import annotations

import pytest

from marginalia.engines import text as nlp
from marginalia.engines.meeting_cleaning import clean_transcript, has_restart
from marginalia.engines.meeting_compression import compress, third_person
from marginalia.engines.meeting_segments import describe, segment, summary_sentences
from marginalia.engines.offline import OfflineEngine
from marginalia.tools.transcripts import parse_transcript


# --- compression -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("said", "written"),
    [
        # the speaker's hedge opening the sentence, an intensifier, a hedge beside a modal, a tag
        (
            "I think that we can probably use a really cheap rubber case, you know.",
            "The team can use a cheap rubber case.",
        ),
        ("Basically the chip sends the signal to the LED, I guess.", "The chip sends the signal to the LED."),
        # discourse words and a comment clause left inside the sentence
        (
            "The case, I think, should be made of yeah plastic and rubber.",
            "The case should be made of plastic and rubber.",
        ),
        # a word or a phrase said twice in a row
        (
            "The sample speaker the sample speaker gives feedback on every button.",
            "The sample speaker gives feedback on every button.",
        ),
        ("It's it's a wheel that you spin with one finger.", "It's a wheel that you spin with one finger."),
        # a phrase abandoned after one word and said again
        ("I like that I like the idea of the logo on the screen.", "I like the idea of the logo on the screen."),
        (
            "With all those features the cost will be a lot of a lot higher.",
            "With all those features the cost will be a lot higher.",
        ),
        # a comment clause closed by a comma, with none before it
        (
            "One thing I did not say I think, is that users want a good looking remote.",
            "One thing I did not say is that users want a good looking remote.",
        ),
        # "just" after a modal goes, "just" meaning "only" stays
        (
            "We should just make a remote, just a remote control.",
            "The team should make a remote, just a remote control.",
        ),
        # "probably" with no modal verb to carry the doubt stays
        ("Probably the double curved case is the way to go.", "Probably the double curved case is the way to go."),
        # punctuation doubled by the transcript is written once
        ("The idea of a paging function and face plates..", "The idea of a paging function and face plates."),
    ],
)
def test_compress_writes_what_a_note_taker_would(said, written):
    assert compress(said) == written


def test_compress_never_leaves_a_stub():
    assert compress("I think so.") == "I think so."  # "so" alone is not a sentence
    assert compress("Yeah, I mean, really, okay.") == "Yeah, I mean, really, okay."


@pytest.mark.parametrize(
    ("said", "written"),
    [
        ("We need a cheaper battery.", "The team needs a cheaper battery."),
        ("We've got one of those boxes.", "The team has got one of those boxes."),
        # the first reference names the team, later ones are "they" / "them", "our" is "the"
        (
            "So we have the energy source and then we will have some buttons on our case.",
            "So the team has the energy source and then they will have some buttons on the case.",
        ),
        ("This can help us decide which features we want.", "This can help the team decide which features they want."),
        # a verb the agreement table does not know, or a "let's": left as said
        ("We spin it round and round for our customers.", "We spin it round and round for our customers."),
        ("Let's hope we can use it.", "Let's hope we can use it."),
        ("It is well done as we know.", "It is well done as the team knows."),  # "well" is not "we"
        (
            "We also need to tell the support team.",
            "We also need to tell the support team.",
        ),  # no "also need" agreement
    ],
)
def test_we_becomes_the_team_only_when_it_reads(said, written):
    assert third_person(said) == written


def test_a_phrase_restarted_inside_a_sentence_is_noticed():
    assert has_restart("This voice recognition thing is a we've got a market for it.")
    assert has_restart("With a and if we discussed the flipping thing, it works.")
    assert has_restart("Here we have a my technical functions design presentation.")
    assert not has_restart("This is a good idea for the team.")
    assert not has_restart("Press the A button twice to pair it.")


# --- selection ---------------------------------------------------------------------------------
def _utterances(text: str):
    return clean_transcript(parse_transcript(text, filename="m.txt"))


def test_summary_skips_a_sentence_whose_content_is_already_said():
    u = _utterances(
        "Ana: The rubber case protects the remote when it falls on the floor.\n"
        "Bo: The rubber case protects the remote when it falls on the hard floor.\n"
        "Cy: The battery lasts two years with the kinetic charger inside.\n"
    )
    parts = segment(u)
    describe(u, parts)
    chosen = summary_sentences(u, parts, 100, text=lambda x: x.text, render=lambda x: x.text)
    texts = [u[i].text for i in chosen]
    assert sum("rubber case" in t for t in texts) == 1 and any("battery" in t for t in texts)
    # with the check off (1.0: any overlap allowed) the repeat comes back
    loose = summary_sentences(u, parts, 100, text=lambda x: x.text, render=lambda x: x.text, novelty=1.0)
    assert sum("rubber case" in u[i].text for i in loose) == 2


def _topic_talk(words: list[str], n: int, speaker: str) -> list[str]:
    """Statements whose only content words are the topic's (the frame is stop words)."""
    lines = []
    for i in range(n):
        a, b, c = words[i % len(words)], words[(i + 2) % len(words)], words[(i + 5) % len(words)]
        lines.append(f"{speaker}: The {a} and the {b} are both about the {c} and the {a} {b} again.")
    return lines


def test_commitments_and_sentences_pointing_back_are_not_quoted():
    u = _utterances(
        "Ana: The staging cluster runs the new version without errors since Monday.\n"
        "Bo: I'll write the upgrade runbook and share it in the channel by Friday.\n"
        "Cy: It waits for the message queue before the container starts properly.\n"
        "Ana: Okay, I will send the announcement to the support team tomorrow.\n"
    )
    parts = segment(u)
    describe(u, parts)
    texts = [u[i].text for i in summary_sentences(u, parts, 150, text=lambda x: x.text, render=lambda x: x.text)]
    assert texts == ["The staging cluster runs the new version without errors since Monday."]


def test_a_short_focused_meeting_still_fills_its_summary():
    """Every sentence shares the topic's words: the repeat check defers them, it does not drop them."""
    u = _utterances(
        "Ana: The EKS upgrade goes to version 1.30 first and then to version 1.31 a week later.\n"
        "Bo: The team decided to upgrade production EKS to version 1.30 on June 16.\n"
        "Cy: The EKS upgrade of production needs two people on call during the upgrade weeks.\n"
    )
    parts = segment(u)
    describe(u, parts)
    chosen = summary_sentences(u, parts, 150, text=lambda x: x.text, render=lambda x: x.text)
    assert len(chosen) == 3
    # a repeat stays out
    u2 = _utterances(
        "Ana: The EKS upgrade goes to version 1.30 first.\nBo: The EKS upgrade goes to version 1.30 first.\n"
    )
    parts2 = segment(u2)
    describe(u2, parts2)
    assert len(summary_sentences(u2, parts2, 150, text=lambda x: x.text, render=lambda x: x.text)) == 1


def test_every_topic_gets_a_sentence_even_a_small_one():
    budget = ["budget", "invoice", "costs", "spending", "forecast", "salary", "quarter"]
    design = ["website", "colours", "layout", "fonts", "banner", "homepage", "navigation"]
    lines = _topic_talk(budget, 120, "Ana") + _topic_talk(design, 50, "Bob")
    u = _utterances("\n".join(lines) + "\n")
    parts = segment(u)
    describe(u, parts)
    assert len(parts) == 2
    # repeats allowed (novelty 1.0), so that only the topics' turns can bring the small topic in
    chosen = summary_sentences(u, parts, 60, text=lambda x: x.text, render=lambda x: x.text, novelty=1.0)
    assert any(i < parts[1].start for i in chosen) and any(i >= parts[1].start for i in chosen)


def test_the_minutes_summary_is_compressed_and_third_person():
    t = parse_transcript(
        "Ana: Okay, so, I think that we should really order the new rubber cases for the remote this week.\n"
        "Bo: Yeah.\n"
        "Bo: I basically checked the battery supplier and the charger prices on Monday.\n"
        "Cy: The solar cells are actually too expensive for the cheap model, you know.\n",
        filename="m.txt",
    )
    m = OfflineEngine().extract_minutes(t, hint_date="2026-03-02")
    body = m.summary
    assert "The team should order the new rubber cases for the remote this week." in body
    assert "Bo: I checked the battery supplier and the charger prices on Monday." in body  # "I" names its speaker
    assert "The solar cells are too expensive for the cheap model." in body
    for hedge in ("I think", "really", "basically", "actually", "you know"):
        assert hedge not in body
    assert nlp.word_count(body) <= OfflineEngine().summary_words


def test_the_summary_does_not_say_again_what_the_action_items_say():
    """ "Tom will update the on-call calendar by Wednesday" is an action item of the sample stand-up:
    the summary does not repeat it (nor any sentence an item was read from), here or after a merge."""
    import re
    from pathlib import Path

    import marginalia
    from marginalia.engines.meeting_cleaning import word_overlap
    from marginalia.engines.offline import OfflineEngine
    from marginalia.tools.transcripts import parse_transcript

    vtt = (Path(marginalia.__file__).parent / "samples" / "standup.vtt").read_bytes()
    transcript = parse_transcript(vtt, filename="standup.vtt")
    engine = OfflineEngine()
    half = len(transcript.segments) // 2
    parts = [
        engine.extract_minutes(
            transcript.model_copy(update={"segments": transcript.segments[a:b]}), first_segment=a, chunks=2
        )
        for a, b in ((0, half), (half, len(transcript.segments)))
    ]
    said = {s.id: s.text for s in transcript.segments}
    for minutes in (engine.extract_minutes(transcript), engine.merge_minutes(parts, transcript)):
        sources = [said[i] for item in minutes.action_items for i in item.evidence]
        assert any("on-call calendar" in s for s in sources)
        sentences = re.split(r"(?<=[.!?])\s+", minutes.summary)
        assert len(sentences) >= 4  # the budget is filled with other statements
        for sentence in sentences:
            assert all(word_overlap(sentence, source) < 0.7 for source in sources), sentence
