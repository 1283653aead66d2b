"""The minutes agent end to end on real meetings, on the local store and the S3 test server.

Every meeting goes through: ingest -> transcript annotation -> map-reduce minutes -> approval
interrupt (the process returns) -> resume in a NEW process -> meeting_minutes/action_items.
"""

from __future__ import annotations

import json

import marginalia
from marginalia.schemas import Minutes
from marginalia.tools.transcripts import parse_transcript
from marginalia.tracing import trace_id_for

RESUME_ALL = """
import json, sys, marginalia
out = {}
for tid in sys.argv[1:]:
    r = marginalia.resume(tid, action="approve", reviewer="subprocess")
    out[tid] = {"status": r.status, "annotations": [a.name for a in r.annotations], "iterations": r.iterations}
print(json.dumps(out))
"""


def test_every_meeting_waits_then_a_new_process_approves(agent_env, meetings):
    started = {}
    for path in meetings:
        key = f"meetings/{path.parent.name}/{path.name}"
        uri = agent_env.put(key, path)
        expected = parse_transcript(path.read_bytes(), filename=path.name)
        result = marginalia.minutes(uri)

        assert result.status == "waiting" and result.annotations == ()
        proposal = Minutes.model_validate(result.proposal)  # a valid Minutes document
        assert proposal.summary.strip() and proposal.title.strip()
        n = len(expected.segments)
        cited = [i for d in proposal.decisions for i in d.evidence] + [
            i for a in proposal.action_items for i in a.evidence
        ]
        assert all(0 <= i < n for i in cited), f"{path.name}: evidence outside the transcript"
        # the whole transcript is in the annotation (never truncated); minutes not written yet
        transcript = agent_env.annotation(key, "transcript")
        assert len(transcript["segments"]) == n
        assert transcript["segments"][-1]["text"] == expected.segments[-1].text
        assert transcript["provenance"]["source_etag"] == agent_env.store.head_object(agent_env.bucket, key).etag
        assert "meeting_minutes" not in agent_env.annotation_names(key)
        started[result.thread_id] = (key, result)

    index = agent_env.index()
    pending = {r.thread_id for r in index.list(pending=True)}
    assert pending == set(started)

    out = agent_env.python(RESUME_ALL, *started)

    for thread_id, (key, waiting) in started.items():
        assert out[thread_id] == {"status": "done", "annotations": ["meeting_minutes", "action_items"], "iterations": 1}
        minutes = agent_env.annotation(key, "meeting_minutes")
        items = agent_env.annotation(key, "action_items")
        assert {k: minutes[k] for k in waiting.proposal} == waiting.proposal  # what was approved is what is stored
        assert items["action_items"] == waiting.proposal["action_items"]
        prov = minutes["provenance"]
        assert prov["thread_id"] == thread_id and prov["trace_id"] == trace_id_for(thread_id)
        assert prov["agent"] == "minutes" and prov["engine"] == "offline"
        assert prov["source_etag"] == agent_env.store.head_object(agent_env.bucket, key).etag
        assert items["provenance"] == prov
        assert index.get(thread_id).status == "done"
    assert index.list(pending=True) == []


def test_edit_by_replacement_and_by_patch(agent_env, standup):
    path = standup
    uri_a = agent_env.put("edit/a" + path.suffix, path)
    uri_b = agent_env.put("edit/b" + path.suffix, path)

    a = marginalia.minutes(uri_a)
    edited = dict(
        a.proposal, title="Edited title", action_items=[{"owner": "Ann", "task": "Send the notes", "due": "2024-06-01"}]
    )
    done_a = marginalia.resume(a.thread_id, action="edit", edited=edited, reviewer="ann")
    assert done_a.status == "done"
    stored = agent_env.annotation("edit/a" + path.suffix, "meeting_minutes")
    assert stored["title"] == "Edited title"
    assert stored["action_items"] == [
        {"owner": "Ann", "task": "Send the notes", "due": "2024-06-01", "evidence": [], "confidence": None}
    ]  # a person's item: no engine confidence

    b = marginalia.minutes(uri_b)
    patch = [
        {"op": "replace", "path": "/title", "value": "Patched"},
        {"op": "add", "path": "/topics/-", "value": "budget"},
    ]
    done_b = marginalia.resume(b.thread_id, action="edit", patch=patch)
    stored_b = agent_env.annotation("edit/b" + path.suffix, "meeting_minutes")
    assert stored_b["title"] == "Patched" and stored_b["topics"][-1] == "budget"
    assert stored_b["topics"][:-1] == b.proposal["topics"]
    assert done_b.proposal["title"] == "Patched"


def test_reject_with_feedback_revises_and_keeps_every_iteration(local_env, standup):
    path = standup
    key = "reject/m" + path.suffix
    uri = local_env.put(key, path)
    first = marginalia.minutes(uri)
    second = marginalia.resume(first.thread_id, action="reject", feedback="Make the summary shorter, at most 40 words.")
    assert second.status == "waiting" and second.iterations == 1
    assert second.proposal != first.proposal
    assert len(second.proposal["summary"].split()) <= len(first.proposal["summary"].split())
    assert local_env.annotation_names(key) == ["transcript"]  # still nothing but the transcript

    done = marginalia.resume(first.thread_id, action="approve")
    assert done.status == "done" and done.iterations == 2
    assert local_env.annotation(key, "meeting_minutes")["summary"] == second.proposal["summary"]

    # the checkpointed history keeps both proposals and the feedback
    from marginalia.graph.minutes import build_minutes_graph
    from marginalia.runtime import open_checkpointer, state_location

    graph = build_minutes_graph(checkpointer=open_checkpointer(local_env.store, state_location(local_env.store)))
    iterations = graph.get_state({"configurable": {"thread_id": first.thread_id}}).values["iterations"]
    assert [i["action"] for i in iterations] == ["reject", "approve"]
    assert iterations[0]["proposal"] == first.proposal and iterations[1]["proposal"] == second.proposal
    assert iterations[0]["feedback"].startswith("Make the summary shorter")


def test_reject_without_feedback_ends_the_thread_and_writes_nothing(local_env, standup):
    path = standup
    key = "discard/m" + path.suffix
    first = marginalia.minutes(local_env.put(key, path))
    result = marginalia.resume(first.thread_id, action="reject")
    assert result.status == "rejected" and result.annotations == ()
    assert "meeting_minutes" not in local_env.annotation_names(key)
    assert local_env.index().get(first.thread_id).status == "rejected"


def test_cli_runs_to_approval_exits_and_another_process_approves(local_env, standup):
    path = standup
    key = "cli/standup" + path.suffix
    uri = local_env.put(key, path)

    started = local_env.run("minutes", uri, check=True)
    assert "Waiting for approval" in started.stdout and "Action items" in started.stdout
    thread_id = next(
        line.split("approve ", 1)[1].strip() for line in started.stdout.splitlines() if "marginalia approve" in line
    )
    assert "meeting_minutes" not in local_env.annotation_names(key)

    code, listed, _ = local_env.cli("threads", "--pending")
    assert code == 0 and thread_id in listed and "waiting" in listed

    approved = local_env.run("approve", thread_id, check=True)
    assert "wrote meeting_minutes" in approved.stdout.replace("\n", " ")
    assert {"meeting_minutes", "action_items", "transcript"} <= set(local_env.annotation_names(key))
    assert local_env.index().get(thread_id).status == "done"


def test_cli_edit_file_and_reject(local_env, tmp_path, standup):
    path = standup
    key = "cli2/m" + path.suffix
    uri = local_env.put(key, path)
    first = marginalia.minutes(uri)

    code, out, err = local_env.cli("reject", first.thread_id, "--feedback", "Add the decisions, please.")
    assert code == 0 and "Waiting for approval" in out, err

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"summary": "no title"}))
    code, out, err = local_env.cli("approve", first.thread_id, "--edit", str(bad))
    assert code == 2 and "not a valid Minutes: title" in err

    patch = tmp_path / "patch.json"
    patch.write_text(json.dumps([{"op": "replace", "path": "/title", "value": "From the CLI"}]))
    code, out, err = local_env.cli("approve", first.thread_id, "--edit", str(patch))
    assert code == 0 and "wrote meeting_minutes" in out, err
    assert local_env.annotation(key, "meeting_minutes")["title"] == "From the CLI"
    code, out, _ = local_env.cli("threads")
    assert first.thread_id in out and "done" in out


def test_long_meeting_is_map_reduced_and_checkpoints_stay_small(local_env, meetings):
    from marginalia.runtime import state_location

    path = max(meetings, key=lambda p: p.stat().st_size)
    key = "long/meeting" + path.suffix
    chunks_seen = []
    result = marginalia.minutes(
        local_env.put(key, path),
        chunk_chars=4000,
        on_update=lambda node, update: chunks_seen.append(node) if node == "extract_chunk" else None,
    )
    assert len(chunks_seen) >= 5  # the meeting went through map-reduce, not cut to one window
    n = len(parse_transcript(path.read_bytes(), filename=path.name).segments)
    cited = [i for a in result.proposal["action_items"] for i in a["evidence"]]
    cited += [i for d in result.proposal["decisions"] for i in d["evidence"]]
    assert all(0 <= i < n for i in cited)
    assert max(cited, default=n) > n // 5  # ids are global: later chunks cite later segments

    marginalia.resume(result.thread_id, action="reject", feedback="Shorter summary please.")
    transcript_chars = sum(len(s["text"]) for s in local_env.annotation(key, "transcript")["segments"])
    assert transcript_chars > 30_000
    state = state_location(local_env.store)
    objects = [o for o in local_env.store.list_objects(state.bucket, state.key) if "/threads/" not in o.key]
    assert len(objects) > 5, "no checkpoint objects found under MARGINALIA_STATE"
    biggest = max(o.size for o in objects)
    # kilobytes, not the transcript: the largest checkpoint object is far below the transcript size
    assert biggest < 64 * 1024 and biggest < transcript_chars / 2, biggest


async def test_async_twins_share_the_core(local_env, standup):
    path = standup
    key = "async/m" + path.suffix
    uri = local_env.put(key, path)
    waiting = await marginalia.aminutes(uri)
    sync_waiting = marginalia.minutes(local_env.put("async/sync" + path.suffix, path))
    assert waiting.status == "waiting" and waiting.proposal == sync_waiting.proposal
    done = await marginalia.aresume(waiting.thread_id, action="approve")
    assert done.status == "done" and [a.name for a in done.annotations] == ["meeting_minutes", "action_items"]
    assert local_env.annotation(key, "meeting_minutes")["provenance"]["thread_id"] == waiting.thread_id


def test_yes_approves_without_stopping(agent_env, standup):
    path = standup
    key = "yes/m" + path.suffix
    result = marginalia.minutes(agent_env.put(key, path), approve=True)
    assert result.status == "done" and result.iterations == 1
    assert [a.uri for a in result.annotations] == [f"s3://{agent_env.bucket}/{key}"] * 2
    assert agent_env.index().get(result.thread_id).status == "done"


def test_a_long_meeting_is_sent_in_waves_and_minuted_as_if_at_once(local_env, meetings, monkeypatch):
    """The chunks go out CHUNKS_PER_WAVE at a time (each task of a step parks a thread: a 20 MiB
    meeting has ~1,400 chunks), and the minutes are the same as with every chunk sent at once."""
    import marginalia.nodes.minutes as nodes

    path = max(meetings, key=lambda p: p.stat().st_size)
    uri = local_env.put("waves/meeting" + path.suffix, path)
    seen: list[str] = []
    monkeypatch.setattr(nodes, "CHUNKS_PER_WAVE", 10_000)
    at_once = marginalia.minutes(uri, chunk_chars=2000)
    monkeypatch.setattr(nodes, "CHUNKS_PER_WAVE", 3)
    waves = marginalia.minutes(uri, chunk_chars=2000, thread_id="waves", on_update=lambda node, _: seen.append(node))
    chunks = seen.count("extract_chunk")
    joins = [node for node in seen if node in ("extract_chunk", "next_wave")]
    runs = "".join("x" if node == "extract_chunk" else "|" for node in joins).split("|")
    assert chunks >= 7 and max(len(r) for r in runs) == 3, seen  # never more than a wave between joins
    assert len([r for r in runs if r]) == -(-chunks // 3)
    assert waves.status == at_once.status == "waiting" and waves.proposal == at_once.proposal
