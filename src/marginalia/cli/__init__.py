"""``marginalia`` command line. Each module registers its commands on :data:`app`."""

from __future__ import annotations

from .app import app, run
from . import storage_cmds  # noqa: F401  (put, get, ls, rm, cp, annotate, annotations, unannotate, mb)

__all__ = ["app", "main"]


def main() -> None:
    run()
