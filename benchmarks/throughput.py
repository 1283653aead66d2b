"""Throughput of the offline document path on this machine: seconds per PDF page, per outline.

    .venv/bin/python benchmarks/throughput.py [--pages 200] [--fixtures ../shared/fixtures]

Measured, each the best of three runs (time.perf_counter):

* extraction: :func:`marginalia.tools.pdf.iter_pages` over a generated N-page report (the
  sample report's pages repeated) and over the real papers in the fixtures, per page;
* summarising: :func:`marginalia.engines.offline_summary.summarize_pages` on the same pages,
  per page, in chunks of 20 pages plus the merge (the map-reduce a graph runs);
* outlines: :func:`marginalia.engines.offline_outline.draft_outline` for the sample request from
  the sample's summary, per outline;
* rendering: :func:`marginalia.tools.slides.render_pptx` of that outline, per deck.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from marginalia.engines.offline_outline import draft_outline  # noqa: E402
from marginalia.engines.offline_summary import merge_summaries, summarize_pages  # noqa: E402
from marginalia.samples import make_sample_pdf  # noqa: E402
from marginalia.schemas import SourceContext  # noqa: E402
from marginalia.testing.fixtures import SHARED_FIXTURES  # noqa: E402
from marginalia.tools.pdf import pdf_info, read_pages  # noqa: E402
from marginalia.tools.slides import render_pptx  # noqa: E402

SAMPLES = Path(make_sample_pdf.__file__).parent
CHUNK = 20


def best_of(runs: int, fn) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def summarize_in_chunks(pages):
    parts = [summarize_pages(pages[i : i + CHUNK], first_page_abstract=(i == 0)) for i in range(0, len(pages), CHUNK)]
    return merge_summaries(parts, page_count=len(pages))


def report(page_count: int = 200, fixtures: Path = SHARED_FIXTURES) -> list[dict]:
    rows: list[dict] = []
    pages_of_sample = make_sample_pdf.SAMPLE_REPORT
    big = make_sample_pdf.text_pdf((pages_of_sample * (page_count // len(pages_of_sample) + 1))[:page_count])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"report-{page_count}.pdf"
        path.write_bytes(big)
        inputs = [(f"generated report ({page_count} pages)", path)]
        inputs += (
            [(p.name, p) for p in sorted((fixtures / "pdfs").glob("*.pdf"))] if (fixtures / "pdfs").is_dir() else []
        )
        for label, source in inputs:
            pages = read_pages(source)
            extract = best_of(3, lambda: read_pages(source))
            summarise = best_of(3, lambda: summarize_in_chunks(pages))
            rows.append(
                {
                    "input": label,
                    "pages": len(pages),
                    "extract s/page": round(extract / len(pages), 4),
                    "summarise s/page": round(summarise / len(pages), 4),
                }
            )
    sample = SAMPLES / "sample_report.pdf"
    summary = summarize_pages(read_pages(sample), info=pdf_info(sample))
    source = SourceContext(
        uri="s3://reports/q3.pdf",
        kind="summary",
        title=summary.title,
        summary=summary.summary,
        key_points=[k.text for k in summary.key_points],
        keywords=summary.keywords,
    )
    request = (SAMPLES / "outline_request.txt").read_text()
    outline = draft_outline(request, slides=None, sources=[source])
    rows.append(
        {
            "input": "outline (sample request, 10 slides)",
            "outline s": round(best_of(3, lambda: draft_outline(request, slides=None, sources=[source])), 4),
        }
    )
    rows.append(
        {
            "input": "render .pptx (10 slides)",
            "render s": round(best_of(3, lambda: render_pptx(outline, path_or_file=io.BytesIO())), 4),
        }
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument("--fixtures", type=Path, default=SHARED_FIXTURES)
    args = parser.parse_args(argv)
    rows = report(args.pages, args.fixtures)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    widths = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    print(" | ".join(c.ljust(widths[c]) for c in columns))
    print("-+-".join("-" * widths[c] for c in columns))
    for r in rows:
        print(" | ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
