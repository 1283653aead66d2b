"""The LangGraph API server (what Studio talks to), driven by ``langgraph-sdk`` as a real client.

``langgraph dev`` is started once for this module from the repo root with ``langgraph.json``, on a
free loopback port, offline (no analytics, no version check), with ``MARGINALIA_STORE`` on a fresh
local bucket directory. Every graph is driven over HTTP: create a thread, run to the approval
interrupt, resume with ``command={"resume": ...}`` (approve and edit), read the final state, and
check the annotations in the bucket. The server's threads are kept by ``S3Saver`` (the
``checkpointer`` entry of ``langgraph.json``): their checkpoints are read back from the bucket.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from marginalia import tracing
from marginalia.context import state_location
from marginalia.lease import current_holder

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "src" / "marginalia" / "samples"
LANGGRAPH = Path(sys.executable).parent / "langgraph"
STATE_BUCKET = "marginalia-state"  # the local default of MARGINALIA_STATE (s3://marginalia-state/v1)
_ANSI = re.compile(r"\x1b\[[0-9;]*m")

pytestmark = pytest.mark.skipif(not LANGGRAPH.exists(), reason="the langgraph CLI is not installed in this venv")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _served_config(dot_env: Path) -> dict:
    """The repo's ``langgraph.json`` (every graph and the checkpointer entry, unchanged) with its
    paths made absolute, so it can live beside the test's ``.env``, and ``"env"`` naming that file."""
    config = json.loads((REPO / "langgraph.json").read_text(encoding="utf-8"))
    assert config["env"] == ".env"  # what a user's server reads; the test's stands in for it

    def absolute(target: str) -> str:
        return str(REPO / target[2:]) if target.startswith("./") else target

    config["graphs"] = {name: absolute(target) for name, target in config["graphs"].items()}
    config["checkpointer"]["path"] = absolute(config["checkpointer"]["path"])
    config["dependencies"] = [str(REPO) if dep == "." else dep for dep in config["dependencies"]]
    config["env"] = str(dot_env)
    return config


class Server:
    def __init__(self, root: Path, log: Path):
        self.root, self.log = root, log
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self, timeout: float = 60, **extra_env: str) -> Server:
        """Start ``langgraph dev`` on the repo's ``langgraph.json`` with its ``.env`` in a temporary
        file: the store, engine and any ``extra_env`` reach the server only through that file (as a
        user's settings do), and a developer's own ``.env`` is never read (its values would win over
        the process environment: it could point the tests at a real bucket)."""
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("LANGFUSE_", "MARGINALIA_", "AWS_REGION", "AWS_DEFAULT_REGION"))
        }
        env.update(
            AWS_EC2_METADATA_DISABLED="true",  # a Bedrock engine named in a run's context fails at once, offline
            LANGGRAPH_CLI_NO_ANALYTICS="1",
            LANGGRAPH_NO_VERSION_CHECK="true",
            PYTHONPATH=os.pathsep.join([str(REPO / "src"), env.get("PYTHONPATH", "")]),
        )
        dot_env = self.log.with_suffix(".env")
        settings = {"MARGINALIA_STORE": f"local:{self.root}", "MARGINALIA_ENGINE": "offline", **extra_env}
        dot_env.write_text("".join(f"{k}={v}\n" for k, v in settings.items()), encoding="utf-8")
        config = self.log.with_suffix(".langgraph.json")
        config.write_text(json.dumps(_served_config(dot_env)), encoding="utf-8")
        port = _free_port()
        self.proc = subprocess.Popen(
            [str(LANGGRAPH), "dev", "--config", str(config), "--no-browser", "--no-reload"]
            + ["--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = _ANSI.sub("", self.log.read_text(errors="replace"))
            # it silently picks another port when ours was taken meanwhile: read the real one
            if (m := re.search(r"API: (http://127\.0\.0\.1:\d+)", text)) and "Application started up" in text:
                self.url = m.group(1)
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        self.stop()
        raise AssertionError(f"langgraph dev did not start:\n{self.log.read_text(errors='replace')[-4000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # our own process group (start_new_session)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from marginalia.storage.local import LocalStore

    root = tmp_path_factory.mktemp("studio") / "store"
    store = LocalStore(root)
    for bucket in ("meetings", "docs", "decks"):
        store.create_bucket(bucket)
    store.put_object("meetings", "standup.vtt", SAMPLES / "standup.vtt")
    store.put_object("docs", "report.pdf", SAMPLES / "sample_report.pdf")
    srv = Server(root, root.parent / "langgraph-dev.log").start()
    srv.store = store
    yield srv
    srv.stop()
    store.close()


@pytest.fixture
async def client(server):
    from langgraph_sdk import get_client

    return get_client(url=server.url, timeout=60)


async def _to_interrupt(client, graph: str, payload: dict) -> tuple[str, dict]:
    thread = await client.threads.create()
    await client.runs.wait(thread["thread_id"], graph, input=payload)
    state = await client.threads.get_state(thread["thread_id"])
    assert state["next"] == ["review"], state["next"]
    (interrupt,) = state["interrupts"]
    return thread["thread_id"], interrupt["value"]


def _checkpoint_keys(store, thread_id: str) -> list[str]:
    return [o.key for o in store.list_objects(STATE_BUCKET, f"v1/checkpoints/{thread_id}/")]


def _archive(store, thread_id: str, timeout: float = 60) -> dict:
    """The thread's archive, once the server's background writer has put it (read_archive's view)."""
    from marginalia.archive import read_archive
    from marginalia.errors import InvalidInput, ObjectNotFound

    uri = f"s3://{STATE_BUCKET}/v1/archives/{thread_id}.json"
    deadline = time.monotonic() + timeout
    while True:
        try:
            story = read_archive(store, uri)
            if not story["missing_attachments"]:  # its annotations are attached after the object is put
                return story
        except (ObjectNotFound, InvalidInput):  # not there yet, or not whole yet
            pass
        assert time.monotonic() < deadline, f"no whole archive of {thread_id} after {timeout} s"
        time.sleep(0.2)


def _no_archive(store, thread_id: str) -> bool:
    return not list(store.list_objects(STATE_BUCKET, f"v1/archives/{thread_id}.json"))


async def test_every_graph_is_served(client):
    graphs = {a["graph_id"] for a in await client.assistants.search()}
    assert graphs == {"minutes", "pdf_summary", "ppt_outline", "search"}


async def test_minutes_interrupt_then_approve(client, server):
    thread_id, pending = await _to_interrupt(client, "minutes", {"object_uri": "s3://meetings/standup.vtt"})
    assert pending["agent"] == "minutes" and pending["proposal"]["action_items"]
    assert "meeting_minutes" not in {a.name for a in server.store.list_annotations("meetings", "standup.vtt")}
    assert _no_archive(server.store, thread_id)  # waiting for a reviewer is not the end of the thread

    final = await client.runs.wait(
        thread_id, "minutes", command={"resume": {"action": "approve", "reviewer": "studio"}}
    )
    assert {a["name"] for a in final["annotations"]} == {"meeting_minutes", "action_items"}
    state = await client.threads.get_state(thread_id)
    assert state["next"] == [] and state["values"]["approved"] == pending["proposal"]
    minutes = server.store.get_annotation("meetings", "standup.vtt", "meeting_minutes").json()
    assert minutes["summary"] == pending["proposal"]["summary"]
    assert minutes["provenance"]["thread_id"] == thread_id
    assert minutes["provenance"]["trace_id"] == tracing.trace_id_for(thread_id)  # same id as a CLI run would get

    # the server's persistence is S3Saver: the thread's checkpoints are objects in the local bucket
    assert len(_checkpoint_keys(server.store, thread_id)) >= 8
    from marginalia.checkpointers import S3Saver

    saver = S3Saver.from_uri(f"s3://{STATE_BUCKET}/v1", store=server.store)
    latest = saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    assert latest.checkpoint["channel_values"]["approved"] == pending["proposal"]
    assert latest.metadata["trace_id"] == tracing.trace_id_for(thread_id)

    # the end of the thread wrote its self-contained archive, as a CLI run's end does
    story = _archive(server.store, thread_id)
    assert story["thread_id"] == thread_id and story["agent"] == "minutes" and story["status"] == "done"
    assert story["object_uri"] == "s3://meetings/standup.vtt"
    assert [d["action"] for d in story["decisions"]] == ["approve"] and story["decisions"][0]["reviewer"] == "studio"
    assert {a["name"] for a in story["annotations_written"]} == {"meeting_minutes", "action_items"}
    assert latest.config["configurable"]["checkpoint_id"] in {s["checkpoint_id"] for s in story["steps"]}
    assert story["attached"]["object.meeting_minutes"]["document"]["summary"] == minutes["summary"]


async def test_minutes_edit_with_a_patch(client, server):
    server.store.put_object("meetings", "edited.vtt", SAMPLES / "standup.vtt")
    thread_id, pending = await _to_interrupt(client, "minutes", {"object_uri": "s3://meetings/edited.vtt"})
    patch = [{"op": "replace", "path": "/title", "value": "Stand-up, edited in Studio"}]
    await client.runs.wait(thread_id, "minutes", command={"resume": {"action": "edit", "patch": patch}})
    state = await client.threads.get_state(thread_id)
    assert state["values"]["approved"]["title"] == "Stand-up, edited in Studio"
    assert state["values"]["iterations"][-1]["action"] == "edit"
    written = server.store.get_annotation("meetings", "edited.vtt", "meeting_minutes").json()
    assert written["title"] == "Stand-up, edited in Studio"
    assert written["action_items"] == pending["proposal"]["action_items"]


async def test_pdf_summary_interrupt_then_edit(client, server):
    thread_id, pending = await _to_interrupt(
        client, "pdf_summary", {"object_uri": "s3://docs/report.pdf", "auto_approve": False}
    )
    assert pending["proposal"]["page_count"] >= 1 and pending["proposal"]["summary"]
    edited = {**pending["proposal"], "summary": "A short report, summarised by hand in Studio."}
    await client.runs.wait(thread_id, "pdf_summary", command={"resume": {"action": "edit", "edited": edited}})
    summary = server.store.get_annotation("docs", "report.pdf", "summary").json()
    assert summary["summary"] == "A short report, summarised by hand in Studio."
    assert summary["provenance"]["thread_id"] == thread_id
    assert _checkpoint_keys(server.store, thread_id)
    story = _archive(server.store, thread_id)
    assert story["agent"] == "pdf_summary" and [d["action"] for d in story["decisions"]] == ["edit"]
    assert story["attached"]["pdf.pages"]["pages"]  # the page texts the summary was made from


async def test_ppt_outline_interrupt_then_approve(client, server):
    request = {
        "object_uri": "s3://decks/standup.pptx",
        "request": "Five slides on the stand-up decisions",
        "slides": 5,
        "source_uris": ["s3://meetings/standup.vtt"],
    }
    thread_id, pending = await _to_interrupt(client, "ppt_outline", request)
    assert len(pending["proposal"]["slides"]) == 5
    assert not list(server.store.list_objects("decks"))  # nothing rendered before approval
    await client.runs.wait(thread_id, "ppt_outline", command={"resume": {"action": "approve"}})
    deck = server.store.head_object("decks", "standup.pptx")
    assert deck.size > 0
    outline = server.store.get_annotation("decks", "standup.pptx", "outline").json()
    assert [s["title"] for s in outline["outline"]["slides"]] == [s["title"] for s in pending["proposal"]["slides"]]
    assert outline["provenance"]["thread_id"] == thread_id


async def test_search_answers_over_http(client, server):
    server.store.put_object("docs", "unsummarised.pdf", SAMPLES / "sample_report.pdf")
    thread = await client.threads.create()
    result = await client.runs.wait(
        thread["thread_id"], "search", input={"question": "which PDFs haven't been summarised yet?"}
    )
    assert result.get("error") in (None, ""), result
    assert "select" in result["sql"].lower()
    assert "s3://docs/unsummarised.pdf" in result["matches"]


async def test_every_graph_describes_its_input_and_the_server_warns_of_no_schema(client, server):
    """Studio builds its forms from ``input_schema`` and ``context_schema``; before, every graph's
    input schema failed on Python 3.11 (``typing.TypedDict`` in the state), the context schema
    failed on a live Store, and the server logged a warning for each."""
    for assistant in await client.assistants.search():
        schemas = await client.assistants.get_schemas(assistant["assistant_id"])
        assert schemas["input_schema"] and schemas["input_schema"].get("properties"), assistant["graph_id"]
        assert schemas.get("context_schema") is not None, assistant["graph_id"]
    log = _ANSI.sub("", server.log.read_text(errors="replace"))
    failed = [line for line in log.splitlines() if "failed to get" in line.lower() and "schema" in line.lower()]
    assert not failed, failed  # input, config and context schemas all build


def _cli(server, *args: str) -> subprocess.CompletedProcess:
    """``marginalia ARGS`` in a new process, on the server's store (as a reviewer's shell would be)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LANGFUSE_", "MARGINALIA_"))}
    env.update(
        MARGINALIA_STORE=f"local:{server.root}",
        MARGINALIA_ENGINE="offline",
        PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]),
    )
    return subprocess.run(
        [sys.executable, "-m", "marginalia", *args], env=env, capture_output=True, text=True, timeout=300
    )


def _threads(server, *flags: str) -> dict[str, dict]:
    done = _cli(server, "threads", *flags, "--json")
    assert done.returncode == 0, done.stderr
    return {t["thread_id"]: t for t in json.loads(done.stdout)}


async def test_a_server_thread_is_indexed_pending_then_approved_from_the_cli(client, server):
    """Issue 14 item 4: a thread run by ``langgraph dev`` is in ``marginalia threads --pending``
    with its agent, object and trace id, ``marginalia approve`` takes it forward, and it ends
    ``done`` with its object (before, it was missing, and showed up with an empty object)."""
    server.store.put_object("meetings", "served.vtt", SAMPLES / "standup.vtt")
    thread_id, pending = await _to_interrupt(client, "minutes", {"object_uri": "s3://meetings/served.vtt"})

    waiting = _threads(server, "--pending")
    assert thread_id in waiting, waiting
    record = waiting[thread_id]
    assert record["agent"] == "minutes" and record["status"] == "waiting"
    assert record["object_uri"] == "s3://meetings/served.vtt"
    assert record["trace_id"] == tracing.trace_id_for(thread_id)

    approved = _cli(server, "approve", thread_id, "--reviewer", "cli", "--json")
    assert approved.returncode == 0, approved.stderr
    minutes = server.store.get_annotation("meetings", "served.vtt", "meeting_minutes").json()
    assert minutes["summary"] == pending["proposal"]["summary"]
    assert minutes["provenance"]["thread_id"] == thread_id

    after = _threads(server)[thread_id]
    assert after["status"] == "done" and after["object_uri"] == "s3://meetings/served.vtt"
    assert thread_id not in _threads(server, "--pending")
    state = await client.threads.get_state(thread_id)  # the server reads the same checkpoints
    assert state["next"] == [] and state["values"]["approved"] == pending["proposal"]
    log = _ANSI.sub("", server.log.read_text(errors="replace"))
    trouble = [line for line in log.splitlines() if thread_id in line and ("Error in" in line or "could not" in line)]
    assert not trouble, trouble  # the index, lease and archive were written without a complaint


async def test_a_server_run_is_refused_while_another_worker_holds_the_thread(client, server):
    """The server takes a thread's lease as every runner does: while a worker (here this process)
    holds it, the server's run is refused with the busy message and the thread stays pending."""
    from marginalia.lease import thread_lease

    server.store.put_object("meetings", "held.vtt", SAMPLES / "standup.vtt")
    thread_id, _ = await _to_interrupt(client, "minutes", {"object_uri": "s3://meetings/held.vtt"})
    with thread_lease(server.store, state_location(server.store), thread_id):
        refused = await client.runs.wait(
            thread_id, "minutes", command={"resume": {"action": "approve"}}, raise_error=False
        )
        assert refused["__error__"]["error"] == "ThreadBusy", refused  # the server hides the message itself
    assert _threads(server, "--pending")[thread_id]["status"] == "waiting"
    assert "meeting_minutes" not in {a.name for a in server.store.list_annotations("meetings", "held.vtt")}

    await client.runs.wait(thread_id, "minutes", command={"resume": {"action": "approve"}})  # lease released: runs
    assert _threads(server)[thread_id]["status"] == "done"
    assert current_holder(server.store, state_location(server.store), thread_id) is None  # the server gave it back


async def test_a_failed_server_run_keeps_its_error_and_the_engine_its_context_named(client, server):
    """The run's context (Studio's form) names the engine; the record keeps it, so a resume in
    another process rebuilds the same one. Here Bedrock without a region fails the run: the thread
    is in ``threads --failed`` with its object and the error."""
    server.store.put_object("meetings", "bedrock.vtt", SAMPLES / "standup.vtt")
    thread = await client.threads.create()
    await client.runs.wait(
        thread["thread_id"],
        "minutes",
        input={"object_uri": "s3://meetings/bedrock.vtt"},
        context={"engine": "bedrock:us.amazon.nova-lite-v1:0"},
        raise_error=False,
    )
    failed = _threads(server, "--failed")[thread["thread_id"]]
    assert failed["status"] == "failed" and failed["object_uri"] == "s3://meetings/bedrock.vtt"
    assert failed["engine"] == "bedrock:us.amazon.nova-lite-v1:0"
    assert "AWS region" in failed["error"]
    lease = current_holder(server.store, state_location(server.store), thread["thread_id"])
    assert lease is None  # released on the error too


def test_the_readme_client_example_runs_against_the_server(server):
    """The README's Studio client block, verbatim, on the server's port through ``PORT`` (item 14):
    the thread it runs stops for approval, is approved and ends done in the thread index."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("### LangGraph Studio", 1)[1].split("\n### ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    if not server.store.bucket_exists("demo"):
        server.store.create_bucket("demo")
    server.store.put_object("demo", "meetings/standup.vtt", SAMPLES / "standup.vtt")
    env = {**os.environ, "PORT": server.url.rsplit(":", 1)[1]}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    ran = [t for t in _threads(server).values() if t["object_uri"] == "s3://demo/meetings/standup.vtt"]
    assert [t["status"] for t in ran] == ["done"], ran
    assert server.store.get_annotation("demo", "meetings/standup.vtt", "meeting_minutes").json()["summary"]


async def test_a_dead_langfuse_is_one_warning_line_in_the_server_log(tmp_path):
    """Issue 14 item 13 under ``langgraph dev``: with Langfuse keys set and its server down (a
    closed loopback port), the server's log gets one warning line about traces, not the
    exporter's retry messages and a failure line per batch."""
    from langgraph_sdk import get_client

    from marginalia.storage.local import LocalStore

    root = tmp_path / "store"
    with LocalStore(root) as store:
        store.create_bucket("meetings")
        store.put_object("meetings", "standup.vtt", SAMPLES / "standup.vtt")
    dead = _free_port()  # nothing listens there
    srv = Server(root, tmp_path / "langgraph-dev.log").start(
        LANGFUSE_PUBLIC_KEY="pk-lf-test",
        LANGFUSE_SECRET_KEY="sk-lf-test-secret",
        LANGFUSE_BASE_URL=f"http://127.0.0.1:{dead}",
        LANGFUSE_TIMEOUT="1",
    )
    try:
        client = get_client(url=srv.url, timeout=60)
        thread = await client.threads.create()
        await client.runs.wait(thread["thread_id"], "minutes", input={"object_uri": "s3://meetings/standup.vtt"})
        await client.runs.wait(thread["thread_id"], "minutes", command={"resume": {"action": "approve"}})
        deadline = time.monotonic() + 120  # the exporter gives up on its own schedule
        while not re.search(r"traces not exported|Failed to export", srv.log.read_text(errors="replace")):
            assert time.monotonic() < deadline, "no warning about the dead Langfuse"
            time.sleep(0.5)
    finally:
        srv.stop()
    log = _ANSI.sub("", srv.log.read_text(errors="replace")).splitlines()
    about_traces = [line for line in log if re.search(r"export|otel/v1|Traceback|Connection refused", line, re.I)]
    assert len(about_traces) == 1 and "traces not exported" in about_traces[0], about_traces
    assert not any("sk-lf-test-secret" in line for line in log)


async def test_a_server_thread_without_a_record_is_approved_with_its_object(client, server):
    """A thread with no index record (run by a server before it kept them, or a lost record):
    ``marginalia approve`` rebuilds the record, and its object comes from the thread's state
    (the checkpoint metadata of a server run has none): before, the object column was empty."""
    server.store.put_object("meetings", "unrecorded.vtt", SAMPLES / "standup.vtt")
    thread_id, _ = await _to_interrupt(client, "minutes", {"object_uri": "s3://meetings/unrecorded.vtt"})
    server.store.delete_object(STATE_BUCKET, f"v1/threads/{thread_id}.json")
    assert thread_id not in _threads(server)

    approved = _cli(server, "approve", thread_id, "--json")
    assert approved.returncode == 0, approved.stderr
    after = _threads(server)[thread_id]
    assert after["status"] == "done" and after["object_uri"] == "s3://meetings/unrecorded.vtt"


async def test_a_server_thread_rejected_without_feedback_ends_rejected(client, server):
    """A reject with no feedback discards the proposal: the thread ends ``rejected`` in the index,
    nothing is written, and it is no longer pending."""
    server.store.put_object("meetings", "discarded.vtt", SAMPLES / "standup.vtt")
    thread_id, _ = await _to_interrupt(client, "minutes", {"object_uri": "s3://meetings/discarded.vtt"})
    await client.runs.wait(thread_id, "minutes", command={"resume": {"action": "reject"}})
    record = _threads(server)[thread_id]
    assert record["status"] == "rejected" and record["object_uri"] == "s3://meetings/discarded.vtt"
    assert thread_id not in _threads(server, "--pending")
    assert "meeting_minutes" not in {a.name for a in server.store.list_annotations("meetings", "discarded.vtt")}
