"""``marginalia`` command line. Each module registers its commands on :data:`app`."""

from __future__ import annotations

from .app import app, run

# Registration order is the order of the help panels: keep it (isort: off).
# isort: off
from . import storage_cmds  # noqa: F401  put, get, ls, rm, cp, annotate, annotations, unannotate, mb
from . import agent_cmds  # noqa: F401  demo, minutes, approve, reject, threads
from . import document_cmds  # noqa: F401  summarize, outline (+ their demo steps)
from . import search_cmds  # noqa: F401  search, find, missing, reindex, tables, mcp
from . import ops_cmds  # noqa: F401  trace, archive
from . import batch_cmds  # noqa: F401  batch
from . import worker_cmds  # noqa: F401  worker (Temporal)
from . import samples_cmds  # noqa: F401  samples
from . import store_cmds  # noqa: F401  store check, store repair, store gc
# isort: on

__all__ = ["app", "main"]


def main() -> None:
    run()
