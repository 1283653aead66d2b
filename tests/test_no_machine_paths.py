"""No file of the repository names a directory of the machine it was written on (under /work,
/home/<user>, /Users/<user> or /root): docs and tests say ``../shared`` or the variable the code
reads (``MARGINALIA_SHARED_FIXTURES``), commands say ``.venv/bin/...``."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MACHINE_PATH = re.compile(r"(?<![\w.])/(?:work/|home/[a-z]|Users/[A-Za-z]|root/)")
TEXT = {".py", ".md", ".ipynb", ".json", ".toml", ".txt", ".vtt", ".srt", ".yaml", ".yml", ".cfg", ".example", ""}
KEPT_DOT_FILES = {".ci", ".env.example", ".gitignore"}  # other dot-paths are caches and environments
SKIP_DIRS = {"node_modules", "__pycache__", "build", "dist", "results"}


def test_no_file_names_a_development_machine_path():
    found = []
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if not path.is_file() or SKIP_DIRS & set(rel.parts) or any(p.endswith(".egg-info") for p in rel.parts):
            continue
        if any(p.startswith(".") and p not in KEPT_DOT_FILES for p in rel.parts):
            continue
        if path.suffix not in TEXT or path.stat().st_size > 5_000_000:
            continue
        text = path.read_text("utf-8", errors="replace")
        found += [f"{rel}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}" for m in MACHINE_PATH.finditer(text)]
    assert not found, "\n".join(found)
