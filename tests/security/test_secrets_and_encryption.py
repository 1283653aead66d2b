"""Secrets never land in any artefact; checkpoints can be encrypted at rest with one setting.

A full run of every agent (minutes through approval in a second process, PDF summary, deck
outline) happens in child processes with distinctive fake secrets in their environment and
DEBUG logging on; then every blob file of the local bucket, every row of its catalogue, every
checkpoint decoded with the saver's serializer, the CLI's stdout/stderr and the logs are grepped
for the secret values.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from marginalia.redact import find_secrets, redact, secret_values

SAMPLES = Path(__file__).resolve().parents[2] / "src" / "marginalia" / "samples"
CHECKPOINT_KEY = base64.b64encode(b"K" * 16 + b"fake-secret-ckpt").decode()
FAKE = {
    "AWS_ACCESS_KEY_ID": "AKIAFAKESECRET0000042",
    "AWS_SECRET_ACCESS_KEY": "fakeSecretAccessKey/DoNotLeak+0042xyz",
    "AWS_SESSION_TOKEN": "FakeSessionTokenDoNotLeak0042",
    "LANGFUSE_SECRET_KEY": "sk-lf-fake-secret-do-not-leak-0042",
    "LANGFUSE_PUBLIC_KEY": "pk-lf-fake-public-0042",
    "SOME_SERVICE_TOKEN": "svc-token-do-not-leak-0042",
    "MARGINALIA_CHECKPOINT_KEY": CHECKPOINT_KEY,
}


def cli(env, *args, timeout=180):
    return subprocess.run(
        [sys.executable, "-m", "marginalia", *args], env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture
def run_env(tmp_path):
    store = tmp_path / "store"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MARGINALIA_", "LANGFUSE_"))}
    env.update(
        FAKE,
        MARGINALIA_STORE=f"local:{store}",
        MARGINALIA_ENGINE="offline",
        LANGFUSE_HOST="http://127.0.0.1:9",
        MARGINALIA_LOG_LEVEL="DEBUG",
    )
    return env, store


def test_no_secret_in_any_artefact_of_a_full_run(run_env):
    env, store_dir = run_env
    outputs = []
    for args in (
        ("mb", "s3://docs"),
        ("put", str(SAMPLES / "standup.vtt"), "s3://docs/meetings/standup.vtt"),
        ("put", str(SAMPLES / "sample_report.pdf"), "s3://docs/reports/q3.pdf"),
    ):
        r = cli(env, *args)
        assert r.returncode == 0, r.stderr
        outputs.append(r.stdout + r.stderr)
    waiting = cli(env, "minutes", "s3://docs/meetings/standup.vtt")
    assert waiting.returncode == 0, waiting.stderr
    outputs.append(waiting.stdout + waiting.stderr)
    thread = next(w for w in waiting.stdout.split() if w.startswith("minutes-"))
    for args in (
        ("approve", thread),
        ("summarize", "s3://docs/reports/q3.pdf"),
        (
            "outline",
            "Q3 review for the platform team",
            "--out",
            "s3://docs/decks/q3.pptx",
            "--source",
            "s3://docs/reports/q3.pdf",
            "--yes",
        ),
        ("threads",),
        ("batch", "s3://docs/meetings/", "--yes"),
    ):
        r = cli(env, *args)
        outputs.append(r.stdout + r.stderr)
        assert r.returncode == 0, (args, r.stdout[-2000:], r.stderr[-2000:])
    secrets = secret_values(FAKE)
    assert set(secrets) >= {
        "AWS_SECRET_ACCESS_KEY",
        "LANGFUSE_SECRET_KEY",
        "SOME_SERVICE_TOKEN",
        "MARGINALIA_CHECKPOINT_KEY",
    }

    leaks = [f"CLI output: {find_secrets(o, secrets)}" for o in outputs if find_secrets(o, secrets)]
    files = [p for p in store_dir.rglob("*") if p.is_file()]
    assert len(files) > 20
    leaks += [f"{p}: {find_secrets(p.read_bytes(), secrets)}" for p in files if find_secrets(p.read_bytes(), secrets)]
    with sqlite3.connect(store_dir / "catalog.sqlite3") as conn:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
            for row in conn.execute(f'SELECT * FROM "{table}"'):
                found = find_secrets(json.dumps(row, default=repr), secrets)
                leaks += [f"catalogue {table}: {found}"] if found else []
    # checkpoints decoded with the saver's own serializer (encrypted at rest: decode with the key)
    os.environ["MARGINALIA_CHECKPOINT_KEY"] = CHECKPOINT_KEY
    try:
        from marginalia.runtime import open_checkpointer, state_location
        from marginalia.storage.local import LocalStore
        from marginalia.threads import ThreadIndex

        store = LocalStore(store_dir)
        state = state_location(store)
        saver = open_checkpointer(store, state)
        threads = ThreadIndex(store, state).list()
        assert {t.agent for t in threads} >= {"minutes", "pdf_summary", "ppt_outline"}
        decoded = 0
        for t in threads:
            for c in saver.list({"configurable": {"thread_id": t.thread_id}}):
                blob = repr((c.checkpoint, c.metadata, c.pending_writes))
                decoded += 1
                if find_secrets(blob, secrets):
                    leaks.append(f"checkpoint of {t.thread_id}: {find_secrets(blob, secrets)}")
        assert decoded >= 10
    finally:
        os.environ.pop("MARGINALIA_CHECKPOINT_KEY", None)
    assert not leaks, leaks


def test_redact_masks_values():
    assert redact("key=abcdefgh123 ok", {"X_KEY": "abcdefgh123"}) == "key=*** ok"
    assert "MARGINALIA_LEASE_TTL" not in secret_values({"MARGINALIA_LEASE_TTL": "120000000"})


def test_checkpoints_encrypted_at_rest_through_a_real_agent_run(run_env):
    """One setting: the minutes' checkpoints are unreadable without the key, and a run resumed in
    another process (with the key) finishes."""
    env, store_dir = run_env
    cli(env, "mb", "s3://docs")
    cli(env, "put", str(SAMPLES / "standup.vtt"), "s3://docs/standup.vtt")
    waiting = cli(env, "minutes", "s3://docs/standup.vtt")
    assert waiting.returncode == 0, waiting.stderr
    thread = next(w for w in waiting.stdout.split() if w.startswith("minutes-"))
    from marginalia.runtime import state_location
    from marginalia.storage.local import LocalStore

    store = LocalStore(store_dir)
    state = state_location(store)
    bodies = [
        store.get_object(state.bucket, o.key)[0]
        for o in store.list_objects(state.bucket, state.key)
        if "/checkpoints/" in f"/{o.key}" and o.size
    ]
    assert bodies
    proposal_words = ("stand-up", "standup.vtt", "Marco")
    assert not [w for w in proposal_words for b in bodies if w.encode() in b]  # no plaintext at rest
    from marginalia.checkpointers import S3Saver
    from marginalia.checkpointers.serde import CheckpointKeyError

    without_key = S3Saver.from_uri(str(state), store=store, encryption_key="")
    with pytest.raises(CheckpointKeyError):  # the key is missing: not any failure
        list(without_key.list({"configurable": {"thread_id": thread}}))
    done = cli(env, "approve", thread)  # a new process, with the key: resumes and writes
    assert done.returncode == 0, done.stderr
    assert store.get_annotation("docs", "standup.vtt", "meeting_minutes").json()["title"]


def test_an_encrypted_thread_without_the_key_is_a_clear_error(run_env):
    """``approve`` on an encrypted waiting thread, in a process without the key or with another
    one: one line naming the checkpoint object and what to do, exit 2, and the thread still
    finishes once the right key is back."""
    env, store_dir = run_env
    cli(env, "mb", "s3://docs")
    cli(env, "put", str(SAMPLES / "standup.vtt"), "s3://docs/standup.vtt")
    thread = next(w for w in cli(env, "minutes", "s3://docs/standup.vtt").stdout.split() if w.startswith("minutes-"))
    no_key = dict(env)
    no_key.pop("MARGINALIA_CHECKPOINT_KEY")
    wrong_key = {**env, "MARGINALIA_CHECKPOINT_KEY": base64.b64encode(b"W" * 32).decode()}
    for bad_env, says in ((no_key, "MARGINALIA_CHECKPOINT_KEY is not set"), (wrong_key, "decryption failed")):
        refused = cli(bad_env, "approve", thread)
        assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        assert "s3://" in lines[0] and thread in lines[0] and "encrypted" in lines[0], lines[0]
        assert says in lines[0], lines[0]
        assert CHECKPOINT_KEY not in refused.stderr + refused.stdout
    from marginalia.storage.local import LocalStore

    store = LocalStore(store_dir)
    assert "meeting_minutes" not in {
        a.name for a in store.list_annotations("docs", "standup.vtt")
    }  # refusals wrote nothing
    done = cli(env, "approve", thread)
    assert done.returncode == 0, done.stderr
    assert store.get_annotation("docs", "standup.vtt", "meeting_minutes").json()["title"]
