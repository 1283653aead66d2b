"""Model calls with token counts, and node retries, recorded by the run journal and kept in archives.

Real graphs on the local store with a scripted chat model (the only part that cannot run here is
the model). The model logs, independently of the journal, what it returned to which node; the
tests compare the archive with that log: every call, its node, its tokens, across an interrupt
and a resume in a new process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from botocore.exceptions import ClientError
from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, LLMResult
from metered_model import metered_engine
from observability_constants import STANDUP
from typer.testing import CliRunner

from marginalia import api, archive, context, journal, runtime
from marginalia.cli import app
from marginalia.engines import prompts
from marginalia.graph import minutes as minutes_graph
from marginalia.tools.retry import LLM_RETRY

HERE = Path(__file__).parent
CHUNK_CHARS = 400  # the stand-up sample in several chunks: parallel extract_chunk calls, then merge
RECORD_KEYS = {
    "kind",
    "thread_id",
    "agent",
    "run_id",
    "node",
    "step",
    "task_id",
    "attempt",
    "model",
    "provider",
    "started_at",
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "latency_s",
    "error",
}
RETRY_KEYS = {
    "kind",
    "thread_id",
    "agent",
    "node",
    "step",
    "task_id",
    "attempt",
    "failed_error",
    "failed_at",
    "retried_at",
    "waited_s",
}


def journal_objects(store, thread_id: str | None = None) -> dict[str, bytes]:
    state = runtime.state_location(store)
    prefix = state.join(journal.JOURNAL_DIR, *([thread_id] if thread_id else []))
    return {
        o.key: store.get_object(prefix.bucket, o.key)[0] for o in store.list_objects(prefix.bucket, prefix.key + "/")
    }


def throttled(message: str = "Rate exceeded") -> ClientError:
    return ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": message}, "ResponseMetadata": {"HTTPStatusCode": 400}},
        "Converse",
    )


@pytest.fixture
def fast_retry(monkeypatch):
    """The model-call retry policy as shipped (same errors retried, same attempts), minus the waiting."""
    monkeypatch.setattr(minutes_graph, "LLM_RETRY", LLM_RETRY._replace(initial_interval=0.01, jitter=False))


def _as_rows(calls):
    return sorted((c["node"], c["input_tokens"], c["output_tokens"], c["total_tokens"]) for c in calls)


RESUME = """
import json, sys
from marginalia import api
from metered_model import metered_engine

engine, meter = metered_engine(start=100)
thread_id = sys.argv[1]
again = api.resume(thread_id, action="reject", feedback="Name the owner of every item", engine=engine)
done = api.resume(thread_id, action="approve", reviewer="bo", engine=engine)
print(json.dumps({"statuses": [again.status, done.status], "issued": meter.issued}))
"""


def test_every_model_call_with_its_tokens_across_interrupt_and_resume_in_a_new_process(obs_env):
    uri = obs_env.put("standup.vtt", STANDUP)
    engine, meter = metered_engine()
    waiting = api.minutes(uri, engine=engine, chunk_chars=CHUNK_CHARS)
    assert waiting.status == "waiting"
    extracts = [i for i in meter.issued if i["node"] == "extract_chunk"]
    assert len(extracts) >= 2 and [i["node"] for i in meter.issued].count("merge") == 1
    # the calls before the interrupt are already on disk: a thread that waits for days loses none
    assert len(journal_objects(obs_env.store, waiting.thread_id)) == len(meter.issued)

    env = {**obs_env.env, "PYTHONPATH": f"{HERE}{__import__('os').pathsep}{obs_env.env['PYTHONPATH']}"}
    proc = subprocess.run(
        [sys.executable, "-c", RESUME, waiting.thread_id], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    assert child["statuses"] == ["waiting", "done"] and [i["node"] for i in child["issued"]] == ["revise"]
    issued = meter.issued + child["issued"]

    # the child archived the finished thread; read it back from that one object
    uri_archive = str(archive.archive_uri(runtime.state_location(obs_env.store), waiting.thread_id))
    story = archive.read_archive(obs_env.store, uri_archive)
    usage = story["model_calls"]
    assert _as_rows(usage["calls"]) == _as_rows(issued)
    assert {c["model"] for c in usage["calls"]} == {"anthropic.claude-test-v1"}
    assert all(c["error"] is None and c["attempt"] == 1 and c["thread_id"] == waiting.thread_id for c in usage["calls"])
    assert [c["started_at"] for c in usage["calls"]] == sorted(c["started_at"] for c in usage["calls"])
    for node in ("extract_chunk", "merge", "revise"):
        mine = [i for i in issued if i["node"] == node]
        assert usage["by_node"][node]["calls"] == len(mine)
        for key in ("input_tokens", "output_tokens", "total_tokens"):
            assert usage["by_node"][node][key] == sum(i[key] for i in mine)
    total = sum(i["total_tokens"] for i in issued)
    assert usage["totals"]["total_tokens"] == total == usage["by_model"]["anthropic.claude-test-v1"]["total_tokens"]
    assert usage["totals"]["calls"] == len(issued)
    # each call sits in the step the checkpoints say its node ran in
    ran_at = {(s["step"] + 1, t["node"]) for s in story["steps"] for t in s["tasks"]}
    assert all((c["step"], c["node"]) in ran_at for c in usage["calls"])
    assert story["retries"] == [] and not any("not recorded" in n for n in story["notes"])

    shown = CliRunner().invoke(app, ["archive", "show", uri_archive], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert f"model calls ({len(issued)})" in shown.output and "model call totals" in shown.output
    total_row = next(line for line in shown.output.splitlines() if "│ all " in line)
    assert "total" in total_row and f"{total:,}" in total_row
    revise_row = next(line for line in shown.output.splitlines() if "│ node " in line and " revise " in line)
    assert f"{child['issued'][0]['total_tokens']:,}" in revise_row


def test_a_transient_failure_retried_by_the_node_policy_is_a_retry_in_the_archive(
    obs_env, fast_retry, tmp_path, monkeypatch
):
    # the journal writes through the run's own store, not whatever the environment names
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{tmp_path / 'elsewhere'}")
    monkeypatch.setattr(context, "_DEFAULTS", {})
    uri = obs_env.put("standup.vtt", STANDUP)
    engine, meter = metered_engine(fail_first=throttled())
    done = api.minutes(uri, engine=engine, approve=True, store=obs_env.store)
    assert done.status == "done" and meter.issued[0] == {"node": "extract_chunk", "error": "ClientError"}
    assert not (tmp_path / "elsewhere").exists() or not any((tmp_path / "elsewhere").rglob("*.json"))
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{obs_env.root}")  # for the CLI below

    story = archive.read_archive(
        obs_env.store, str(archive.archive_uri(runtime.state_location(obs_env.store), done.thread_id))
    )
    [retry] = story["retries"]
    assert set(retry) == RETRY_KEYS
    assert (retry["node"], retry["attempt"], retry["failed_error"]) == (
        "extract_chunk",
        2,
        "ClientError: ThrottlingException",
    )
    assert retry["waited_s"] >= 0.01 and retry["failed_at"] <= retry["retried_at"]
    calls = story["model_calls"]["calls"]
    failed = [c for c in calls if c["error"]]
    assert [(c["node"], c["error"], c["total_tokens"], c["attempt"]) for c in failed] == [
        ("extract_chunk", "ClientError: ThrottlingException", 0, 1)
    ]
    again = [c for c in calls if c["task_id"] == retry["task_id"] and not c["error"]]
    assert [(c["attempt"], c["step"]) for c in again] == [(2, retry["step"])] and failed[0]["task_id"] == retry[
        "task_id"
    ]
    assert _as_rows([c for c in calls if not c["error"]]) == _as_rows([i for i in meter.issued if "error" not in i])
    assert story["nodes"]["extract_chunk"]["retries"] == 1 and story["errors"] == []
    assert story["model_calls"]["totals"]["errors"] == 1

    shown = CliRunner().invoke(
        app,
        ["archive", "show", str(archive.archive_uri(runtime.state_location(obs_env.store), done.thread_id))],
        env={"COLUMNS": "200"},
    )
    assert shown.exit_code == 0, shown.output
    assert (
        f"retry: extract_chunk at step {retry['step']}, attempt 2 after ClientError: ThrottlingException"
        in shown.output
    )


async def test_the_async_twin_records_the_same_calls(obs_env):
    """``aminutes`` runs the same graph through ``astream``: sync callbacks run in executor threads."""
    uri = obs_env.put("standup.vtt", STANDUP)
    engine, meter = metered_engine()
    waiting = await api.aminutes(uri, engine=engine, chunk_chars=CHUNK_CHARS)
    assert waiting.status == "waiting"
    calls, retries = journal.read_journal(obs_env.store, runtime.state_location(obs_env.store), waiting.thread_id)
    assert _as_rows(calls) == _as_rows(meter.issued) and len(calls) >= 3 and retries == []


def test_an_offline_run_writes_no_usage_objects(obs_env):
    uri = obs_env.put("standup.vtt", STANDUP)
    waiting = api.minutes(uri)
    done = api.resume(waiting.thread_id, action="approve")
    assert done.status == "done"
    assert journal_objects(obs_env.store) == {}
    story = archive.read_archive(
        obs_env.store, str(archive.archive_uri(runtime.state_location(obs_env.store), done.thread_id))
    )
    assert story["model_calls"]["calls"] == [] and story["model_calls"]["totals"]["calls"] == 0
    assert story["retries"] == []


def test_usage_objects_hold_counts_and_ids_never_prompts_or_secrets(obs_env, fast_retry, monkeypatch):
    secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRET42"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)
    meeting = STANDUP.read_text().replace(
        "Good morning everyone", f"Good morning everyone, the db password is {secret}"
    )
    uri = obs_env.put("leaky.vtt", meeting.encode())
    # the transient error's message quotes the secret, as a careless proxy might
    engine, meter = metered_engine(fail_first=throttled(f"Rate exceeded for key {secret}"))
    done = api.minutes(uri, engine=engine, chunk_chars=CHUNK_CHARS, approve=True)
    assert done.status == "done"
    objects = journal_objects(obs_env.store, done.thread_id)
    assert len(objects) == len(meter.issued) + 1  # every call, and the one retry
    prompt_bits = [
        "Good morning everyone",
        "platform team stand-up",
        prompts.SYSTEM[:40],
        "<document",
        "Platform stand-up",
    ]
    for key, body in objects.items():
        text = body.decode("utf-8")
        assert secret not in text and "Rate exceeded" not in text, key
        assert not [bit for bit in prompt_bits if bit in text], key
        record = json.loads(body)
        assert set(record) == (RECORD_KEYS if record["kind"] == "model_call" else RETRY_KEYS), key
        assert all(not isinstance(v, str) or len(v) <= 64 for v in record.values()), key  # ids and names only
    kinds = Counter(json.loads(b)["kind"] for b in objects.values())
    assert kinds == {"model_call": len(meter.issued), "retry": 1}


def test_token_counts_from_provider_output_when_messages_carry_none():
    """Chat models that report usage only in ``llm_output`` (older Bedrock/OpenAI clients) still count."""
    plain = LLMResult(
        generations=[[ChatGeneration(message=AIMessage(content="x"))]],
        llm_output={"usage": {"prompt_tokens": 120, "completion_tokens": 30}},
    )
    assert journal._token_counts(plain) == {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150}
    both = LLMResult(
        generations=[
            [
                ChatGeneration(
                    message=AIMessage(
                        content="x", usage_metadata={"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
                    )
                )
            ]
        ],
        llm_output={"usage": {"prompt_tokens": 999}},
    )
    assert journal._token_counts(both) == {"input_tokens": 7, "output_tokens": 3, "total_tokens": 10}
