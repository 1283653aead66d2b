"""Start → wait → approve through the review Update, for each agent; reject with feedback; an
invalid edit refused by the Update's validator while the run keeps waiting. Real dev server,
a real ``marginalia worker`` process."""

from __future__ import annotations

import asyncio
import json

import pytest
from temporal_support import put_sample

import marginalia
from marginalia.errors import InvalidInput


def _workflow(thread_id: str):
    from marginalia.temporal.settings import TemporalSettings

    async def describe():
        client = await TemporalSettings.from_env().connect()
        return await client.get_workflow_handle(thread_id).describe()

    return asyncio.run(describe())


def _annotation(store, uri: str, name: str) -> dict:
    bucket, key = uri[len("s3://") :].split("/", 1)
    return json.loads(store.get_annotation(bucket, key, name).payload)


def test_minutes_reject_invalid_edit_then_approve(temporal_env):
    from temporalio.client import WorkflowExecutionStatus

    store = temporal_env.open_store()
    uri = put_sample(store, "meet", "standup.vtt", "standup.vtt")
    temporal_env.worker()

    first = marginalia.minutes(uri, on="temporal")
    assert first.status == "waiting" and first.proposal["action_items"]
    thread = first.thread_id

    revised = marginalia.resume(thread, action="reject", feedback="add action item: book window owner Priya")
    assert revised.status == "waiting" and revised.iterations == 1
    assert revised.proposal != first.proposal

    with pytest.raises(InvalidInput, match="not a valid|does not apply"):
        marginalia.resume(thread, action="edit", patch=[{"op": "replace", "path": "/action_items", "value": "x"}])
    desc = _workflow(thread)
    assert desc.status == WorkflowExecutionStatus.RUNNING and not desc.raw_description.pending_activities
    with pytest.raises(Exception):  # noqa: B017 - nothing written yet
        _annotation(store, uri, "meeting_minutes")

    done = marginalia.resume(thread, action="edit", patch=[{"op": "replace", "path": "/title", "value": "Edited"}])
    assert done.status == "done" and {a.name for a in done.annotations} == {"meeting_minutes", "action_items"}
    minutes = _annotation(store, uri, "meeting_minutes")
    assert minutes["title"] == "Edited"
    prov = minutes["provenance"]
    assert prov["thread_id"] == thread and prov["temporal"]["workflow_id"] == thread
    assert prov["temporal"]["run_id"] == _workflow(thread).run_id
    assert _workflow(thread).status == WorkflowExecutionStatus.COMPLETED


def test_pdf_summary_and_outline_approved_via_update(temporal_env):
    store = temporal_env.open_store()
    pdf = put_sample(store, "docs", "reports/q3.pdf", "sample_report.pdf")
    temporal_env.worker()

    summary = marginalia.summarize(pdf, review=True, on="temporal")
    assert summary.status == "waiting" and summary.proposal["key_points"]
    done = marginalia.resume(summary.thread_id, action="approve")
    assert done.status == "done"
    assert _annotation(store, pdf, "summary")["provenance"]["temporal"]["workflow_id"] == summary.thread_id

    deck = "s3://docs/decks/q3.pptx"
    outline = marginalia.outline("Q3 review for the platform team", slides=4, sources=[pdf], out=deck, on="temporal")
    assert outline.status == "waiting" and len(outline.proposal["slides"]) == 4
    done = marginalia.resume(outline.thread_id, action="approve")
    assert done.status == "done" and store.head_object("docs", "decks/q3.pptx").size > 0
    assert _annotation(store, deck, "outline")
    from marginalia.archive import archive_uri, read_archive
    from marginalia.runtime import state_location

    story = read_archive(store, str(archive_uri(state_location(store), outline.thread_id)))
    assert story["temporal"]["workflow_id"] == outline.thread_id


def test_missing_object_starts_no_workflow(temporal_env):
    from marginalia.errors import ObjectNotFound

    temporal_env.open_store().create_bucket("meet", exist_ok=True)
    with pytest.raises((ObjectNotFound, InvalidInput)):
        marginalia.minutes("s3://meet/nothing.vtt", on="temporal", thread_id="minutes-missing-1")
    from temporalio.service import RPCError

    with pytest.raises(RPCError):
        _workflow("minutes-missing-1")
