"""Writes ``sample_report.pdf``: a 3-page "Q3 platform cost review" that the demo summarises.

Why a script and a committed file: the demo and the tests need a PDF whose text we own (no
licence question) and that works with nothing but the installed dependencies. pypdf writes
the file (its object model, its serializer); this module only lays text out in the PDF
base-14 font Helvetica, which every viewer and extractor has without embedding anything.
Output is byte-for-byte deterministic, so regenerating it changes nothing in git.

Regenerate: ``python -m marginalia.samples.make_sample_pdf`` (writes next to this file).
"""

from __future__ import annotations

import io
import sys
import textwrap
from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import ContentStream, DictionaryObject, NameObject, TextStringObject

PAGE_WIDTH, PAGE_HEIGHT = 612, 792  # US Letter, points
MARGIN = 60
#: (font resource, size, leading, wrap width in characters) per block style.
STYLES = {
    "title": ("/F2", 18, 26, 50),
    "heading": ("/F2", 13, 22, 70),
    "body": ("/F1", 10.5, 14, 92),
    "small": ("/F1", 9, 12, 105),
}

REPORT_TITLE = "Q3 Platform Cost Review"
REPORT_AUTHORS = ["Maria Lopez", "Dev Patel"]

#: The report, page by page, as (style, text) blocks. ASCII only (WinAnsi Helvetica).
SAMPLE_REPORT: list[list[tuple[str, str]]] = [
    [
        ("title", REPORT_TITLE),
        ("body", "Maria Lopez and Dev Patel"),
        ("small", "Platform Engineering, Example Corp, Dublin. Contact: finops@example.com"),
        ("small", "Published 14 October 2025. Covers 1 July 2025 to 30 September 2025."),
        ("heading", "Abstract"),
        (
            "body",
            "Platform spend on Amazon Web Services reached $412,380 in the third quarter of 2025, up 18% on Q2. "
            "Two services explain most of the increase: Amazon EKS compute grew by $41,900 because three "
            "clusters kept idle node groups after the August migration, and Amazon S3 storage grew by $17,250 "
            "because log buckets have no lifecycle rules. We recommend moving steady EKS workloads to Graviton "
            "instances under a one-year Savings Plan, expiring logs after 90 days, and reviewing every cluster "
            "that runs below 35% utilisation. Together these steps should save about $96,500 per quarter from "
            "Q1 2026.",
        ),
        ("heading", "1 Introduction"),
        (
            "body",
            "This review explains where the platform budget went between July and September 2025 and what the "
            "Platform Engineering team proposes to change. The budget for the quarter was $350,000; actual spend "
            "was $412,380, an overrun of $62,380. Figures come from the AWS Cost and Usage Report, grouped by "
            "the cost-center tag, and from CloudWatch utilisation metrics for the same period.",
        ),
        (
            "body",
            "Spend by service was: Amazon EKS and the EC2 instances behind it $231,400 (56%), Amazon S3 "
            "$88,120 (21%), Amazon RDS $51,760 (13%), data transfer $24,900 (6%) and other services $16,200 "
            "(4%). The sections below look at EKS and S3 in turn, then at the actions and owners.",
        ),
    ],
    [
        ("heading", "2 EKS compute costs"),
        (
            "body",
            "EKS compute cost $231,400 in Q3 against $189,500 in Q2. The migration of the payments cluster "
            "from eu-west-1 in Dublin to eu-central-1 in Frankfurt finished on 12 August 2025, but the old node "
            "groups were not drained until 19 September 2025. For five weeks both regions ran full capacity, "
            "which alone cost $27,300.",
        ),
        (
            "body",
            "Average CPU utilisation across the 14 production clusters was 31%. Three clusters (analytics, "
            "batch-ingest and search) ran below 20% for the whole quarter. Right-sizing their node groups with "
            "Karpenter consolidation would remove about 40 m6i.2xlarge instances, worth $14,600 per quarter.",
        ),
        (
            "body",
            "Compute Savings Plans cover only 38% of steady EC2 usage. A one-year, no-upfront Compute Savings "
            "Plan for $22 per hour, together with a move of stateless services to Graviton (m7g) instances, "
            "is expected to save $48,200 per quarter. Dev Patel will own the Savings Plan purchase and the "
            "Graviton rollout, with a decision due by 31 October 2025.",
        ),
        ("heading", "3 S3 storage costs"),
        (
            "body",
            "S3 cost $88,120 in Q3, up from $70,870. Storage grew from 1.9 PB to 2.4 PB. Most of the growth "
            "is application logs: the bucket example-prod-logs grew by 380 TB and no object in it has ever "
            "expired. Only 4% of the log data was read during the quarter.",
        ),
        (
            "body",
            "A lifecycle rule that moves logs to S3 Glacier Instant Retrieval after 30 days and expires them "
            "after 90 days would save $21,400 per quarter. Intelligent-Tiering for the data-lake buckets would "
            "save a further $6,300. Maria Lopez will apply the lifecycle rules by 15 November 2025 after the "
            "security team confirms the retention policy.",
        ),
    ],
    [
        ("heading", "4 Recommendations and owners"),
        (
            "body",
            "1. Buy a one-year Compute Savings Plan and move stateless EKS services to Graviton: saves $48,200 "
            "per quarter. Owner: Dev Patel. Decision by 31 October 2025.",
        ),
        (
            "body",
            "2. Add lifecycle rules to every log bucket (Glacier after 30 days, expire after 90 days): saves "
            "$21,400 per quarter. Owner: Maria Lopez. Due 15 November 2025.",
        ),
        (
            "body",
            "3. Right-size the analytics, batch-ingest and search clusters with Karpenter: saves $14,600 per "
            "quarter. Owner: Platform Engineering. Due 1 December 2025.",
        ),
        (
            "body",
            "4. Enable S3 Intelligent-Tiering on data-lake buckets and tag every bucket with cost-center: "
            "saves $6,300 per quarter. Owner: Data Platform team.",
        ),
        ("heading", "5 Conclusion"),
        (
            "body",
            "The Q3 overrun of $62,380 came from idle capacity rather than growth in traffic. The four actions "
            "above save about $96,500 per quarter and bring spend back under the $350,000 budget by Q1 2026. "
            "The next review is planned for 13 January 2026; questions go to finops@example.com or to "
            "https://wiki.example.com/platform/cost-review.",
        ),
    ],
]


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _content_stream(blocks: list[tuple[str, str]]) -> bytes:
    """PDF text operators for one page: each block wrapped to its style's width, top to bottom."""
    ops = ["BT"]
    y: float = PAGE_HEIGHT - MARGIN
    for style, text in blocks:
        font, size, leading, width = STYLES[style]
        if style == "heading":
            y -= leading / 2
        for line in textwrap.wrap(text, width=width) or [""]:
            y -= leading
            if y < MARGIN:
                raise ValueError(f"page overflows: {text[:40]!r}")
            ops.append(f"{font} {size} Tf 1 0 0 1 {MARGIN} {y:g} Tm ({_escape(line)}) Tj")
        y -= leading / 3
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


def _font(base: str) -> DictionaryObject:
    return DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject(base),
            NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
        }
    )


def text_pdf(
    pages: list[list[tuple[str, str]]], *, title: str | None = None, authors: list[str] | None = None
) -> bytes:
    """A valid PDF whose pages carry ``pages``' blocks as real, extractable text."""
    writer = PdfWriter()
    fonts = DictionaryObject({NameObject("/F1"): _font("/Helvetica"), NameObject("/F2"): _font("/Helvetica-Bold")})
    for blocks in pages:
        page = writer.add_blank_page(PAGE_WIDTH, PAGE_HEIGHT)
        stream = ContentStream(None, writer)
        stream.set_data(_content_stream(blocks))
        page[NameObject("/Resources")] = DictionaryObject({NameObject("/Font"): fonts})
        page.replace_contents(stream)
    info = {"/Producer": "marginalia make_sample_pdf"}
    if title:
        info["/Title"] = title
    if authors:
        info["/Author"] = "; ".join(authors)
    writer.add_metadata({k: TextStringObject(v) for k, v in info.items()})
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def sample_report_bytes() -> bytes:
    return text_pdf(SAMPLE_REPORT, title=REPORT_TITLE, authors=REPORT_AUTHORS)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    target = Path(argv[0]) if argv else Path(__file__).with_name("sample_report.pdf")
    target.write_bytes(sample_report_bytes())
    print(f"wrote {target} ({target.stat().st_size} bytes, {len(SAMPLE_REPORT)} pages)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
