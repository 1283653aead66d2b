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
    code, out, err = run_cli("approve", "m-unknown", "--json")
    assert code == 3 and out == "" and "no thread" in err
