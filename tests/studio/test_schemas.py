"""Every graph ``langgraph.json`` exports describes its input and its context as JSON Schema
(Studio's input and context forms).

Before, ``get_input_jsonschema()`` raised on Python 3.11 for every graph: pydantic refuses
``typing.TypedDict`` there (the states now use ``typing_extensions.TypedDict``); and
``get_context_jsonschema()`` raised because the context held a live ``Store``.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
EXPORTED = json.loads((REPO / "langgraph.json").read_text())["graphs"]


def load(target: str):
    path, name = target.split(":")
    spec = importlib.util.spec_from_file_location("studio_under_test", REPO / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    factory = getattr(module, name)
    return factory({}) if callable(factory) and not hasattr(factory, "get_input_jsonschema") else factory


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_input_schema_builds(name):
    schema = load(EXPORTED[name]).get_input_jsonschema()
    assert schema["type"] == "object" and schema["properties"], name
    json.dumps(schema)  # JSON all the way down


@pytest.mark.parametrize("name", sorted(EXPORTED))
def test_context_schema_builds(name):
    schema = load(EXPORTED[name]).get_context_jsonschema()  # raised for a context holding a live Store
    assert schema["type"] == "object", name
    json.dumps(schema)
    for field in ("store", "engine"):  # Studio's form fields: spec strings ("local:<dir>", "offline")
        accepted = {branch.get("type") for branch in schema["properties"][field].get("anyOf", [])}
        assert "string" in accepted, (name, field, schema["properties"][field])
