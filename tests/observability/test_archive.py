"""Trace archives and ``marginalia trace``, on real runs of the agents on the local store.

The archive must tell the whole story from ONE object: the tests archive a thread, delete the
source object (and with it every annotation the run wrote), and rebuild the story from the
archive alone: steps, interrupts, decisions, node timings, the transcript / PDF page texts and
the results, byte for byte what they were.
"""

from __future__ import annotations

import json

import pytest
from observability_constants import STANDUP
from typer.testing import CliRunner

from marginalia import api, archive, runtime, tracing
from marginalia.api_documents import summarize
from marginalia.cli import app
from marginalia.errors import InvalidInput
from marginalia.tools import large_annotations
from marginalia.tools.pdf import read_pages
from marginalia.tools.transcripts import parse_transcript

SAMPLE_PDF = STANDUP.parent / "sample_report.pdf"
runner = CliRunner()


def _cli(*args: str):
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result


def _saver(store):
    state = runtime.state_location(store)
    return runtime.open_checkpointer(store, state), state


@pytest.fixture
def reviewed_thread(obs_env):
    """A minutes thread with two interrupts: rejected with feedback, then approved."""
    uri = obs_env.put("standup.vtt", STANDUP)
    first = api.minutes(uri)
    second = api.resume(first.thread_id, action="reject", feedback="Name the owner of every item", reviewer="ana")
    assert second.status == "waiting"
    done = api.resume(first.thread_id, action="approve", reviewer="bo")
    assert done.status == "done"
    return done


def test_archive_tells_the_whole_story_after_the_source_is_deleted(obs_env, reviewed_thread):
    store, thread_id = obs_env.store, reviewed_thread.thread_id
    before = {
        a.name: store.get_annotation("meetings", "standup.vtt", a.name).json()
        for a in store.list_annotations("meetings", "standup.vtt")
    }
    result = _cli("archive", thread_id)
    assert result.exit_code == 0, result.output
    uri = f"s3://marginalia-state/v1/archives/{thread_id}.json"
    assert uri in result.output

    store.delete_object("meetings", "standup.vtt")  # the source and all its annotations are gone
    assert not list(store.list_objects("meetings"))

    shown = _cli("archive", "show", uri, "--json")
    assert shown.exit_code == 0, shown.output
    story = json.loads(shown.output)
    assert story["thread_id"] == thread_id and story["agent"] == "minutes" and story["status"] == "done"
    assert story["trace_id"] == tracing.trace_id_for(thread_id)
    assert [(d["action"], d.get("reviewer"), d.get("feedback")) for d in story["decisions"]] == [
        ("reject", "ana", "Name the owner of every item"),
        ("approve", "bo", None),
    ]
    assert [i["node"] for i in story["interrupts"]] == ["review", "review"]
    assert story["interrupts"][0]["value"]["proposal"] == story["decisions"][0]["proposal"]
    ran = [n for s in story["steps"] for n in s["ran"]]
    assert (
        ran.index("ingest")
        < ran.index("transcript")
        < ran.index("extract_chunk")
        < ran.index("merge")
        < ran.index("annotate")
    )
    assert "revise" in ran
    assert story["nodes"]["review"]["runs"] == 2 and story["nodes"]["extract_chunk"]["seconds"] > 0
    steps = [s["step"] for s in story["steps"]]
    assert steps == sorted(steps)
    assert {a["name"] for a in story["annotations_written"]} == {"meeting_minutes", "action_items"}
    # the offloaded context, whole: what the annotations said, and the transcript itself
    for name, doc in before.items():
        assert story["attached"][f"object.{name}"]["document"] == doc
    segments = story["attached"]["object.transcript"]["document"]["segments"]
    original = parse_transcript(STANDUP.read_bytes(), filename="standup.vtt")
    assert [s["text"] for s in segments] == [s.text for s in original.segments]
    assert story["missing_attachments"] == []

    human = _cli("archive", "show", uri)
    assert human.exit_code == 0, human.output
    assert "decision 1: reject by ana" in human.output and "Name the owner of every item" in human.output
    assert "attached object.transcript" in human.output


def test_pdf_archive_keeps_the_page_texts(obs_env):
    obs_env.store.create_bucket("docs")
    uri = "s3://docs/report.pdf"
    obs_env.store.put_object("docs", "report.pdf", SAMPLE_PDF)
    done = summarize(uri)
    assert done.status == "done"
    saver, state = _saver(obs_env.store)
    result = archive.archive_thread(obs_env.store, saver, done.thread_id, state=state)
    assert {a["name"] for a in result.attachments} >= {"object.summary", "pdf.pages"}
    obs_env.store.delete_object("docs", "report.pdf")
    story = archive.read_archive(obs_env.store, result.uri)
    pages = story["attached"]["pdf.pages"]["pages"]
    assert [(p["page"], p["text"]) for p in pages] == read_pages(SAMPLE_PDF)
    assert story["attached"]["object.summary"]["document"]["provenance"]["thread_id"] == done.thread_id


def test_pdf_archive_keeps_the_pages_of_the_version_summarised(obs_env):
    """A PDF replaced between the summary and the archive: the archive keeps the pages that were
    summarised (or none), never the replacement's."""
    from marginalia.samples.make_sample_pdf import text_pdf

    obs_env.store.create_bucket("docs")
    obs_env.store.put_object("docs", "report.pdf", SAMPLE_PDF)
    done = summarize("s3://docs/report.pdf")
    obs_env.store.put_object("docs", "report.pdf", text_pdf([[("body", "Replacement uploaded after the summary.")]]))
    saver, state = _saver(obs_env.store)
    result = archive.archive_thread(obs_env.store, saver, done.thread_id, state=state)
    attached = archive.read_archive(obs_env.store, result.uri)["attached"]
    if "pdf.pages" in attached:
        assert [(p["page"], p["text"]) for p in attached["pdf.pages"]["pages"]] == read_pages(SAMPLE_PDF)
    assert "Replacement uploaded" not in json.dumps(attached)


def test_an_attachment_over_1_mib_is_split_and_reassembled(obs_env, reviewed_thread):
    store = obs_env.store
    notes = {"lines": [f"line {i}: " + "é" * 200 for i in range(6000)]}  # ~2.4 MB of UTF-8
    large_annotations.put_json(store, "meetings", "standup.vtt", "review_notes", notes)
    saver, state = _saver(store)
    result = archive.archive_thread(store, saver, reviewed_thread.thread_id, state=state)
    item = next(a for a in result.attachments if a["name"] == "object.review_notes")
    assert item["split"] and item["parts"] >= 3
    target = result.uri.removeprefix("s3://").split("/", 1)
    names = {a.name for a in store.list_annotations(*target)}
    assert {large_annotations.part_name("object.review_notes", i) for i in range(1, item["parts"] + 1)} <= names
    store.delete_object("meetings", "standup.vtt")
    story = archive.read_archive(store, result.uri)
    assert story["attached"]["object.review_notes"]["document"] == notes
    body = json.loads(store.get_object(*target)[0])
    assert next(a for a in body["attachments"] if a["name"] == "object.review_notes")["split"] is True


def test_the_annotation_limit_is_respected_and_reported(obs_env, reviewed_thread, monkeypatch):
    monkeypatch.setattr(archive, "MAX_ANNOTATIONS_PER_VERSION", 2)
    saver, state = _saver(obs_env.store)
    result = archive.archive_thread(obs_env.store, saver, reviewed_thread.thread_id, state=state)
    assert len(result.attachments) == 2 and len(result.omitted) == 1
    story = archive.read_archive(obs_env.store, result.uri)
    assert [o["name"] for o in story["omitted_attachments"]] == list(result.omitted)


def test_rearchiving_replaces_the_archive_without_stale_attachments(obs_env, reviewed_thread):
    store = obs_env.store
    saver, state = _saver(store)
    store.put_annotation("meetings", "standup.vtt", "scratch", b'{"x": 1}')
    first = archive.archive_thread(store, saver, reviewed_thread.thread_id, state=state)
    assert "object.scratch" in {a["name"] for a in first.attachments}
    store.delete_annotation("meetings", "standup.vtt", "scratch")
    second = archive.archive_thread(store, saver, reviewed_thread.thread_id, state=state)
    assert second.uri == first.uri
    target = second.uri.removeprefix("s3://").split("/", 1)
    assert "object.scratch" not in {a.name for a in store.list_annotations(*target)}


def test_unknown_thread_and_non_archive_are_clear_errors(obs_env):
    saver, state = _saver(obs_env.store)
    with pytest.raises(InvalidInput, match="no thread 'minutes-nope'"):
        archive.archive_thread(obs_env.store, saver, "minutes-nope", state=state)
    assert not list(obs_env.store.list_objects("marginalia-state", "v1/archives/"))
    uri = obs_env.put("standup.vtt", STANDUP)
    with pytest.raises(InvalidInput, match="not a Marginalia archive"):
        archive.read_archive(obs_env.store, uri)
    proc = obs_env.run("archive", "show", "s3://meetings/missing.json")
    assert proc.returncode == 3 and "no archive at s3://meetings/missing.json" in proc.stderr  # not found
    assert "Traceback" not in proc.stderr


def test_trace_from_an_annotation_and_from_a_thread(obs_env, reviewed_thread, monkeypatch):
    thread_id = reviewed_thread.thread_id
    trace_id = tracing.trace_id_for(thread_id)
    monkeypatch.setenv("LANGFUSE_BASE_URL", "https://langfuse.example.org/")
    by_object = _cli("trace", "s3://meetings/standup.vtt")
    assert by_object.exit_code == 0, by_object.output
    assert f"https://langfuse.example.org/trace/{trace_id}" in by_object.output
    assert thread_id in by_object.output and "action_items, meeting_minutes, transcript" in by_object.output
    for node in ("ingest", "transcript", "review (interrupt)", "revise", "annotate"):
        assert node in by_object.output
    monkeypatch.delenv("LANGFUSE_BASE_URL")
    by_thread = _cli("trace", thread_id)
    assert by_thread.exit_code == 0, by_thread.output
    assert f"trace: {trace_id}" in by_thread.output and "/trace/" not in by_thread.output
    proc = obs_env.run("trace", "minutes-unknown")
    assert proc.returncode == 3 and "no thread 'minutes-unknown'" in proc.stderr  # not found


def test_archive_run_is_the_end_of_thread_hook(obs_env):
    """What runtime calls after a run finishes: archives done threads, leaves waiting ones alone."""
    import marginalia.graph.minutes  # noqa: F401  registers the agent (the API does this itself)

    uri = obs_env.put("standup.vtt", STANDUP)
    run = runtime.start("minutes", uri, {"transcript_input": None})
    waiting = runtime.drive(run)
    assert waiting.status == "waiting" and archive.archive_run(run, waiting) is None
    run = runtime.resume(waiting.thread_id, "approve")
    done = runtime.drive(run)
    result = archive.archive_run(run, done)
    assert result is not None and result.uri == f"s3://marginalia-state/v1/archives/{done.thread_id}.json"
    assert archive.read_archive(obs_env.store, result.uri)["status"] == "done"


def test_a_thread_rejected_without_feedback_reads_rejected_without_its_index_record(obs_env):
    """A thread run by the API server may have no index record; one read back from its checkpoints
    that ended on a rejection without feedback (``decision: discard``) is ``rejected``, not ``done``
    (it used to test for ``reject``, the decision that loops back to a revision)."""
    from marginalia.threads import ThreadIndex

    first = api.minutes(obs_env.put("discarded.vtt", STANDUP))
    ended = api.resume(first.thread_id, action="reject")
    assert ended.status == "rejected"
    saver, state = _saver(obs_env.store)
    index = ThreadIndex(obs_env.store, state)
    obs_env.store.delete_object(state.bucket, index._key(first.thread_id))
    assert index.get(first.thread_id) is None
    assert archive.thread_record(obs_env.store, saver, index, first.thread_id).status == "rejected"
