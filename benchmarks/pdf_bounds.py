"""PDF extraction with and without bounds: time and peak memory per document (issue 17 item 3).

    .venv/bin/python benchmarks/pdf_bounds.py [--mb 20 --mb 80] [--page-seconds 30]

Documents: the sample report (ordinary text), and generated hostile ones (``tests/tools/
test_pdf_bounds.heavy_pdf``: one page whose few-KB content stream inflates to MB MB of
operators). Each is read once by ``tools.pdf.read_pages`` unbounded (in a child process, so its
peak RSS is its own; stopped after --unbounded-cap seconds) and once by
``tools.pdf_bounds.bounded_iter_pages`` with the default limits. Prints one table row per
document and way: seconds, peak RSS of the extracting process (MB; bounded: the cap above its
starting size, which it cannot pass), and the outcome.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _unbounded(data: bytes, out) -> None:
    import io

    from marginalia.tools import pdf

    try:
        pages = pdf.read_pages(io.BytesIO(data), time_budget=None, name="doc")
        outcome = f"{len(pages)} pages"
    except Exception as exc:  # noqa: BLE001 - reported in the table
        outcome = f"{type(exc).__name__}: {str(exc)[:60]}"
    out.send((outcome, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))


def unbounded(data: bytes, cap: float) -> tuple[float, float, str]:
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_unbounded, args=(data, child))
    started = time.monotonic()
    proc.start()
    if parent.poll(cap):
        outcome, peak = parent.recv()
    else:
        with open(f"/proc/{proc.pid}/status") as f:
            peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
        outcome = f"still running after {cap:g} s (killed)"
        proc.kill()
    proc.join()
    return time.monotonic() - started, peak, outcome


def bounded(data: bytes, limits) -> tuple[float, float, str]:
    from marginalia.tools.pdf_bounds import bounded_iter_pages

    started = time.monotonic()
    try:
        outcome = f"{sum(1 for _ in bounded_iter_pages(data, name='doc', limits=limits))} pages"
    except Exception as exc:  # noqa: BLE001 - reported in the table
        outcome = str(exc)[:70]
    # The extracting child is the forkserver's, not ours (getrusage cannot see it): its memory is
    # capped at its starting size + page_mb by RLIMIT_AS; the column shows that cap's part.
    return time.monotonic() - started, float(limits.page_mb), outcome


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, action="append", help="inflated size of the hostile page (repeatable)")
    parser.add_argument("--page-seconds", type=float, default=30.0)
    parser.add_argument("--page-mb", type=int, default=768)
    parser.add_argument("--unbounded-cap", type=float, default=300.0)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests" / "tools"))
    from test_pdf_bounds import heavy_pdf

    from marginalia.tools.pdf_bounds import Limits

    limits = Limits(page_seconds=args.page_seconds, page_mb=args.page_mb)
    docs = [("sample_report.pdf", (ROOT / "src/marginalia/samples/sample_report.pdf").read_bytes())]
    docs += [(f"hostile page {mb} MB inflated", heavy_pdf(mb, pages_before=2)) for mb in args.mb or [20, 80]]
    print(f"limits: {limits}")
    print(f"{'document':32s} {'KB':>6s} {'way':9s} {'seconds':>8s} {'peak MB':>8s}  outcome")
    for label, data in docs:
        for way, fn in (
            ("unbounded", lambda d: unbounded(d, args.unbounded_cap)),
            ("bounded", lambda d: bounded(d, limits)),
        ):
            seconds, peak, outcome = fn(data)
            print(f"{label:32s} {len(data) / 1024:6.0f} {way:9s} {seconds:8.1f} {peak:8.0f}  {outcome}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
