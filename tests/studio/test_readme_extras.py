"""The README's Studio and notebook sections say which extra brings their tools (issue 14 item 3).

Before, ``langgraph dev`` and ``papermill`` came only with ``[dev]``, which the sections did not
name, and no Jupyter to open the notebooks was installed at all.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text(encoding="utf-8")
EXTRAS = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]


def section(title: str) -> str:
    return README.split(f"### {title}", 1)[1].split("\n### ", 1)[0]


def requirements(extra: str) -> dict[str, str]:
    """``{distribution name: requirement}`` of ``extra`` in pyproject.toml."""
    return {re.split(r"[\[<>=!~; ]", req, maxsplit=1)[0].lower(): req for req in EXTRAS[extra]}


def test_the_studio_section_installs_the_studio_extra_and_it_brings_the_server_and_the_client():
    studio = section("LangGraph Studio")
    assert "pip install -e '.[studio]'" in studio
    wanted = requirements("studio")
    assert wanted["langgraph-cli"].startswith("langgraph-cli[inmem]")  # `langgraph dev` runs in memory
    assert "langgraph-sdk" in wanted  # the client of the example
    assert ".venv/bin/langgraph dev" in studio and "from langgraph_sdk import" in studio


def test_the_notebooks_section_installs_the_notebooks_extra_and_it_brings_jupyter_and_papermill():
    notebooks = section("Notebooks")
    assert "pip install -e '.[notebooks]'" in notebooks
    wanted = requirements("notebooks")
    assert {"jupyterlab", "papermill", "ipykernel"} <= set(wanted), wanted
    assert ".venv/bin/jupyter lab" in notebooks and "papermill notebooks/" in notebooks


def test_the_test_command_extra_includes_both():
    dev = " ".join(EXTRAS["dev"])
    included = set(re.findall(r"marginalia\[([^\]]*)\]", dev)[0].split(",")) if "marginalia[" in dev else set()
    assert {"studio", "notebooks"} <= included, EXTRAS["dev"]
