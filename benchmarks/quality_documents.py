"""Quality of the offline engine on real papers and real slide decks.

    .venv/bin/python benchmarks/quality_documents.py [--fixtures ../shared/fixtures]

* Papers (``pdfs/references.json``: the author abstract of each PDF as reference): ROUGE-1/2/L
  F1 x100 (rouge-score, Porter stemming) of ``summary``, twice: on the document as given (the
  summariser should find and use the abstract), and with the first page's abstract removed by
  :func:`marginalia.tools.pdf.remove_abstract` (a fair test of the extractive fallback). Next to
  each, the lead baseline: the first body sentences within the same 150-word budget.
* Keywords: share of the author keywords' (stemmed) words found in the engine's keywords.
* Outlines (SciDuet-ACL decks the authors made): ROUGE-1 F1 of the outline's slide titles vs
  the reference deck's titles, and whether the slide count asked for is the one delivered.
  Sources given to the engine: the paper's title and abstract (what ``prompt_with_context`` has).

Text is NFKC-normalised on both sides before scoring (the references keep PDF ligatures such as
"ﬁ", which the scorer's tokenizer would otherwise drop). Fixtures live outside the repository;
without them ``report()`` returns no rows and the script says so.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import unicodedata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))  # the helpers shared with quality.py

from quality import DEFAULT_FIXTURES, Row, lead_sentences, rouge_scorer, table_lines  # noqa: E402

from marginalia.engines import text as nlp  # noqa: E402
from marginalia.engines.offline_outline import draft_outline  # noqa: E402
from marginalia.engines.offline_summary import SUMMARY_WORDS, summarize_pages  # noqa: E402
from marginalia.schemas import SourceContext  # noqa: E402
from marginalia.tools.pdf import pdf_info, read_pages, remove_abstract  # noqa: E402


def _nfkc(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "")


def _rouge(scorer, reference: str, candidate: str) -> dict[str, float]:
    scores = scorer.score(_nfkc(reference), _nfkc(candidate))
    return {name: round(100 * s.fmeasure, 1) for name, s in scores.items()}


def _lead(pages: list[tuple[int, str]], budget: int = SUMMARY_WORDS) -> str:
    """The first whole sentences of the document within ``budget`` words."""
    return " ".join(lead_sentences(nlp.split_sentences(" ".join(t.replace("\n", " ") for _, t in pages)), budget))


def _stems(phrases: list[str]) -> set[str]:
    from nltk.stem.porter import PorterStemmer  # the Porter stemmer needs no NLTK data

    stemmer = PorterStemmer()
    return {stemmer.stem(w) for p in phrases for w in re.findall(r"[a-z0-9]+", _nfkc(p).lower()) if len(w) > 2}


def papers_report(fixtures: Path) -> list[Row]:
    references = fixtures / "pdfs" / "references.json"
    if not references.exists():
        return []
    scorer = rouge_scorer()
    rows: list[Row] = []
    for entry in json.loads(references.read_text()):
        path = fixtures / "pdfs" / entry["file"]
        pages = read_pages(path)
        info = pdf_info(path)
        for setting, used in (("abstract kept", pages), ("abstract removed", remove_abstract(pages))):
            summary = summarize_pages(used, info=info)
            ours = _rouge(scorer, entry["reference_summary"], summary.summary)
            lead = _rouge(scorer, entry["reference_summary"], _lead(used))
            row: Row = {
                "item": entry["file"],
                "setting": setting,
                "R1": ours["rouge1"],
                "R2": ours["rouge2"],
                "RL": ours["rougeL"],
                "lead R1": lead["rouge1"],
                "abstract found": bool(summary.abstract),
            }
            if entry.get("reference_keywords"):
                want = _stems(entry["reference_keywords"])
                row["keyword recall"] = round(100 * len(want & _stems(summary.keywords)) / len(want), 1)
            rows.append(row)
    return rows


def outlines_report(fixtures: Path) -> list[Row]:
    folder = fixtures / "outlines" / "sciduet"
    if not folder.is_dir():
        return []
    scorer = rouge_scorer()
    rows: list[Row] = []
    for path in sorted(folder.glob("*.json")):
        case = json.loads(path.read_text())
        paper, reference = case["paper"], case["reference"]
        abstract = paper.get("abstract") or ""
        source = SourceContext(
            uri=f"sciduet:{case['id']}",
            kind="text",
            title=paper.get("title"),
            summary=abstract,
            key_points=nlp.split_sentences(abstract)[:8],
            keywords=nlp.keywords(abstract, 10),
        )
        outline = draft_outline(case["prompt"], slides=None, sources=[source])
        ours = " \n".join(s.title for s in outline.slides)
        theirs = " \n".join(s["title"] for s in reference["slides"])
        titles = _rouge(scorer, theirs, ours)
        rows.append(
            {
                "item": case["id"],
                "setting": "outline titles",
                "R1": titles["rouge1"],
                "R2": titles["rouge2"],
                "RL": titles["rougeL"],
                "slides asked": reference["slide_count"],
                "slides given": len(outline.slides),
            }
        )
    return rows


def report(fixtures: Path = DEFAULT_FIXTURES) -> list[Row]:
    """Rows for papers (both settings) and outlines, plus mean rows; [] without fixtures."""
    papers = papers_report(fixtures)
    outlines = outlines_report(fixtures)
    rows = list(papers)
    for setting in ("abstract kept", "abstract removed"):
        group = [r for r in papers if r["setting"] == setting]
        if group:
            rows.append(
                {"item": "MEAN", "setting": setting, **{k: _mean(group, k) for k in ("R1", "R2", "RL", "lead R1")}}
            )
    rows += outlines
    if outlines:
        rows.append(
            {
                "item": "MEAN",
                "setting": "outline titles",
                **{k: _mean(outlines, k) for k in ("R1", "R2", "RL")},
                "slides asked": sum(r["slides asked"] for r in outlines),
                "slides given": sum(r["slides given"] for r in outlines),
            }
        )
    return rows


def _mean(rows: list[Row], key: str) -> float:
    return round(sum(float(r[key]) for r in rows) / len(rows), 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    args = parser.parse_args(argv)
    rows = report(args.fixtures)
    if not rows:
        print(f"skipped: no fixtures at {args.fixtures} (the shared developer fixtures are not on this machine)")
        return 0
    print(f"Documents and outlines (ROUGE F1 x100, {SUMMARY_WORDS}-word extractive budget)\n")
    print("\n".join(table_lines(rows)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
