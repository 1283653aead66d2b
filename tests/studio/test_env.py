"""``langgraph dev`` reads ``.env`` (langgraph.json's ``"env"``) and ``.env.example`` names every setting.

Before, ``"env"`` was ``{}`` and no file said which variables exist beyond the README's table.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
NAME = re.compile(r"\b((?:MARGINALIA|LANGFUSE)_[A-Z0-9_]*[A-Z0-9])\b")


def example_names() -> set[str]:
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.M)}


def test_langgraph_json_loads_dot_env():
    assert json.loads((REPO / "langgraph.json").read_text())["env"] == ".env"
    assert ".env" in (REPO / ".gitignore").read_text().splitlines()  # secrets never committed


def test_env_example_names_every_setting_the_code_reads():
    read = {n for path in (REPO / "src").rglob("*.py") for n in NAME.findall(path.read_text(encoding="utf-8"))}
    read -= {n for n in read if n.endswith("_")}  # prefixes in prose (MARGINALIA_CHECKPOINT_*)
    assert read - example_names() == set()


def test_env_example_names_every_variable_of_the_readme_configuration():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    assert set(NAME.findall(table)) - example_names() == set()
