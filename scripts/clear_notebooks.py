"""Clear outputs, execution counts and run timings of the demo notebooks, so they are committed clean.

CI executes every notebook in a fresh kernel (``pytest --nbmake notebooks/``), so stored outputs
would only make diffs unreadable and could show results the code no longer produces;
``tests/test_notebooks.py`` refuses them. Usage: ``python scripts/clear_notebooks.py [FILE ...]``
(default: every ``notebooks/*.ipynb``). Cell ids and tags are kept; ``language_info`` is cut to the
language name (Jupyter adds the Python version of whoever saved last).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def clear(path: Path) -> bool:
    """Clear ``path`` in place; True when it changed."""
    nb = nbformat.read(path, as_version=4)
    changed = False
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.outputs or cell.execution_count is not None):
            cell.outputs, cell.execution_count, changed = [], None, True
        if cell.metadata.pop("execution", None) is not None:  # per-cell timings nbclient records
            changed = True
    language = nb.metadata.get("language_info", {}).get("name", "python")
    if nb.metadata.get("language_info") != {"name": language}:
        nb.metadata["language_info"], changed = {"name": language}, True
    if changed:
        nbformat.write(nb, path)
    return changed


def main(argv: list[str]) -> int:
    paths = [Path(a) for a in argv] or sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))
    for path in paths:
        print(f"{'cleared' if clear(path) else 'clean  '} {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
