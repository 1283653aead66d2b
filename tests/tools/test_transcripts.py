"""Transcript parsers: every format, real fixtures, malformed input, pathological input."""

from __future__ import annotations

import copy
import json
from importlib.resources import files
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marginalia.errors import InvalidInput
from marginalia.schemas import Transcript
from marginalia.testing.fixtures import SHARED_FIXTURES
from marginalia.tools import transcripts as tmod
from marginalia.tools.transcripts import find_transcript_beside, parse_transcript

TESTS = Path(__file__).resolve().parents[1]
MEETINGS = TESTS / "fixtures" / "meetings"
TRANSCRIBE = TESTS / "fixtures" / "transcribe" / "budget-meeting.json"
ELITR = SHARED_FIXTURES / "meetings" / "elitr"
SAMPLE = Path(str(files("marginalia") / "samples" / "standup.vtt"))


def _ids_are_positions(t: Transcript) -> None:
    assert [s.id for s in t.segments] == list(range(len(t.segments)))
    assert all(s.text.strip() for s in t.segments)
    assert t.speakers == list(dict.fromkeys(s.speaker for s in t.segments if s.speaker))


# --- WebVTT ----------------------------------------------------------------------------------
def test_vtt_voice_tags_and_speaker_prefixes():
    vtt = (
        "WEBVTT\n\n"
        "00:00:01.250 --> 00:00:04.000\n<v Alice Smith>Hello <b>there</b>.</v>\n\n"
        "intro-2\n00:00:05.000 --> 00:00:06.500\nBob: hi, second\nline\n\n"
        "NOTE a comment\n\n"
        "00:01:07.000 --> 00:01:08.000\nno speaker here\n"
    )
    t = parse_transcript(vtt, filename="m.vtt")
    assert t.source_format == "vtt"
    assert [(s.speaker, s.start, s.end, s.text) for s in t.segments] == [
        ("Alice Smith", 1.25, 4.0, "Hello there."),
        ("Bob", 5.0, 6.5, "hi, second line"),
        (None, 67.0, 68.0, "no speaker here"),
    ]
    _ids_are_positions(t)


def test_sample_standup_is_a_real_meeting():
    t = parse_transcript(SAMPLE.read_bytes(), filename=SAMPLE.name)
    assert len(t.segments) == 25
    assert t.speakers == ["Priya Raman", "Marco Silva", "Aisha Okafor", "Tom Becker"]
    assert all(s.start is not None and s.end > s.start for s in t.segments)
    assert any("EKS" in s.text for s in t.segments)


# --- SRT -------------------------------------------------------------------------------------
def test_srt_with_speakers_and_tags():
    srt = (
        "1\n00:00:01,000 --> 00:00:02,500\nAlice: <i>hi</i> all\n\n"
        "2\n00:00:03,000 --> 00:00:04,000\nBob: ok\nlet's start\n\n"
        "3\n00:00:05,000 --> 00:00:06,000\n- just a caption\n"
    )
    t = parse_transcript(srt.encode(), filename="m.srt")
    assert t.source_format == "srt"
    assert [(s.speaker, s.start, s.end, s.text) for s in t.segments] == [
        ("Alice", 1.0, 2.5, "hi all"),
        ("Bob", 3.0, 4.0, "ok let's start"),
        (None, 5.0, 6.0, "- just a caption"),
    ]


def test_srt_detected_from_content_with_a_txt_name():
    srt = "1\n00:00:01,000 --> 00:00:02,000\nAlice: hi\n"
    assert parse_transcript(srt, filename="notes.txt").source_format == "srt"


# --- Amazon Transcribe -----------------------------------------------------------------------
def _transcribe() -> dict:
    return json.loads(TRANSCRIBE.read_text("utf-8"))


def test_transcribe_audio_segments():
    t = parse_transcript(TRANSCRIBE.read_bytes(), filename="job.json")
    assert t.source_format == "transcribe-json" and t.language == "en-US"
    assert t.speakers == ["spk_0", "spk_1"]
    doc = _transcribe()["results"]
    assert [s.text for s in t.segments] == [a["transcript"] for a in doc["audio_segments"]]
    assert t.segments[0].start == float(doc["audio_segments"][0]["start_time"])


def test_transcribe_items_with_speaker_labels_rebuild_the_turns():
    doc = _transcribe()
    del doc["results"]["audio_segments"]
    t = parse_transcript(json.dumps(doc), filename="job.json")
    full = doc["results"]["transcripts"][0]["transcript"]
    assert " ".join(s.text for s in t.segments) == full  # punctuation attached, nothing lost
    assert [s.speaker for s in t.segments] == ["spk_0", "spk_1", "spk_0", "spk_1"]
    assert all(s.start is not None and s.end >= s.start for s in t.segments)


def test_transcribe_older_output_speakers_from_speaker_label_segments():
    doc = _transcribe()
    del doc["results"]["audio_segments"]
    for item in doc["results"]["items"]:
        item.pop("speaker_label", None)
    t = parse_transcript(json.dumps(doc), filename="job.json")
    assert [s.speaker for s in t.segments] == ["spk_0", "spk_1", "spk_0", "spk_1"]


def test_transcribe_older_speaker_label_segments_with_a_missing_time():
    """A speaker segment whose end_time is null lasts to its start; one whose start_time is empty
    says nothing (both were put in the lookup as None and broke it with a TypeError)."""
    doc = _transcribe()
    del doc["results"]["audio_segments"]
    for item in doc["results"]["items"]:
        item.pop("speaker_label", None)
    segments = doc["results"]["speaker_labels"]["segments"]
    for seg in segments:
        for item in seg.get("items") or [seg]:
            item["end_time"] = None
    segments.append({"speaker_label": "spk_9", "start_time": "", "end_time": "1.0"})
    t = parse_transcript(json.dumps(doc), filename="job.json")
    assert [s.speaker for s in t.segments] == ["spk_0", "spk_1", "spk_0", "spk_1"]


def test_transcribe_without_diarisation_is_one_unattributed_stream():
    doc = _transcribe()
    del doc["results"]["audio_segments"], doc["results"]["speaker_labels"]
    for item in doc["results"]["items"]:
        item.pop("speaker_label", None)
    t = parse_transcript(json.dumps(doc), filename="job.json")
    assert t.speakers == [] and " ".join(s.text for s in t.segments) == doc["results"]["transcripts"][0]["transcript"]


# --- plain text ------------------------------------------------------------------------------
def test_speaker_lines_with_timestamps_and_continuations():
    text = "[00:00:05] Alice: Good morning.\nWe start with the budget.\n\n00:01:10 Bob Jones: Costs went up.\nNote: this is not a speaker\n"
    t = parse_transcript(text, filename="meeting.txt")
    assert t.source_format == "speaker-lines"
    assert [(s.speaker, s.start, s.text) for s in t.segments] == [
        ("Alice", 5.0, "Good morning. We start with the budget."),
        ("Bob Jones", 70.0, "Costs went up. Note: this is not a speaker"),
    ]


def test_text_without_speakers_gives_paragraphs():
    t = parse_transcript("First paragraph\nstill first.\n\nSecond one.\n", filename="m.txt")
    assert t.source_format == "text" and t.speakers == []
    assert [s.text for s in t.segments] == ["First paragraph still first.", "Second one."]


# --- JSON layouts ----------------------------------------------------------------------------
@pytest.mark.parametrize("path", sorted(MEETINGS.glob("qmsum_*.json")), ids=lambda p: p.stem)
def test_qmsum_fixtures(path):
    doc = json.loads(path.read_text("utf-8"))
    t = parse_transcript(path.read_bytes(), filename=path.name)
    assert t.source_format == "qmsum-json"
    turns = [turn for turn in doc["transcript"] if turn["text"].strip()]
    assert len(t.segments) == len(turns)
    assert set(t.speakers) == {turn["speaker"] for turn in turns}
    assert [s.text for s in t.segments] == [" ".join(turn["text"].split()) for turn in turns]
    _ids_are_positions(t)


@pytest.mark.skipif(not ELITR.is_dir(), reason="ELITR meetings (non-commercial) only on developer machines")
@pytest.mark.parametrize("name", ["elitr_meeting_en_dev_001.json", "elitr_meeting_en_dev_004.json"])
def test_elitr_fixtures(name):
    path = ELITR / name
    doc = json.loads(path.read_text("utf-8"))
    t = parse_transcript(path.read_bytes(), filename=name)
    assert t.source_format == "elitr-json"
    lines = [line.strip() for line in doc["transcript_text"].splitlines() if line.strip()]
    turn_lines = [line for line in lines if line.startswith("(PERSON")]
    assert len([s for s in t.segments if s.speaker]) == len(turn_lines)
    assert all(s.speaker.startswith("PERSON") for s in t.segments if s.speaker)
    # continuation lines are joined, not lost
    assert sum(len(s.text.split()) for s in t.segments) == sum(
        len((line.split(")", 1)[1] if line.startswith("(PERSON") else line).split()) for line in lines
    )
    _ids_are_positions(t)


def test_segments_json_round_trips():
    original = parse_transcript(SAMPLE.read_bytes(), filename="standup.vtt")
    again = parse_transcript(original.model_dump_json(), filename="transcript.json")
    assert again == original


def test_turn_lists_and_other_field_names():
    doc = [{"speaker": "A", "content": "hello", "start_time": "1.5"}, "unattributed", {"name": "B", "utterance": "bye"}]
    t = parse_transcript(json.dumps(doc), filename="turns.json")
    assert [(s.speaker, s.start, s.text) for s in t.segments] == [
        ("A", 1.5, "hello"),
        (None, None, "unattributed"),
        ("B", None, "bye"),
    ]
    t = parse_transcript(json.dumps({"meeting_transcripts": [{"speaker": "A", "content": "hi"}]}), filename="m.json")
    assert t.segments[0].text == "hi"


# --- errors ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, filename, words",
    [
        (b"", "empty.vtt", "empty"),
        (b"  \n\t", "blank.txt", "empty"),
        (b"\xff\xfeA\x00", "utf16.txt", "UTF-8"),
        (b"Alice: caf\xe9", "latin1.txt", "UTF-8"),
        (b"a\x00b", "nul.txt", "NUL"),
        (b"hello", "x.vtt", "WebVTT"),
        (b"WEBVTT\n\nnot a cue\n", "x.vtt", "no spoken text"),
        (b"1\nfoo\n", "x.srt", "SRT"),
        (b'{"segments": [', "x.json", "malformed JSON"),
        (b"{}", "x.json", "no transcript"),
        (b"42", "x.json", "object or a list"),
        (b'{"segments": 3}', "x.json", "must be a list"),
        (b'{"segments": [{"speaker": "a"}]}', "x.json", "no 'text'"),
        (b'{"segments": [{"text": 5}]}', "x.json", "must be a string"),
        (b'{"segments": [{"text": "x", "start": "soon"}]}', "x.json", "not a valid JSON"),
        (b'{"segments": [{"text": "x", "start": -1}]}', "x.json", "non-negative"),
        (b'{"segments": []}', "x.json", "no spoken text"),
        (b'{"transcript_text": 7}', "x.json", "must be a string"),
        (b'{"results": {"items": [{"type": "pronunciation"}]}}', "x.json", "no alternatives"),
        (b"[" * 100_000 + b"]" * 100_000, "deep.json", "JSON"),
    ],
)
def test_bad_input_is_invalid_input_naming_the_file(data, filename, words):
    with pytest.raises(InvalidInput) as info:
        parse_transcript(data, filename=filename)
    assert filename in str(info.value) and words in str(info.value)


def test_size_limit(monkeypatch):
    monkeypatch.setattr(tmod, "MAX_TRANSCRIPT_BYTES", 1000)
    with pytest.raises(InvalidInput, match="big.txt.*more than the 1000"):
        parse_transcript(b"Alice: hi\n" * 200, filename="big.txt")


@pytest.mark.timeout(60)  # the quadratic regexes this guards against never finished on 3 MB
@pytest.mark.parametrize("filename", ["huge.vtt", "huge.srt", "huge.txt", "huge.json"])
def test_a_huge_single_line_is_parsed_or_refused(filename):
    body = "x" * 3_000_000
    heads = {
        "huge.vtt": f"WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nAlice: {body}\n",
        "huge.srt": f"1\n00:00:01,000 --> 00:00:02,000\n{'a: ' * 1_000_000}\n",
        "huge.txt": " " * 3_000_000 + ":" + body,
        "huge.json": json.dumps({"segments": [{"speaker": "A" * 1_000_000, "text": body}]}),
    }
    try:
        t = parse_transcript(heads[filename], filename=filename)
    except InvalidInput as exc:
        assert filename in str(exc)
    else:
        assert all(len(s.speaker or "") <= 60 for s in t.segments)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.text(max_size=300).map(str.encode),
        st.lists(
            st.sampled_from(
                [
                    "WEBVTT",
                    "\n",
                    "00:00:01.000 --> 00:00:02.000",
                    "1",
                    "<v A>",
                    "A:",
                    " hi",
                    "{",
                    "}",
                    "[",
                    "]",
                    '"segments"',
                    '"text"',
                    ":",
                    ",",
                    "-->",
                    "00:00:01,000",
                ]
            ),
            max_size=40,
        ).map(lambda p: "".join(p).encode()),
    ),
    ext=st.sampled_from([".vtt", ".srt", ".json", ".txt", ""]),
)
def test_parsers_return_a_transcript_or_invalid_input(data, ext):
    try:
        t = parse_transcript(data, filename=f"fuzz{ext}")
    except InvalidInput as exc:
        assert "fuzz" in str(exc)
    else:
        assert isinstance(t, Transcript) and t.segments
        _ids_are_positions(t)


def test_fuzzed_real_json_layouts_never_escape_as_other_errors():
    base = json.loads(TRANSCRIBE.read_text("utf-8"))
    mutations = [None, 1, "x", [], {}, [1], {"a": 1}, -1.0, True]
    paths = [("results",), ("results", "items"), ("results", "audio_segments"), ("results", "speaker_labels")]
    for path in paths:
        for value in mutations:
            doc = copy.deepcopy(base)
            target = doc
            for key in path[:-1]:
                target = target[key]
            target[path[-1]] = value
            try:
                parse_transcript(json.dumps(doc), filename="mut.json")
            except InvalidInput as exc:
                assert "mut.json" in str(exc)


# --- transcripts beside recordings -----------------------------------------------------------
def test_find_transcript_beside(local_store):
    local_store.create_bucket("rec")
    local_store.put_object("rec", "meetings/standup.mp4", b"\x00\x01")
    assert find_transcript_beside(local_store, "rec", "meetings/standup.mp4") is None
    local_store.put_object("rec", "meetings/standup.txt", b"Alice: hi")
    local_store.put_object("rec", "meetings/other.vtt", b"WEBVTT\n")
    assert find_transcript_beside(local_store, "rec", "meetings/standup.mp4") == "meetings/standup.txt"
    local_store.put_object("rec", "meetings/standup.vtt", SAMPLE.read_bytes())
    assert find_transcript_beside(local_store, "rec", "meetings/standup.mp4") == "meetings/standup.vtt"
    assert find_transcript_beside(local_store, "rec", "meetings/standup.vtt") == "meetings/standup.txt"
    assert ".mp4" in tmod.MEDIA_EXTENSIONS and ".vtt" not in tmod.MEDIA_EXTENSIONS


# --- over-long turns -------------------------------------------------------------------------


def _one_line_meeting(chars: int) -> str:
    """A meeting typed on one line: real sentences of the sample stand-up, repeated."""
    sample = parse_transcript((files("marginalia") / "samples" / "standup.vtt").read_bytes(), filename="standup.vtt")
    sentences = " ".join(s.text for s in sample.segments)
    return "Alice: " + (sentences + " ") * (chars // (len(sentences) + 1) + 1)


@pytest.mark.timeout(30)
def test_a_3mb_one_line_transcript_becomes_bounded_segments_without_losing_text():
    text = _one_line_meeting(3_000_000)
    t = parse_transcript(text, filename="huge.txt")
    _ids_are_positions(t)
    assert len(t.segments) >= 3_000_000 // tmod.MAX_SEGMENT_CHARS
    assert all(0 < len(s.text) <= tmod.MAX_SEGMENT_CHARS for s in t.segments)
    assert {s.speaker for s in t.segments} == {"Alice"} and t.speakers == ["Alice"]
    # Cut between sentences: every piece ends a sentence, and the pieces joined are the turn.
    assert all(s.text[-1] in ".!?" for s in t.segments[:-1])
    assert " ".join(s.text for s in t.segments) == " ".join(text[len("Alice: ") :].split())


@pytest.mark.timeout(30)
def test_one_huge_word_is_cut_inside_it_and_nothing_is_dropped():
    t = parse_transcript(b"x" * 3_000_000, filename="huge-line.txt")
    assert all(len(s.text) <= tmod.MAX_SEGMENT_CHARS for s in t.segments)
    assert "".join(s.text for s in t.segments) == "x" * 3_000_000


def test_a_long_timed_cue_is_split_with_interpolated_times():
    words = " ".join(f"word{i}" for i in range(3000))  # ~26,000 characters, no sentence end
    vtt = f"WEBVTT\n\n00:00:10.000 --> 00:10:10.000\n<v Bob>{words}\n\n00:10:10.000 --> 00:10:12.000\n<v Ann>Thanks Bob.\n"
    t = parse_transcript(vtt, filename="long.vtt")
    _ids_are_positions(t)
    bob = [s for s in t.segments if s.speaker == "Bob"]
    assert len(bob) > 1 and t.segments[-1].speaker == "Ann" and t.segments[-1].text == "Thanks Bob."
    assert " ".join(s.text for s in bob) == words  # cut between words: no word broken or lost
    assert bob[0].start == 10.0 and bob[-1].end == 610.0
    for a, b in zip(bob, bob[1:], strict=False):
        assert a.start < a.end == b.start < b.end  # contiguous, increasing


def test_segments_share_one_fields_set_and_stay_safe_to_copy():
    """Memory of a long meeting (issue 17 item 2): pydantic keeps a fields set per instance (728
    of a segment's ~1,230 bytes); parsed segments share one, and copying or updating a segment
    never changes what the others hold."""
    from marginalia.tools.transcripts import compact

    data = "WEBVTT\n\n" + "".join(
        f"00:00:{i:02d}.000 --> 00:00:{i + 1:02d}.000\n<v Ann>line {i}\n\n" for i in range(40)
    )
    transcript = parse_transcript(data.encode(), filename="m.vtt")
    assert len({id(s.__pydantic_fields_set__) for s in transcript.segments}) == 1
    assert transcript.segments[3].model_dump() == {
        "id": 3,
        "speaker": "Ann",
        "start": 3.0,
        "end": 4.0,
        "text": "line 3",
    }
    moved = transcript.segments[0].model_copy(update={"id": 100})
    assert moved.id == 100 and transcript.segments[0].id == 0
    assert transcript.segments[1].model_fields_set == {"id", "speaker", "start", "end", "text"}
    # read back from JSON (as from the annotation), then compacted
    again = compact(type(transcript).model_validate_json(transcript.model_dump_json()))
    assert again == transcript and len({id(s.__pydantic_fields_set__) for s in again.segments}) == 1
