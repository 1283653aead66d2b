"""``--json`` on every agent and thread command: one JSON document on stdout, nothing else."""

from __future__ import annotations

import json

import pytest

from marginalia.testing.cli import run_cli


def one_document(out: str):
    return json.loads(out)  # raises on anything before or after the document


@pytest.fixture
def uploaded(store_env, tmp_path):
    assert run_cli("samples", str(tmp_path / "in"))[0] == 0
    assert run_cli("mb", "demo")[0] == 0
    assert run_cli("put", str(tmp_path / "in" / "standup.vtt"), "s3://demo/m/standup.vtt")[0] == 0
    assert run_cli("put", str(tmp_path / "in" / "q3.pdf"), "s3://demo/r/q3.pdf")[0] == 0
    return tmp_path / "in"


def test_agent_and_thread_commands_print_one_json_document(uploaded):
    code, out, err = run_cli("minutes", "s3://demo/m/standup.vtt", "--thread", "m-1", "--json")
    assert code == 0, err
    waiting = one_document(out)
    assert waiting["status"] == "waiting" and waiting["thread_id"] == "m-1" and waiting["proposal"]["action_items"]

    code, out, err = run_cli("threads", "--pending", "--json")
    assert code == 0, err
    assert [t["thread_id"] for t in one_document(out)] == ["m-1"]

    code, out, err = run_cli("reject", "m-1", "--feedback", "shorter", "--json")
    assert code == 0 and one_document(out)["status"] == "waiting", err

    code, out, err = run_cli("approve", "m-1", "--json")
    assert code == 0, err
    done = one_document(out)
    assert done["status"] == "done"
    assert {a["name"] for a in done["annotations"]} >= {"meeting_minutes", "action_items"}

    code, out, err = run_cli("summarize", "s3://demo/r/q3.pdf", "--json")
    assert code == 0 and one_document(out)["annotations"][0]["name"] == "summary", err

    code, out, err = run_cli(
        "outline", f"@{uploaded / 'outline_request.txt'}", "--out", "s3://demo/d.pptx", "--source", "s3://demo/r/q3.pdf"
    )
    assert code == 0 and not out.lstrip().startswith("{")  # without --json: the human view


def test_threads_json_with_no_threads_is_an_empty_list(store_env):
    code, out, _ = run_cli("threads", "--json")
    assert code == 0 and one_document(out) == []


def test_a_refusal_under_json_prints_nothing_on_stdout(store_env):
    assert run_cli("mb", "demo")[0] == 0
    code, out, err = run_cli("approve", "m-unknown", "--json")
    assert code == 3 and out == "" and "no thread" in err


def test_batch_trace_archive_unlock_resume_and_samples_print_one_json_document(uploaded, tmp_path):
    code, out, err = run_cli("samples", str(tmp_path / "again"), "--json")
    assert code == 0, err
    assert {f["path"].rsplit("/", 1)[-1] for f in one_document(out)["files"]} == {
        "standup.vtt",
        "q3.pdf",
        "outline_request.txt",
    }

    code, out, err = run_cli("batch", "s3://demo/m/", "--yes", "--json")
    assert code == 0, err
    batch = one_document(out)
    assert batch["counts"]["done"] == 1 and batch["rows"][0]["uri"] == "s3://demo/m/standup.vtt"
    thread = batch["rows"][0]["thread_id"]

    code, out, err = run_cli("trace", thread, "--json")
    assert code == 0, err
    (traced,) = one_document(out)
    assert traced["thread_id"] == thread and traced["status"] == "done" and traced["checkpoints"]
    code, out, err = run_cli("trace", "s3://demo/m/standup.vtt", "--json")
    assert code == 0 and "meeting_minutes" in one_document(out)[0]["annotations"], err

    code, out, err = run_cli("archive", thread, "--json")
    assert code == 0, err
    archived = one_document(out)
    assert archived["thread_id"] == thread and archived["uri"].endswith(f"/archives/{thread}.json")
    code, out, err = run_cli("archive", "show", archived["uri"], "--json")
    assert code == 0 and one_document(out)["thread_id"] == thread, err

    code, out, err = run_cli("threads", "unlock", thread, "--json")
    assert code == 0 and one_document(out) == {"thread_id": thread, "unlocked": False, "holder": None}, err

    import marginalia

    def stop_after_transcript(node, update):
        if node == "transcript":
            raise RuntimeError("stopped after the transcript")

    with pytest.raises(RuntimeError):
        marginalia.minutes("s3://demo/m/standup.vtt", thread_id="m-2", on_update=stop_after_transcript)
    code, out, err = run_cli("resume", "m-2", "--json")  # a failed run continues to its proposal
    assert code == 0 and one_document(out)["status"] == "waiting", err
    code, out, err = run_cli("resume", "m-2", "--json")  # waiting: approve or reject it, never approved here
    assert code == 2 and out == "" and "marginalia approve m-2" in err

    code, out, err = run_cli(
        "outline",
        f"@{uploaded / 'outline_request.txt'}",
        "--out",
        "s3://demo/d.pptx",
        "--source",
        "s3://demo/r/q3.pdf",
        "--thread",
        "deck-1",
        "--json",
    )
    assert code == 0 and one_document(out)["status"] == "waiting", err


def test_demo_json_is_one_document_with_every_step(store_env, monkeypatch):
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{store_env}")
    code, out, err = run_cli("demo", "--json")
    assert code == 0, err
    demo = one_document(out)
    assert [s["name"] for s in demo["steps"]][:3] == ["minutes", "summarize", "outline"]
    assert {r["agent"] for r in demo["results"]} >= {"minutes", "pdf_summary", "ppt_outline"}
    assert all(r["status"] == "done" for r in demo["results"])


def test_every_agent_thread_and_operations_command_takes_json():
    import typer

    from marginalia.cli import app

    group = typer.main.get_command(app)
    panels = ("Agents", "Operations")
    without = [
        name
        for name, command in group.commands.items()
        if getattr(command, "rich_help_panel", None) in panels
        and name not in ("worker",)  # a long-running server: nothing to print as one document
        and not any("--json" in p.opts for p in command.params)
    ]
    assert without == []
