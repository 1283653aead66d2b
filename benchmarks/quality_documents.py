"""Quality of the offline engine on real papers and real slide decks, each figure beside its baseline.

    .venv/bin/python benchmarks/quality_documents.py [--fixtures ../shared/fixtures]

* **Summaries without the abstract** (``pdfs/references.json``: each PDF's author abstract is the
  reference; :func:`marginalia.tools.pdf.remove_abstract` cuts it out of the first page):
  ROUGE-1/2/L F1 x100 (rouge-score, Porter stemming) of the engine's ``summary`` beside LexRank
  over the SAME cleaned sentences (boilerplate stripped exactly as for the engine) within the
  same 150-word budget. Goal: engine >= LexRank + 3 ROUGE-1.
* **Title and authors**: exact match of :func:`marginalia.tools.pdf.pdf_info` (what a
  ``summary`` annotation says) against :data:`GOLD`, written by reading each PDF's first page.
  Beside it, the PDF metadata alone. Goal: 100%.
* **Outlines** (SciDuet-ACL: the authors' own decks): share of reference slide titles matched
  (ROUGE-1 F1 >= 0.5) by some generated title, and ROUGE-1 F1 of all titles together, beside a
  fixed generic academic template (Introduction / Related work / Method / Experiments / Results
  / Conclusion). Two conditions: the request with its context (title + abstract written into
  the request, ``prompt_with_context``) and the bare request (``prompt``). The fixtures carry no
  PDF of these papers, so the "paper as a source PDF" condition is not measured here.
  Placeholder bullets (a bullet that is not text of the request or a source) and fragment
  titles (:func:`marginalia.engines.offline_outline.is_fragment_title`) are counted on every
  outline, the sample report's included. Goals: 0 placeholders, <= 10% fragments.

Text is NFKC-normalised on both sides before scoring (references keep PDF ligatures such as
"ﬁ", which the scorer's tokenizer would otherwise drop). Without fixtures the script says so.
"""

from __future__ import annotations

import argparse
import json
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))  # the helpers shared with quality.py

from quality import DEFAULT_FIXTURES, Row, rouge_scorer, table_lines  # noqa: E402

from marginalia.engines import text as nlp  # noqa: E402
from marginalia.engines.offline import OfflineEngine  # noqa: E402
from marginalia.engines.offline_outline import draft_outline, is_fragment_title  # noqa: E402
from marginalia.engines.offline_summary import SUMMARY_WORDS, _eligible, _prepare, summarize_pages  # noqa: E402
from marginalia.nodes.outline import context_from_summary  # noqa: E402
from marginalia.nodes.pdf import combine  # noqa: E402
from marginalia.samples import make_sample_pdf  # noqa: E402
from marginalia.tools.pdf import headings, pdf_info, read_pages, remove_abstract  # noqa: E402

#: Title and authors as printed on each fixture's first page (read by a person, not extracted).
GOLD = {
    name: (paper["title"], paper["authors"])
    for name, paper in json.loads((ROOT / "tests" / "fixtures" / "pdfs" / "front_pages.json").read_text())[
        "papers"
    ].items()
}
TEMPLATE = ["Introduction", "Related work", "Method", "Experiments", "Results", "Conclusion"]
MATCH_AT = 0.5


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").replace("’", "'")


def _rouge(scorer, reference: str, candidate: str) -> dict[str, float]:
    scores = scorer.score(_nfkc(reference), _nfkc(candidate))
    return {name: round(100 * s.fmeasure, 1) for name, s in scores.items()}


def _lexrank_same_text(pages: list[tuple[int, str]]) -> str:
    """LexRank over the engine's own cleaned, eligible body sentences, same word budget."""
    doc = _prepare(pages, find_abstract=True)
    sentences = [s.text for s in doc.sentences if not s.in_abstract and _eligible(s.text)]
    return " ".join(sentences[i] for i in nlp.summarize_to_budget(sentences, SUMMARY_WORDS))


def papers_report(fixtures: Path) -> list[Row]:
    references = fixtures / "pdfs" / "references.json"
    if not references.exists():
        return []
    scorer = rouge_scorer()
    rows: list[Row] = []
    for entry in json.loads(references.read_text()):
        path = fixtures / "pdfs" / entry["file"]
        pages = remove_abstract(read_pages(path))
        ours = _rouge(scorer, entry["reference_summary"], summarize_pages(pages).summary)
        lexrank = _rouge(scorer, entry["reference_summary"], _lexrank_same_text(pages))
        rows.append(
            {
                "paper (abstract removed)": entry["file"],
                "R1": ours["rouge1"],
                "R2": ours["rouge2"],
                "RL": ours["rougeL"],
                "LexRank R1": lexrank["rouge1"],
                "LexRank R2": lexrank["rouge2"],
                "LexRank RL": lexrank["rougeL"],
            }
        )
    if rows:
        keys = [k for k in rows[0] if k != "paper (abstract removed)"]
        rows.append({"paper (abstract removed)": "MEAN", **{k: _mean(rows, k) for k in keys}})
    return rows


def front_matter_report(fixtures: Path) -> list[Row]:
    import pypdf

    rows: list[Row] = []
    for name, (title, authors) in GOLD.items():
        path = fixtures / "pdfs" / name
        if not path.exists():
            continue
        info = pdf_info(path)
        meta = pypdf.PdfReader(path).metadata or {}
        meta_authors = [a.strip() for a in str(meta.get("/Author") or "").replace(" and ", ";").split(";") if a.strip()]
        rows.append(
            {
                "paper": name,
                "title ok": _nfkc(info["title"]) == _nfkc(title),
                "authors ok": [_nfkc(a) for a in info["authors"]] == [_nfkc(a) for a in authors],
                "metadata title ok": _nfkc(str(meta.get("/Title") or "")) == _nfkc(title),
                "metadata authors ok": [_nfkc(a) for a in meta_authors] == [_nfkc(a) for a in authors],
            }
        )
    if rows:
        rows.append({"paper": "EXACT MATCH %", **{k: round(100 * _mean(rows, k), 1) for k in list(rows[0])[1:]}})
    return rows


def _match_share(scorer, reference: list[str], generated: list[str]) -> float:
    matched = sum(
        any(scorer.score(_nfkc(r), _nfkc(g))["rouge1"].fmeasure >= MATCH_AT for g in generated) for r in reference
    )
    return round(100 * matched / len(reference), 1)


def _placeholders(outline, material: str) -> int:
    text = " ".join(material.split())
    return sum(" ".join(b.split()) not in text for s in outline.slides for b in s.bullets)


def outlines_report(fixtures: Path) -> list[Row]:
    folder = fixtures / "outlines" / "sciduet"
    if not folder.is_dir():
        return []
    scorer = rouge_scorer()
    rows: list[Row] = []
    for path in sorted(folder.glob("*.json")):
        case = json.loads(path.read_text())
        reference = [s["title"] for s in case["reference"]["slides"]]
        for condition in ("prompt_with_context", "prompt"):
            outline = draft_outline(case[condition], slides=None, sources=[])
            titles = [s.title for s in outline.slides]
            rows.append(
                {
                    "deck": case["id"],
                    "request": "with context" if condition == "prompt_with_context" else "bare",
                    "title match %": _match_share(scorer, reference, titles),
                    "template match %": _match_share(scorer, reference, TEMPLATE),
                    "title R1": _rouge(scorer, "\n".join(reference), "\n".join(titles))["rouge1"],
                    "template R1": _rouge(scorer, "\n".join(reference), "\n".join(TEMPLATE))["rouge1"],
                    "slides": f"{len(titles)}/{len(reference)}",
                    "placeholder bullets": _placeholders(outline, case[condition]),
                    "fragment titles": sum(map(is_fragment_title, titles)),
                    "thin slides": sum(s.thin for s in outline.slides),
                }
            )
    for request in ("with context", "bare"):
        group = [r for r in rows if r["request"] == request]
        keys = ["title match %", "template match %", "title R1", "template R1"]
        rows.append(
            {
                "deck": "MEAN",
                "request": request,
                **{k: _mean(group, k) for k in keys},
                "placeholder bullets": sum(int(r["placeholder bullets"]) for r in group),
                "fragment titles": sum(int(r["fragment titles"]) for r in group),
                "thin slides": sum(int(r["thin slides"]) for r in group),
            }
        )
    return rows


def sample_outline() -> tuple[Row, object]:
    """The demo's outline: the sample report summarised (layout sections included), then outlined."""
    pdf = Path(make_sample_pdf.__file__).with_name("sample_report.pdf")
    request = Path(make_sample_pdf.__file__).with_name("outline_request.txt").read_text()
    info, pages = pdf_info(pdf), read_pages(pdf)
    part = summarize_pages(pages, info=info)  # as pdf_summary's map step, then its reduce with the layout
    summary = combine(OfflineEngine(), [part], info, allow_no_text=False, uri=str(pdf), headings=headings(pdf))
    source = context_from_summary("s3://demo/reports/q3.pdf", summary.model_dump(mode="json"))
    outline = draft_outline(request, slides=None, sources=[source])
    material = " ".join([source.summary or "", *source.key_points, *(p for s in source.sections for p in s.points)])
    titles = [s.title for s in outline.slides]
    row: Row = {
        "deck": "sample report (demo)",
        "slides": len(titles),
        "placeholder bullets": _placeholders(outline, material),
        "fragment titles": sum(map(is_fragment_title, titles)),
        "thin slides": sum(s.thin for s in outline.slides),
    }
    return row, outline


def report(fixtures: Path = DEFAULT_FIXTURES) -> list[Row]:
    """Every row of the three tables (for ``benchmarks/quality.py``); [] without fixtures."""
    return papers_report(fixtures) + front_matter_report(fixtures) + outlines_report(fixtures)


def _mean(rows: list[Row], key: str) -> float:
    return round(sum(float(r[key]) for r in rows) / len(rows), 3 if isinstance(rows[0][key], bool) else 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    parser.add_argument("--show", action="store_true", help="print the sample outline and one summary to read")
    args = parser.parse_args(argv)
    sample_row, outline = sample_outline()
    print("Outline of the sample report (demo)\n")
    print("\n".join(table_lines([sample_row])))
    if args.show:
        for slide in outline.slides:
            print(f"  {slide.title}{'  [thin]' if slide.thin else ''}")
            for bullet in slide.bullets:
                print(f"    - {bullet}")
    papers, front, outlines = (
        papers_report(args.fixtures),
        front_matter_report(args.fixtures),
        outlines_report(args.fixtures),
    )
    if not (papers or outlines):
        print(f"\nskipped: no fixtures at {args.fixtures} (the shared developer fixtures are not on this machine)")
        return 0
    print(f"\nSummaries with the abstract removed (ROUGE F1 x100 vs the author abstract, {SUMMARY_WORDS} words)\n")
    print("\n".join(table_lines(papers)))
    print("\nTitle and authors: exact match against the first pages (gold: tests/fixtures/pdfs/front_pages.json)\n")
    print("\n".join(table_lines(front)))
    print(f"\nOutline slide titles vs SciDuet author decks (match: ROUGE-1 F1 >= {MATCH_AT}; template: {TEMPLATE})\n")
    print("\n".join(table_lines(outlines)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
