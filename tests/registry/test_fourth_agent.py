"""Adding an agent = one module + one registration: ``word_count_agent`` is served everywhere.

The agent module (tests/registry/word_count_agent.py) is all there is; these tests show the run
driver, the Python API's resume, the CLI's approve and threads, batch, demo, the trace archive and
the LangGraph Studio factory all work for it without a line elsewhere naming it.
"""

from __future__ import annotations

import importlib
import json

import pytest

import marginalia
from marginalia import agents, context, runtime
from marginalia.errors import InvalidInput
from marginalia.testing.cli import run_cli


@pytest.fixture
def word_count(tmp_path, monkeypatch):

    monkeypatch.setenv("MARGINALIA_STORE", f"local:{tmp_path / 'store'}")
    monkeypatch.delenv("MARGINALIA_STATE", raising=False)
    monkeypatch.setenv("MARGINALIA_ENGINE", "offline")
    monkeypatch.setattr(context, "_DEFAULTS", {})
    module = importlib.import_module("word_count_agent")  # pytest puts this directory on sys.path
    agents.register_agent(module.AGENT, module.build, document=module.WordCount, **_declared(module.SPEC))
    store = context.resolve_store(None)
    store.create_bucket("notes")
    store.put_object("notes", "a/one.txt", b"three little words\nand four more here\n")
    store.put_object("notes", "a/two.txt", b"two words\n")
    yield store
    agents.unregister_agent(module.AGENT)


def _declared(spec: agents.AgentSpec) -> dict:
    skip = {"name", "build", "document", "module"}
    return {f: getattr(spec, f) for f in spec.__dataclass_fields__ if f not in skip}


def test_the_run_driver_and_the_public_resume_serve_a_registered_agent(word_count):
    run = runtime.start("word_count", "s3://notes/a/one.txt", {})
    waiting = runtime.drive(run)
    assert (waiting.agent, waiting.status, waiting.proposal) == ("word_count", "waiting", {"words": 7, "lines": 2})

    done = marginalia.resume(waiting.thread_id, action="edit", patch=[{"op": "replace", "path": "/words", "value": 8}])
    assert done.status == "done" and [a.name for a in done.annotations] == ["word_count"]
    payload = word_count.get_annotation("notes", "a/one.txt", "word_count").json()
    assert payload["words"] == 8 and payload["provenance"]["agent"] == "word_count"


def test_its_input_check_refuses_before_anything_is_written(word_count):
    word_count.put_object("notes", "a/pic.png", b"\x89PNG")
    with pytest.raises(InvalidInput, match="reads .txt objects only"):
        runtime.start("word_count", "s3://notes/a/pic.png", {}, thread_id="wc-refused")
    state = context.state_location(word_count)
    assert not list(word_count.list_objects(state.bucket, state.key))  # no thread record, lease or checkpoint


def test_cli_approve_renders_it_and_threads_lists_it(word_count):
    waiting = runtime.drive(runtime.start("word_count", "s3://notes/a/two.txt", {}, thread_id="wc-cli"))
    code, out, err = run_cli("threads", "--pending")
    assert code == 0 and "wc-cli" in out and "word_count" in out, err
    code, out, err = run_cli("approve", waiting.thread_id)
    assert code == 0, err
    assert "'words': 2" in out  # its render hook (rich.pretty.Pretty) showed the approved document
    assert "wrote word_count on s3://notes/a/two.txt" in " ".join(out.split())


def test_batch_runs_it_by_its_batch_name(word_count):
    from marginalia.batch import batch

    rows = batch("s3://notes/a/", agent="words", approve=True, workers=1)
    assert [(r.uri.rsplit("/", 1)[-1], r.status) for r in rows] == [("one.txt", "done"), ("two.txt", "done")]
    again = batch("s3://notes/a/", agent="words", approve=True, workers=1)
    assert {r.status for r in again} == {"skipped"}


def test_its_archive_carries_the_attachments_it_declares(word_count):
    from marginalia.archive import archive_uri, read_archive

    done = runtime.drive(runtime.start("word_count", "s3://notes/a/two.txt", {}, approve=True))
    story = read_archive(word_count, str(archive_uri(context.state_location(word_count), done.thread_id)))
    assert story["attached"]["word_count.seen"] == {"uri": "s3://notes/a/two.txt", "approved": {"words": 2, "lines": 1}}


def test_demo_and_studio_pick_it_up(word_count):
    from marginalia import studio
    from marginalia.cli.agent_cmds import demo_steps

    assert [s.name for s in demo_steps()] == ["minutes", "summarize", "outline", "word_count"]
    graph = studio.factory("word_count")({"configurable": {"thread_id": "wc-studio"}})
    assert graph.name == "word_count" and "count" in graph.get_graph().nodes
    assert graph.config["metadata"]["graph_module"] == "word_count_agent"
    schema = graph.get_context_jsonschema()
    assert json.loads(json.dumps(schema))["properties"]["store"]


def test_an_unknown_agent_is_named():
    with pytest.raises(marginalia.errors.ConfigurationError, match="no agent named 'nope'"):
        agents.get_agent("nope")


def test_langgraph_json_names_exactly_the_studio_exports():
    """What the server loads (langgraph.json) and what the registry exports stay one list."""
    from pathlib import Path

    from marginalia import studio

    config = json.loads((Path(__file__).resolve().parents[2] / "langgraph.json").read_text())
    shipped = [spec.name for spec in agents.all_agents() if spec.module in agents.BUILTIN_AGENT_MODULES]
    assert sorted(config["graphs"]) == sorted([*shipped, "search"]) and set(shipped) <= set(studio.AGENTS)
    for name, target in config["graphs"].items():
        assert target == f"./src/marginalia/studio.py:{name}" and callable(getattr(studio, name))


def test_each_step_is_checkpointed_before_the_next_starts(word_count, monkeypatch):
    """durability="sync": the checkpoint after ``ingest`` is stored before ``count`` starts (a slow
    saver makes LangGraph's default, "async", start ``count`` while that write is in flight)."""
    import threading
    import time

    import word_count_agent

    events: list[str] = []
    lock = threading.Lock()
    opened = importlib.import_module("marginalia.runtime").open_checkpointer

    def slow_saver(store, state):
        saver = opened(store, state)
        put = saver.put

        def slow_put(config, checkpoint, metadata, new_versions):
            time.sleep(0.3)  # a slow store: only makes an overlap observable, nothing is timed
            stored = put(config, checkpoint, metadata, new_versions)
            with lock:
                events.append(f"stored step {metadata.get('step')}")
            return stored

        saver.put = slow_put
        return saver

    count = word_count_agent.count

    def counting(state, runtime):  # LangGraph hands the runtime to a parameter of that name
        with lock:
            events.append("count starts")
        return count(state, runtime)

    driver = importlib.import_module("marginalia.runtime")
    # start() (runtime.prepare) opens the run's checkpointer
    monkeypatch.setattr(importlib.import_module("marginalia.runtime.prepare"), "open_checkpointer", slow_saver)
    monkeypatch.setattr(word_count_agent, "count", counting)
    driver.drive(driver.start("word_count", "s3://notes/a/two.txt", {}))
    assert events.index("stored step 0") < events.index("count starts"), events
