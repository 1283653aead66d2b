"""PDF extraction with a bound on time and memory, per page and per document.

pypdf runs in Python: one hostile page (a content stream that decompresses to gigabytes, an
operator loop) can take minutes or gigabytes inside a single call, where no deadline between
pages helps. :func:`bounded_iter_pages` and :func:`bounded_pdf_info` run the extraction entry
points of :mod:`marginalia.tools.pdf` (unchanged: this module only wraps them) in a child
process that

* has an address-space limit (``RLIMIT_AS``: ``page_mb`` above what the child starts with) and a
  CPU-time limit for the document (``RLIMIT_CPU``);
* sends each page's text as soon as it is out, so the parent holds one page at a time and
  times each page (``page_seconds``) and the document (``document_seconds``).

When a bound is hit the child is killed and the call raises :class:`UnsupportedInput` in one
line naming the file, the page and the limit: ``report.pdf: page 7 went over the 20 s per-page
limit``. Errors of the PDF itself (corrupt, encrypted, no text layer) come back as the same
exceptions ``tools.pdf`` raises.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from .. import errors
from ..errors import MarginaliaError, UnsupportedInput

__all__ = ["Limits", "bounded_iter_pages", "bounded_pdf_info"]


@dataclass(frozen=True)
class Limits:
    """Bounds of one extraction (defaults fit a 2-core machine shared by several workers)."""

    page_seconds: float = 30.0  # wall time of one page
    document_seconds: float = 300.0  # wall time (and CPU seconds) of the whole call
    page_mb: int = 768  # memory the child may grow by while reading (one page at a time)


_CTX: Any = None


def _context():
    global _CTX
    if _CTX is None:
        _CTX = multiprocessing.get_context("forkserver")
        _CTX.set_forkserver_preload(["marginalia.tools.pdf"])
    return _CTX


def _limit_child(limits: Limits) -> None:
    with open("/proc/self/statm") as f:  # pages of virtual memory the child starts with
        start = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    cap = start + limits.page_mb * (1 << 20)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    cpu = max(1, int(limits.document_seconds))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))


def _child(conn, call: str, data: bytes, options: dict, limits: Limits) -> None:
    """In the child: run ``tools.pdf.<call>`` on ``data``, sending results as they come."""
    import io

    from . import pdf

    try:
        _limit_child(limits)
        source = io.BytesIO(data)
        del data
        if call == "pages":
            for number, text in pdf.iter_pages(source, time_budget=None, **options):
                conn.send(("page", number, text))
            conn.send(("end", None, None))
        else:
            conn.send(("info", None, pdf.pdf_info(source, **options)))
    except MemoryError:
        conn.send(("memory", None, None))
    except MarginaliaError as exc:
        if isinstance(exc.__cause__, MemoryError):  # tools.pdf calls any failure of a page "corrupt"
            conn.send(("memory", None, None))
        else:
            conn.send(("error", type(exc).__name__, str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported by the parent as one line
        conn.send(("error", "InvalidInput", f"{options.get('name')}: {type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def _read_all(source: Path | str | BinaryIO | bytes) -> bytes:
    if isinstance(source, bytes):
        return source
    if isinstance(source, (str, Path)):
        return Path(source).read_bytes()
    source.seek(0)
    return source.read()


def _source_name(source: Path | str | BinaryIO | bytes, options: dict) -> str:
    """The name errors give the document (never the bytes of an in-memory PDF)."""
    return options.get("name") or (str(source) if isinstance(source, (str, Path)) else "the PDF")


def _run(call: str, source, options: dict, limits: Limits) -> Iterator[tuple[str, Any, Any]]:
    """Messages of the child for ``call``; the bounds enforced, the child always reaped."""
    import time

    name = _source_name(source, options)
    options = {**options, "name": name}
    parent, child = _context().Pipe(duplex=False)
    proc = _context().Process(target=_child, args=(child, call, _read_all(source), options, limits), daemon=True)
    proc.start()
    child.close()
    deadline = time.monotonic() + limits.document_seconds
    page = options.get("first", 1)  # the page being read
    try:
        while True:
            wait = min(limits.page_seconds, deadline - time.monotonic())
            if wait <= 0 or not parent.poll(wait):
                if time.monotonic() >= deadline:
                    raise UnsupportedInput(
                        f"{name}: page {page} went over the document's {limits.document_seconds:g} s limit"
                    )
                raise UnsupportedInput(f"{name}: page {page} went over the {limits.page_seconds:g} s per-page limit")
            try:
                kind, a, b = parent.recv()
            except EOFError:  # killed: the CPU limit (SIGXCPU/SIGKILL) or a crash in a parser
                proc.join(5)
                what = (
                    f"the document's {limits.document_seconds:g} s CPU limit"
                    if proc.exitcode in (-24, -9)
                    else f"a crash of the PDF parser (exit {proc.exitcode})"
                )
                raise UnsupportedInput(f"{name}: page {page} stopped by {what}") from None
            if kind == "memory":
                raise UnsupportedInput(f"{name}: page {page} went over the {limits.page_mb} MB memory limit")
            if kind == "error":
                raise getattr(errors, a, errors.InvalidInput)(b)
            yield kind, a, b
            if kind == "page":
                page = a + 1
            else:
                return
    finally:
        parent.close()
        if proc.is_alive():
            proc.kill()
        proc.join()


def bounded_iter_pages(
    source: Path | str | BinaryIO | bytes, *, limits: Limits | None = None, **options
) -> Iterator[tuple[int, str]]:
    """:func:`marginalia.tools.pdf.iter_pages` (same options) within ``limits``."""
    for kind, number, text in _run("pages", source, options, limits or Limits()):
        if kind == "page":
            yield number, text


def bounded_pdf_info(source: Path | str | BinaryIO | bytes, *, limits: Limits | None = None, **options) -> dict:
    """:func:`marginalia.tools.pdf.pdf_info` (same options) within ``limits``."""
    for _kind, _, info in _run("info", source, options, limits or Limits()):
        return info
    raise UnsupportedInput(f"{_source_name(source, options)}: no document information came back")
