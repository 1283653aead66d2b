"""The demo notebooks stay runnable, reviewable and switchable (their execution is CI's job).

``pytest --nbmake notebooks/`` executes every notebook in a fresh kernel; this module checks, in
milliseconds, what execution cannot: that they are committed without outputs (readable diffs, and
CI proves they run rather than showing stale results), that papermill finds their parameters, that
the kernel they name exists in this environment, and that they avoid what breaks offline or on a
user's machine (a bare graph as a cell's last line renders through a web service; the shared fixtures (``../shared/fixtures``)
only exist on dev machines).
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = ["01_minutes", "02_pdf_summary", "03_ppt_outline", "04_search", "05_durable_execution"]
PARAMETERS = {"STORE": '"local"', "ENGINE": '"offline"', "BUCKET": '"demo"', "STATE": "None"}


def _load(name: str) -> dict:
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))


def _code(nb: dict) -> list[str]:
    return [
        "".join(c["source"]) if isinstance(c["source"], list) else c["source"]
        for c in nb["cells"]
        if c["cell_type"] == "code"
    ]


def test_every_demo_notebook_is_there_and_nothing_else():
    assert sorted(p.stem for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED


@pytest.mark.parametrize("name", EXPECTED)
def test_committed_without_outputs(name):
    nb = _load(name)
    fix = "run `python scripts/clear_notebooks.py` before committing"
    for n, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{name}.ipynb cell {n} has outputs: {fix}"
            assert cell["execution_count"] is None, f"{name}.ipynb cell {n} has an execution count: {fix}"
            assert "execution" not in cell["metadata"], f"{name}.ipynb cell {n} has run timings: {fix}"


@pytest.mark.parametrize("name", EXPECTED)
def test_papermill_finds_the_parameters(name):
    import papermill  # the notebooks extra (in dev): a missing papermill fails here, it does not skip

    tagged = [c for c in _load(name)["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{name}.ipynb needs exactly one cell tagged 'parameters'"
    found = papermill.inspect_notebook(str(NOTEBOOKS / f"{name}.ipynb"))
    assert {k: v["default"] for k, v in found.items()} == PARAMETERS


@pytest.mark.parametrize("name", EXPECTED)
def test_the_kernel_it_names_is_installed(name):
    from jupyter_client.kernelspec import KernelSpecManager

    kernel = _load(name)["metadata"]["kernelspec"]["name"]
    assert kernel == "python3", "use the kernel ipykernel installs in every environment"
    KernelSpecManager().get_kernel_spec(kernel)  # raises NoSuchKernel when missing


@pytest.mark.parametrize("name", EXPECTED)
def test_runs_offline_on_what_users_have(name):
    sources = _code(_load(name))
    text = "\n".join(sources)
    for dev_only in ("shared/fixtures", "../shared", "shared_fixtures", "MARGINALIA_SHARED_FIXTURES"):
        assert dev_only not in text, f"notebooks use the package's samples, not the dev-only fixtures ({dev_only})"
    assert "assert " in text, "a notebook asserts its key facts, so a broken one fails CI"
    for n, source in enumerate(sources):
        body = ast.parse(source.replace("await ", "")).body  # top-level await is fine in a notebook
        last = body[-1] if body else None
        if isinstance(last, ast.Expr):
            shown = ast.unparse(last.value)
            assert "graph" not in shown.lower() or "draw_mermaid" in shown, (
                f"{name}.ipynb code cell {n} ends with {shown!r}: a graph as a cell's last line renders through "
                "a web service; print graph.get_graph().draw_mermaid() instead"
            )
