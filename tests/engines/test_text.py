"""The shared offline NLP: sentences, LexRank, key phrases, dates, disfluencies (no downloads)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marginalia.engines import text as nlp

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "meetings"


# --- sentences -------------------------------------------------------------------------------
def test_split_sentences_keeps_abbreviations_and_numbers():
    got = nlp.split_sentences("Dr. Smith met Mr. Jones at 3.30 p.m. today. The budget is 12.5 euros! Is that fine?")
    assert got == ["Dr. Smith met Mr. Jones at 3.30 p.m. today.", "The budget is 12.5 euros!", "Is that fine?"]


def test_spoken_apostrophes_do_not_glue_sentences_together():
    # pysbd alone treats "'cause ... it's" as one quotation and stops splitting inside it.
    text = "It's cheap 'cause we make it. Okay. We need the chip. That's it. Fine."
    assert nlp.split_sentences(text) == [
        "It's cheap 'cause we make it.",
        "Okay.",
        "We need the chip.",
        "That's it.",
        "Fine.",
    ]


@pytest.mark.timeout(60)  # a regression to quadratic splitting hangs here; speed itself is benchmarks/' business
def test_split_sentences_on_a_real_meeting_loses_no_words():
    doc = json.loads((FIXTURES / "qmsum_ES2006c.json").read_text("utf-8"))
    text = " ".join(nlp.clean_disfluencies(t["text"]) for t in doc["transcript"])
    sentences = nlp.split_sentences(text)
    assert nlp.words(" ".join(sentences)) == nlp.words(text)
    # ~660 turns of speech: far more than a handful of sentences, and none absurdly long.
    assert len(sentences) > 300
    assert max(nlp.word_count(s) for s in sentences) < 200


def test_split_sentences_empty():
    assert nlp.split_sentences("") == [] and nlp.split_sentences("  \n ") == []


# --- LexRank ---------------------------------------------------------------------------------
THEMED = [
    "The cluster upgrade to the new Kubernetes version is planned for June.",
    "My cat likes sleeping on the warm laptop keyboard.",
    "The Kubernetes cluster upgrade needs a new ingress chart first.",
    "Upgrade the staging cluster before the production cluster.",
    "Lunch was pizza again on Thursday.",
    "After the cluster upgrade we test the ingress on staging.",
]


def test_lexrank_prefers_central_sentences_and_keeps_text_order():
    chosen = nlp.lexrank(THEMED, 3)
    assert chosen == sorted(chosen) and len(chosen) == 3
    assert 1 not in chosen and 4 not in chosen  # the off-topic sentences


def test_lexrank_edge_cases():
    assert nlp.lexrank([], 3) == []
    assert nlp.lexrank(["One sentence only."], 3) == [0]
    assert nlp.lexrank(THEMED, 0) == []
    assert nlp.lexrank(THEMED, 99) == list(range(len(THEMED)))
    assert nlp.lexrank(["...", "!!!"], 1) in ([0], [1])  # no words at all: no crash


def test_rank_sentences_is_deterministic_and_a_permutation():
    ranked = nlp.rank_sentences(THEMED)
    assert sorted(ranked) == list(range(len(THEMED)))
    assert ranked == nlp.rank_sentences(THEMED)


@pytest.mark.timeout(120)  # ranked in windows: all sentences at once would not finish
def test_long_inputs_are_ranked_in_windows():
    sentences = [
        f"Sentence {i} talks about topic {i % 7} and the shared cluster upgrade."
        for i in range(nlp.MAX_RANKED * 2 + 17)
    ]
    ranked = nlp.rank_sentences(sentences)
    assert sorted(ranked) == list(range(len(sentences)))


def test_summarize_to_budget_respects_budget_and_filter():
    chosen = nlp.summarize_to_budget(THEMED, 25, eligible=lambda s: "cluster" in s)
    assert sum(nlp.word_count(THEMED[i]) for i in chosen) <= 25
    assert chosen and all("cluster" in THEMED[i] for i in chosen)
    assert nlp.summarize_to_budget(THEMED, 25, eligible=lambda s: False) == []


# --- key phrases -----------------------------------------------------------------------------
def test_keywords_find_the_subject_without_duplicates():
    text = " ".join(THEMED * 3)
    got = nlp.keywords(text, 5)
    assert 0 < len(got) <= 5
    assert any("cluster" in k.lower() for k in got)
    lowered = [k.lower() for k in got]
    assert len(set(lowered)) == len(lowered)
    for a in lowered:  # no phrase inside another
        assert not any(a != b and f" {a} " in f" {b} " for b in lowered)


def test_keywords_extra_stopwords_and_degenerate_input():
    text = "yeah yeah the remote control yeah okay the remote control buttons yeah"
    assert all("yeah" not in k.lower() for k in nlp.keywords(text, 5, extra_stopwords={"yeah", "okay"}))
    assert nlp.keywords("", 5) == [] and nlp.keywords("...", 5) == [] and nlp.keywords("text", 0) == []


# --- dates -----------------------------------------------------------------------------------
REF = dt.date(2026, 6, 9)  # a Tuesday


@pytest.mark.parametrize(
    "phrase, expected",
    [
        ("on June 9, 2026", "2026-06-09"),
        ("on 2026-06-09", "2026-06-09"),
        ("on 9 June 2026", "2026-06-09"),
        ("the 9th of June, 2026", "2026-06-09"),
        ("on 9/6/2026", "2026-06-09"),
        ("Sept 3rd, 2025", "2025-09-03"),
    ],
)
def test_explicit_dates(phrase, expected):
    assert nlp.find_dates(f"We meet {phrase}.") == [expected]


@pytest.mark.parametrize(
    "phrase, expected",
    [
        ("today", "2026-06-09"),
        ("tomorrow", "2026-06-10"),
        ("by Friday", "2026-06-12"),
        ("on Monday", "2026-06-15"),
        ("next Friday", "2026-06-19"),
        ("next Tuesday", "2026-06-16"),
        ("Tuesday", "2026-06-16"),  # a bare weekday is the next one, not today
        ("next week", "2026-06-15"),
        ("by the end of the week", "2026-06-12"),
        ("end of the month", "2026-06-30"),
        ("next month", "2026-07-01"),
        ("in two weeks", "2026-06-23"),
        ("in 3 days", "2026-06-12"),
        ("by 9/6", "2026-06-09"),
        ("June 19", "2026-06-19"),
    ],
)
def test_relative_dates_need_and_use_a_reference(phrase, expected):
    assert nlp.find_dates(f"Send it {phrase}.", reference=REF) == [expected]
    assert nlp.find_dates(f"Send it {phrase}.", reference="2026-06-09") == [expected]


def test_relative_dates_without_reference_are_not_guessed():
    assert nlp.find_dates("Send it by Friday, next week or tomorrow, on June 19.") == []
    assert nlp.due_date("Send it by Friday.") == "by Friday"  # the phrase, since it cannot resolve
    assert nlp.due_date("Send it by Friday.", reference=REF) == "2026-06-12"
    assert nlp.due_date("No deadline here.") is None


def test_dates_that_are_not_dates():
    assert nlp.find_dates("February 30, 2026 and 2026-13-01 and 31/2/2026", reference=REF) == []
    assert nlp.find_dates("you may 5 times ask", reference=REF) == []  # "may" the verb
    assert nlp.find_dates("version 1.30 and 3.14159 and 10/100", reference=REF) == []


def test_day_first_is_a_choice():
    assert nlp.find_dates("on 9/6/2026") == ["2026-06-09"]
    assert nlp.find_dates("on 9/6/2026", dayfirst=False) == ["2026-09-06"]


def test_find_dates_deduplicates_in_order_and_mentions_have_spans():
    text = "Ship on 2026-06-19, i.e. June 19, 2026; review on June 12, 2026."
    assert nlp.find_dates(text) == ["2026-06-19", "2026-06-12"]
    for m in nlp.find_date_mentions(text):
        assert text[m.start : m.end].strip() == m.text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=400))
def test_find_dates_never_raises_and_returns_iso(text):
    for iso in nlp.find_dates(text, reference=REF):
        dt.date.fromisoformat(iso)


# --- disfluencies ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw, clean",
    [
        (
            "So um I sent you the agenda , it was on the {disfmarker} in the project documents .",
            "So I sent you the agenda, it was on the in the project documents.",
        ),
        ("{vocalsound} Right .", "Right."),
        ("Uh , we do n't need the the D_V_D_ player .", "We don't need the DVD player."),
        ("I 'm sure it 's fine , mm - hmm .", "I'm sure it's fine."),
        ("<laugh/> Ehm, okay.", "Okay."),
        ("The umbrella is under the hummingbird.", "The umbrella is under the hummingbird."),
    ],
)
def test_clean_disfluencies(raw, clean):
    got = nlp.clean_disfluencies(raw)
    assert got[:1].upper() + got[1:] == clean


def test_clean_disfluencies_only_markup():
    assert nlp.clean_disfluencies("{vocalsound} {disfmarker}") == ""
    assert nlp.clean_disfluencies("") == ""
