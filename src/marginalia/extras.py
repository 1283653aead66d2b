"""The optional parts of Marginalia and the extra that installs each one.

``pip install marginalia`` carries what the CLI, the Python API and ``marginalia demo`` import on
their default path (local store, offline engine, search over SQLite). The rest is opt-in:

* ``marginalia[mcp]`` — ``marginalia mcp``, the MCP server (:mod:`marginalia.search.mcp_server`);
* ``marginalia[temporal]`` — ``marginalia worker``, ``--on temporal`` (:mod:`marginalia.temporal`);
* ``marginalia[testing]`` — the S3 test server with annotation routes (:mod:`marginalia.testing.s3_server`).

A module that needs one imports it inside :func:`requires`, so using that part without its extra
is one clear line naming the extra (``marginalia mcp`` → ``pip install 'marginalia[mcp]'``), not a
traceback ending in ``No module named 'mcp'``. The other extras serve tools beside the package,
which imports nothing of them: ``studio`` (``langgraph dev``), ``notebooks``, ``bench`` and ``dev``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from .errors import ConfigurationError

__all__ = ["EXTRAS", "MissingExtra", "requires"]

#: extra -> the top-level modules it brings that Marginalia imports (pyproject's optional-dependencies).
EXTRAS: dict[str, tuple[str, ...]] = {
    "mcp": ("mcp",),
    "temporal": ("temporalio",),
    "testing": ("moto", "werkzeug"),
}


class MissingExtra(ConfigurationError, ImportError):
    """An optional part was used without the extra that installs it (a ConfigurationError: the CLI
    prints it as one line and exits 2; an ImportError: ``import`` callers see what they expect)."""

    def __init__(self, feature: str, extra: str, module: str):
        super().__init__(
            f"{feature} needs the '{extra}' extra ({module} is not installed): pip install 'marginalia[{extra}]'"
        )
        self.extra, self.name = extra, module


@contextlib.contextmanager
def requires(extra: str, feature: str) -> Iterator[None]:
    """Imports in this block that fail because ``extra`` is not installed raise :class:`MissingExtra`."""
    try:
        yield
    except ModuleNotFoundError as exc:
        module = (exc.name or "").partition(".")[0]
        if module not in EXTRAS[extra]:
            raise
        raise MissingExtra(feature, extra, module) from None
