"""Every graph langgraph.json exports describes its runtime context as JSON (Studio's context form).

The context's fields are spec strings; live objects a Python caller may pass instead (a Store, an
engine, boto3 clients) are accepted but left out of the schema.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from marginalia.context import AgentContext

CONFIG = json.loads((Path(__file__).resolve().parents[2] / "langgraph.json").read_text())


@pytest.mark.parametrize("name", sorted(CONFIG["graphs"]))
def test_context_jsonschema_builds_for_every_exported_graph(name):
    studio = importlib.import_module("marginalia.studio")
    graph = getattr(studio, name)({})
    schema = graph.get_context_jsonschema()
    json.dumps(schema)  # JSON all the way down
    fields = schema["properties"]
    assert {"store", "engine"} <= set(fields) and "clients" not in fields
    assert {"type": "string"} in fields["store"]["anyOf"]  # a spec: local:<dir> | s3
    if name in ("pdf_summary", "ppt_outline"):
        assert "password" in fields
    if name == "search":
        assert "bucket" in fields


def test_live_objects_still_fit_the_context(tmp_path):
    from marginalia.engines.offline import OfflineEngine
    from marginalia.storage.local import LocalStore

    with LocalStore(tmp_path) as store:
        ctx = AgentContext(store=store, engine=OfflineEngine(), clients={"transcribe": object()})
        assert ctx.store is store and ctx.engine.name == "offline"
