"""Langfuse tracing, proven on what the SDK really exports (OTLP/HTTP, decoded by a local receiver).

* one trace per thread: the first run (here) and the resume after the interrupt (a NEW process)
  land under ``trace_id_for(thread_id)``, with node spans, the interrupt and both root runs;
* the same trace id is in the checkpoint metadata and in every annotation's provenance;
* no secret value (Langfuse secret, AWS keys, any ``*_KEY``/``*_SECRET``/``*_TOKEN``) is in any
  exported byte, even when the meeting itself says it;
* without keys nothing is traced or logged; with a dead server the run still succeeds, delayed
  by at most the bounded flush.
"""

from __future__ import annotations

import base64
import json
import secrets
import socket
import subprocess
import sys
import time

from observability_constants import PUBLIC_KEY, SECRET_KEY, STANDUP

from marginalia import api, runtime, tracing
from marginalia.threads import ThreadIndex


def _wait_for(predicate, timeout: float = 10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def _roots(spans):
    ids = {s.span_id for s in spans}
    return [s for s in spans if s.parent_span_id not in ids]


def test_trace_id_is_derived_from_the_thread_id():
    a, b = tracing.trace_id_for("minutes-abc"), tracing.trace_id_for("minutes-abd")
    assert len(a) == 32 and int(a, 16) >= 0 and a != b
    code = "from marginalia.tracing import trace_id_for; print(trace_id_for('minutes-abc'))"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert other == a  # any process recomputes it: nothing is stored to find the trace


def test_interrupt_and_resume_in_a_new_process_land_in_one_trace(langfuse_env, receiver):
    uri = langfuse_env.put("standup.vtt", STANDUP)
    first = api.minutes(uri)
    assert first.status == "waiting"
    trace_id = tracing.trace_id_for(first.thread_id)
    assert first.trace_id == trace_id
    tracing.flush()
    assert _wait_for(lambda: any(s.name == "review" for s in receiver.of_trace(trace_id)))

    before = receiver.of_trace(trace_id)
    names = {s.name for s in before}
    assert {"minutes", "ingest", "transcript", "plan", "extract_chunk", "merge", "review"} <= names
    review = next(s for s in before if s.name == "review")
    assert review.level == "DEFAULT"  # the interrupt is a pause, not an error
    status = review.attributes.get("langfuse.observation.status_message") or ""
    assert "Interrupt" in status and "proposal" in status  # what the run stopped with
    root = _roots(before)
    assert [s.name for s in root] == ["minutes"]
    assert root[0].attributes["session.id"] == first.thread_id
    assert "agent:minutes" in root[0].attributes["langfuse.trace.tags"]
    assert root[0].attributes["langfuse.trace.name"] == "minutes"
    user, _, password = base64.b64decode(receiver.auth_headers[-1].split()[1]).decode().partition(":")
    assert (user, password) == (PUBLIC_KEY, SECRET_KEY)  # Basic auth, as Langfuse's endpoint expects

    proc = langfuse_env.run("approve", first.thread_id)  # a new process; it flushes at exit
    assert proc.returncode == 0, proc.stderr
    assert _wait_for(lambda: any(s.name == "annotate" for s in receiver.of_trace(trace_id)))
    spans = receiver.of_trace(trace_id)
    assert [s.name for s in _roots(spans)] == ["minutes", "minutes"]  # start and resume, one trace
    assert {"review", "annotate"} <= {s.name for s in spans if s not in before}
    assert all(s.attributes.get("session.id") == first.thread_id for s in _roots(spans))

    # the same id in checkpoint metadata and in every annotation's provenance
    store = langfuse_env.store
    saver = runtime.open_checkpointer(store, runtime.state_location(store))
    metas = [c.metadata for c in saver.list({"configurable": {"thread_id": first.thread_id}})]
    assert metas and all(m.get("trace_id") == trace_id for m in metas)
    for name in ("meeting_minutes", "action_items", "transcript"):
        assert store.get_annotation("meetings", "standup.vtt", name).json()["provenance"]["trace_id"] == trace_id
    assert ThreadIndex(store, runtime.state_location(store)).get(first.thread_id).trace_id == trace_id


def test_no_secret_reaches_any_span(langfuse_env, receiver, monkeypatch, tmp_path):
    aws_secret = secrets.token_urlsafe(30)
    api_token = "tok_" + secrets.token_hex(12)
    pdf_password = "pw-" + secrets.token_hex(6)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", aws_secret)
    monkeypatch.setenv("MARGINALIA_PDF_PASSWORD", pdf_password)
    monkeypatch.setenv("VENDOR_API_TOKEN", api_token)
    access_key_id = "AKIA" + secrets.token_hex(8).upper()
    # the meeting itself reads the secrets out, so they flow through state, inputs and outputs
    leaky = STANDUP.read_text() + (
        f"\n\n99\n00:09:00.000 --> 00:09:10.000\n<v Marco Silva>The deploy key is {aws_secret} with id {access_key_id}, "
        f"and the vendor token is {api_token}; the PDF password is {pdf_password}. Priya will rotate them by Friday.\n"
    )
    path = tmp_path / "leaky.vtt"
    path.write_text(leaky)
    uri = langfuse_env.put("leaky.vtt", path)
    receiver.clear()
    waiting = api.minutes(uri)  # the interrupt's value (the proposal) is exported too
    assert waiting.status == "waiting"
    # and a reviewer pastes them into the minutes: the edit flows through review and annotate spans
    pasted = f"Rotate key {aws_secret} (id {access_key_id}), token {api_token}, PDF password {pdf_password}."
    result = api.resume(
        waiting.thread_id, action="edit", patch=[{"op": "replace", "path": "/summary", "value": pasted}]
    )
    assert result.status == "done"
    assert langfuse_env.store.get_annotation("meetings", "leaky.vtt", "meeting_minutes").json()["summary"] == pasted
    tracing.flush()
    assert _wait_for(lambda: any(s.name == "annotate" for s in receiver.of_trace(result.trace_id)))

    exported = b"".join(receiver.bodies)
    assert b"[REDACTED]" in exported  # the secrets were in the data, and were masked
    for secret in (aws_secret, api_token, pdf_password, SECRET_KEY, access_key_id):
        assert secret.encode() not in exported, f"secret {secret[:4]}... was exported"
    # the ordinary content still made it (masking is targeted, not a blanket wipe)
    assert b"Rotate key [REDACTED]" in exported and b"Priya Raman" in exported


def test_mask_secrets_redacts_values_fields_and_patterns(monkeypatch):
    from pydantic import BaseModel

    monkeypatch.setenv("SERVICE_SECRET", "s3cr3t-value-123")
    monkeypatch.setenv("FEATURE_FLAG", "on")  # not secret-named: untouched

    class Creds(BaseModel):
        user: str
        password: str

    data = {
        "text": "connect with s3cr3t-value-123 and AKIAABCDEFGHIJKLMNOP; Authorization: Bearer abcdef0123456789xyz",
        "config": {"api_key": "short", "input_tokens": 42, "max_tokens": 100, "thread_id": "minutes-1"},
        "nested": [Creds(user="ana", password="p4ss")],
        "env_dump": "password=hunter22 token: 'zzz'",
        "flag": "on",
    }
    masked = tracing.mask_secrets(data=data)
    text = json.dumps(masked)
    for leaked in (
        "s3cr3t-value-123",
        "AKIAABCDEFGHIJKLMNOP",
        "abcdef0123456789xyz",
        "p4ss",
        "hunter22",
        "zzz",
        "short",
    ):
        assert leaked not in text
    assert masked["config"]["input_tokens"] == 42 and masked["config"]["max_tokens"] == 100
    assert masked["config"]["thread_id"] == "minutes-1"
    assert masked["nested"][0]["user"] == "ana"
    assert masked["flag"] == "on"
    assert tracing.mask_secrets(data=None) is None


def test_without_keys_nothing_is_traced_or_logged(obs_env):
    """A new process without keys: no Langfuse handler nor client, not one warning (only the local journal)."""
    uri = obs_env.put("standup.vtt", STANDUP)
    code = (
        "import json, sys, logging\n"
        "logging.basicConfig(level=logging.DEBUG)\n"
        "from marginalia import api, tracing\n"
        "from langfuse._client.resource_manager import LangfuseResourceManager as R\n"
        f"r = api.minutes({uri!r}, approve=True)\n"
        "print(json.dumps({'status': r.status, 'callbacks': [type(c).__name__ for c in tracing.callbacks_for(r.thread_id, 'minutes')],"
        " 'clients': len(R._instances), 'trace_id': r.trace_id}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], env=obs_env.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out == {"status": "done", "callbacks": ["RunJournal"], "clients": 0, "trace_id": out["trace_id"]}
    assert len(out["trace_id"]) == 32  # the id is still there, for provenance and `marginalia trace`
    assert "langfuse" not in proc.stderr.lower()


def test_a_dead_server_never_fails_a_run_and_delays_it_boundedly(obs_env):
    """A server that accepts connections and never answers: the run succeeds; exit waits <= timeout."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(64)  # the kernel completes handshakes; nobody ever reads or replies
    try:
        uri = obs_env.put("standup.vtt", STANDUP)
        timeout_s = 1
        env = {
            "LANGFUSE_PUBLIC_KEY": "pk-lf-dead",
            "LANGFUSE_SECRET_KEY": "sk-lf-dead-server",
            "LANGFUSE_BASE_URL": f"http://127.0.0.1:{hole.getsockname()[1]}",
            "LANGFUSE_TIMEOUT": str(timeout_s),
        }
        code = (
            "import time, json; t = time.monotonic()\n"
            "from marginalia import api, tracing\n"
            f"r = api.minutes({uri!r}, approve=True)\n"
            "assert tracing.callbacks_for(r.thread_id, 'minutes')\n"
            "t_run = time.monotonic() - t; tracing.flush()\n"
            "print(json.dumps({'status': r.status, 'run': t_run, 'flush': time.monotonic() - t - t_run}))\n"
        )
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-c", code], env={**obs_env.env, **env}, capture_output=True, text=True, timeout=120
        )
        elapsed = time.monotonic() - started
    finally:
        hole.close()
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["status"] == "done"
    assert out["flush"] <= timeout_s + 1.5, out  # the explicit flush waits at most about the timeout
    assert elapsed - out["run"] <= 2 * timeout_s + 8, (elapsed, out)  # import + flush + exit-time shutdown
    assert proc.stderr.count("\n") <= 3, proc.stderr  # an export error line at most, no spam
