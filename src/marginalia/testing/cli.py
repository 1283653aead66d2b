"""Run the ``marginalia`` command line inside the current process, as a user's shell would see it.

For tests and notebooks: the command goes through the CLI's own error handling
(:func:`marginalia.cli.app.run`), so a bad input shows up exactly as a user sees it — an exit status
and one line on stderr — without the cost of a new interpreter.
"""

from __future__ import annotations

import contextlib
import io
import sys


def run_cli(*args: str) -> tuple[int, str, str]:
    """``marginalia ARGS`` in this process: ``(exit status, stdout, stderr)``."""
    from marginalia.cli.app import run

    out, err, argv = io.StringIO(), io.StringIO(), sys.argv
    sys.argv = ["marginalia", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            run()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = argv
    return code, out.getvalue(), err.getvalue()


def cli_local_store(root, monkeypatch, *buckets: str):
    """A :class:`~marginalia.storage.local.LocalStore` at ``root`` with ``buckets``, which CLI commands
    run through :func:`run_cli` use (``MARGINALIA_STORE`` set, ``MARGINALIA_STATE`` beside it)."""
    from marginalia.storage.local import LocalStore

    store = LocalStore(root)
    for bucket in buckets:
        store.create_bucket(bucket)
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{root}")
    monkeypatch.delenv("MARGINALIA_STATE", raising=False)
    return store
