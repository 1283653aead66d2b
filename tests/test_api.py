"""The public Python API: exports, result type, and how resume refuses what it cannot do."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

import marginalia
from marginalia import context, runtime
from marginalia.errors import InvalidInput
from marginalia.testing.cli import run_cli as _cli
from marginalia.tracing import trace_id_for

VTT = """WEBVTT

00:00:01.000 --> 00:00:04.000
<v Dana>We decided to move the retro to Thursday. Eli will book the room by Monday.
"""


@pytest.fixture
def env(tmp_path, monkeypatch):
    from marginalia.storage.local import LocalStore

    monkeypatch.setenv("MARGINALIA_STORE", f"local:{tmp_path / 'store'}")
    monkeypatch.delenv("MARGINALIA_STATE", raising=False)
    monkeypatch.setenv("MARGINALIA_ENGINE", "offline")
    monkeypatch.setattr(context, "_DEFAULTS", {})
    store = LocalStore(tmp_path / "store")
    store.create_bucket("api-bucket")
    store.put_object("api-bucket", "retro.vtt", VTT.encode())
    yield store
    store.close()


def test_public_exports_and_twins_have_the_same_signature():
    assert {"minutes", "aminutes", "resume", "aresume", "RunResult"} <= set(marginalia.__all__)
    assert (
        inspect.signature(marginalia.minutes).parameters.keys()
        == inspect.signature(marginalia.aminutes).parameters.keys()
    )
    assert (
        inspect.signature(marginalia.resume).parameters.keys()
        == inspect.signature(marginalia.aresume).parameters.keys()
    )
    assert inspect.iscoroutinefunction(marginalia.aminutes) and not inspect.iscoroutinefunction(marginalia.minutes)
    fields = {f.name for f in dataclasses.fields(marginalia.RunResult)}
    assert {"thread_id", "agent", "status", "proposal", "annotations", "trace_id", "iterations"} <= fields


def test_run_result_of_a_waiting_and_a_done_thread(env):
    waiting = marginalia.minutes("s3://api-bucket/retro.vtt", thread_id="retro-1")
    assert (waiting.thread_id, waiting.agent, waiting.status) == ("retro-1", "minutes", "waiting")
    assert waiting.trace_id == trace_id_for("retro-1") and len(waiting.trace_id) == 32
    assert waiting.proposal["summary"] and waiting.iterations == 0

    done = marginalia.resume("retro-1")
    assert done.status == "done" and done.iterations == 1 and done.trace_id == waiting.trace_id
    assert [(a.uri, a.name) for a in done.annotations] == [
        ("s3://api-bucket/retro.vtt", "meeting_minutes"),
        ("s3://api-bucket/retro.vtt", "action_items"),
    ]
    assert all(a.etag for a in done.annotations)


def test_resume_refuses_bad_requests_and_the_thread_keeps_waiting(env):
    waiting = marginalia.minutes("s3://api-bucket/retro.vtt")
    with pytest.raises(InvalidInput, match="not a valid Minutes: title"):
        marginalia.resume(waiting.thread_id, action="edit", edited={"summary": "no title"})
    with pytest.raises(InvalidInput, match="JSON Patch does not apply"):
        marginalia.resume(waiting.thread_id, action="edit", patch=[{"op": "remove", "path": "/nope"}])
    with pytest.raises(InvalidInput, match="exactly one of"):
        marginalia.resume(waiting.thread_id, action="edit")
    with pytest.raises(InvalidInput, match="invalid review"):
        marginalia.resume(waiting.thread_id, action="maybe")
    assert [a.name for a in env.list_annotations("api-bucket", "retro.vtt")] == ["transcript"]

    assert marginalia.resume(waiting.thread_id).status == "done"  # still resumable after the refusals
    with pytest.raises(InvalidInput, match="not waiting for approval"):
        marginalia.resume(waiting.thread_id)


def test_unknown_threads_and_bad_ids_are_named(env):
    with pytest.raises(InvalidInput, match="no thread 'nobody-home'"):
        marginalia.resume("nobody-home")
    with pytest.raises(InvalidInput, match="invalid thread id"):
        marginalia.resume("../escape")
    marginalia.minutes("s3://api-bucket/retro.vtt", thread_id="taken")
    with pytest.raises(InvalidInput, match="thread taken already exists"):
        marginalia.minutes("s3://api-bucket/retro.vtt", thread_id="taken")


def test_trace_id_is_in_checkpoint_metadata(env):
    from marginalia.graph.minutes import build_minutes_graph

    waiting = marginalia.minutes("s3://api-bucket/retro.vtt", thread_id="traced")
    saver = runtime.open_checkpointer(env, runtime.state_location(env))
    meta = build_minutes_graph(checkpointer=saver).get_state({"configurable": {"thread_id": "traced"}}).metadata
    assert meta["trace_id"] == waiting.trace_id and meta["agent"] == "minutes"


def test_trace_id_needs_no_langfuse_client_or_network(monkeypatch):
    for name in ("LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY", "LANGFUSE_HOST", "LANGFUSE_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    a, b = trace_id_for("thread-a"), trace_id_for("thread-b")
    assert a == trace_id_for("thread-a") and a != b
    assert len(a) == 32 and int(a, 16) >= 0


def test_a_finished_thread_is_archived_and_a_waiting_one_is_not(env):
    from marginalia.archive import read_archive

    marginalia.minutes("s3://api-bucket/retro.vtt", thread_id="retro-arch")
    assert not env.bucket_exists("marginalia-state") or not [
        o.key for o in env.list_objects("marginalia-state", "v1/archives/")
    ]
    marginalia.resume("retro-arch")
    keys = [o.key for o in env.list_objects("marginalia-state", "v1/archives/")]
    assert keys == ["v1/archives/retro-arch.json"]
    story = read_archive(env, "s3://marginalia-state/v1/archives/retro-arch.json")
    assert "retro-arch" in str(story) and trace_id_for("retro-arch") in str(story)


def _encrypted_sample(password: str) -> bytes:
    import io
    from pathlib import Path

    from pypdf import PdfReader, PdfWriter

    sample = Path(marginalia.__file__).parent / "samples" / "sample_report.pdf"
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(sample.read_bytes())))
    writer.encrypt(password, algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_resume_passes_the_password_to_the_run_and_never_stores_it(env, monkeypatch):
    """A review answered later gets the PDF password through resume(password=...) (no
    MARGINALIA_PDF_PASSWORD): the revision re-reads the encrypted PDF. An agent that reads no
    PDF refuses a password instead of dropping it."""
    from marginalia.engines.offline import OfflineEngine

    secret = "s3cr3t-Pa55-9f1d"
    monkeypatch.delenv("MARGINALIA_PDF_PASSWORD", raising=False)
    env.put_object("api-bucket", "enc/q3.pdf", _encrypted_sample(secret))
    waiting = marginalia.summarize("s3://api-bucket/enc/q3.pdf", password=secret, review=True)
    assert waiting.status == "waiting"

    class Reading(OfflineEngine):
        pages: list = []

        def revise_summary(self, summary, feedback, pages):
            Reading.pages = list(pages)
            return super().revise_summary(summary, feedback, pages)

    revised = marginalia.resume(
        waiting.thread_id, action="reject", feedback="Focus on Karpenter.", password=secret, engine=Reading()
    )
    assert revised.status == "waiting" and Reading.pages  # the PDF was opened with the password
    assert "Karpenter" in revised.proposal["summary"]
    marginalia.resume(waiting.thread_id, action="reject", feedback="Shorter.", engine=Reading())
    assert Reading.pages == []  # no password given: revised from the summary alone
    assert marginalia.resume(waiting.thread_id, password=secret).status == "done"

    for bucket in ("api-bucket", "marginalia-state"):
        for obj in env.list_objects(bucket):
            assert secret.encode() not in env.get_object(bucket, obj.key)[0], obj.key
            for info in env.list_annotations(bucket, obj.key):
                assert secret.encode() not in env.get_annotation(bucket, obj.key, info.name).payload

    minutes = marginalia.minutes("s3://api-bucket/retro.vtt")
    with pytest.raises(InvalidInput, match="--password is not used"):
        marginalia.resume(minutes.thread_id, password=secret)
    state = runtime.state_location(env)
    from marginalia.threads import ThreadIndex

    assert ThreadIndex(env, state).get(minutes.thread_id).status == "waiting"  # untouched by the refusal
    assert marginalia.resume(minutes.thread_id).status == "done"  # refused before anything ran


def test_approve_of_an_outline_prints_where_the_deck_is(env, monkeypatch):
    """`marginalia approve` of a ppt_outline thread says where the uploaded deck is; a minutes
    thread gets no deck line."""
    monkeypatch.setenv("COLUMNS", "200")
    deck = "s3://api-bucket/decks/retro.pptx"
    waiting = marginalia.outline("A short retro deck for the team: what went well, what to change", out=deck, slides=3)
    assert waiting.status == "waiting" and not list(env.list_objects("api-bucket", "decks/"))
    code, out, err = _cli("approve", waiting.thread_id)
    assert code == 0, err
    assert f"the deck:     {deck}" in out and f"marginalia get {deck} retro.pptx" in out
    assert env.head_object("api-bucket", "decks/retro.pptx").size > 0

    minutes = marginalia.minutes("s3://api-bucket/retro.vtt")
    code, out, err = _cli("approve", minutes.thread_id)
    assert code == 0 and "Done" in out and "the deck:" not in out
