"""Quality of the offline engine on real meetings (and documents, when that section exists).

    .venv/bin/python benchmarks/quality.py [--fixtures ../shared/fixtures]

* QMSum meetings: ROUGE-1/2/L F1 (rouge-score, Porter stemming) of the minutes' summary against
  the reference answer to "Summarize the whole meeting", next to two baselines computed on the
  same cleaned sentences and the same word budget: the first sentences, and plain LexRank.
* ELITR meetings: owner recall — of the people the human minutes name as doing something
  ("[PERSON6] will download ...", or a "- will check ..." bullet under a "[PERSON6]" heading),
  the share the offline minutes name as an action-item owner. (ELITR is non-commercial: it is
  read from the shared fixtures only, never copied into the repository.)
* Documents and outlines: ``benchmarks/quality_documents.py`` provides ``report() -> list[rows]``
  (a row is a dict; the first row's keys are the columns); it is run when present.

Fixtures live outside the repository; without them the benchmark says so and exits 0.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import statistics
import sys
import time
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from marginalia.engines import text as nlp  # noqa: E402
from marginalia.engines.offline import SUMMARY_WORDS, OfflineEngine  # noqa: E402
from marginalia.testing.fixtures import SHARED_FIXTURES  # noqa: E402
from marginalia.tools.transcripts import parse_transcript  # noqa: E402

DEFAULT_FIXTURES = SHARED_FIXTURES
Row = dict[str, object]


# --- shared by every quality section (quality_documents.py imports these) ---------------------
def rouge_scorer():
    """ROUGE-1/2/L with Porter stemming, the setting every quality figure here is reported in."""
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def lead_sentences(sentences: Iterable[str], budget: int) -> list[str]:
    """The lead baseline: the first whole sentences within ``budget`` words."""
    lead, used = [], 0
    for sentence in sentences:
        count = nlp.word_count(sentence)
        if used + count > budget:
            break
        lead.append(sentence)
        used += count
    return lead


def table_lines(rows: list[Row]) -> list[str]:
    """Rows as a plain-text table; the columns are every key seen, in first-seen order."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    widths = {c: max(len(str(c)), *(len(str(r.get(c, ""))) for r in rows)) for c in columns}
    lines = [" | ".join(str(c).ljust(widths[c]) for c in columns), "-+-".join("-" * widths[c] for c in columns)]
    lines += [" | ".join(str(r.get(c, "")).ljust(widths[c]) for c in columns) for r in rows]
    return lines


# --- meetings ------------------------------------------------------------------------------
def _f1(scorer, reference: str, candidate: str) -> tuple[float, float, float]:
    s = scorer.score(reference, candidate)
    return tuple(round(100 * s[k].fmeasure, 1) for k in ("rouge1", "rouge2", "rougeL"))


def _baselines(transcript, budget: int) -> dict[str, str]:
    """First sentences and plain LexRank over the same cleaned sentences, same budget."""
    sentences = [
        s for seg in transcript.segments for s in nlp.split_sentences(nlp.clean_disfluencies(seg.text)) if nlp.words(s)
    ]
    chosen = nlp.summarize_to_budget(sentences, budget)
    return {
        "first sentences": " ".join(lead_sentences(sentences, budget)),
        "LexRank": " ".join(sentences[i] for i in chosen),
    }


def meetings_report(fixtures: Path, engine: OfflineEngine) -> list[Row]:
    scorer = rouge_scorer()
    rows: list[Row] = []
    for path in sorted((fixtures / "meetings" / "qmsum").glob("*.json")):
        doc = json.loads(path.read_text("utf-8"))
        transcript = parse_transcript(path.read_bytes(), filename=path.name)
        started = time.perf_counter()
        minutes = engine.extract_minutes(transcript)
        seconds = time.perf_counter() - started
        reference = doc["reference"]["summary"]
        candidates = {"offline minutes": minutes.summary, **_baselines(transcript, engine.summary_words)}
        for system, candidate in candidates.items():
            r1, r2, rl = _f1(scorer, reference, candidate)
            rows.append(
                {
                    "meeting": path.stem.removeprefix("qmsum_"),
                    "system": system,
                    "R-1": r1,
                    "R-2": r2,
                    "R-L": rl,
                    "words": nlp.word_count(candidate),
                    "seconds": round(seconds, 2) if system == "offline minutes" else "",
                }
            )
    for system in dict.fromkeys(r["system"] for r in rows):
        mine = [r for r in rows if r["system"] == system]
        rows.append(
            {
                "meeting": "MEAN",
                "system": system,
                **{k: round(statistics.mean(float(r[k]) for r in mine), 1) for k in ("R-1", "R-2", "R-L")},
                "words": round(statistics.mean(int(r["words"]) for r in mine)),
                "seconds": "",
            }
        )
    return rows


_OWNER_RE = re.compile(r"\[(PERSON\d+)\]\s+(?:will|shall|should|needs? to|has to|is going to|to)\b", re.IGNORECASE)
_HEADING_RE = re.compile(r"^\s*((?:\[PERSON\d+\],?\s*)+)$")
_WILL_BULLET_RE = re.compile(r"^\s*-\s*(?:will|should|needs? to|has to)\b", re.IGNORECASE)


def reference_owners(minutes_text: str) -> set[str]:
    """People the human minutes name as owing something (pseudonyms without brackets)."""
    owners = set(_OWNER_RE.findall(minutes_text))
    heading: list[str] = []
    for line in minutes_text.splitlines():
        h = _HEADING_RE.match(line)
        if h:
            heading = re.findall(r"PERSON\d+", h.group(1))
        elif _WILL_BULLET_RE.match(line) and len(heading) == 1:
            owners.add(heading[0])
        elif not line.strip():
            continue
    return owners


def owners_report(fixtures: Path, engine: OfflineEngine) -> list[Row]:
    rows: list[Row] = []
    for path in sorted((fixtures / "meetings" / "elitr").glob("*.json")):
        doc = json.loads(path.read_text("utf-8"))
        transcript = parse_transcript(path.read_bytes(), filename=path.name)
        minutes = engine.extract_minutes(transcript)
        found = {re.sub(r"[\[\]()]", "", a.owner) for a in minutes.action_items if a.owner}
        reference: set[str] = set()
        for m in doc["reference"]["minutes"]:
            reference |= reference_owners(m["text"])
        hit = reference & found
        rows.append(
            {
                "meeting": path.stem,
                "reference owners": ", ".join(sorted(reference)),
                "found owners": ", ".join(sorted(found)),
                "recall": round(len(hit) / len(reference), 2) if reference else "",
                "action items": len(minutes.action_items),
            }
        )
    return rows


def documents_report() -> list[Row] | None:
    path = Path(__file__).with_name("quality_documents.py")
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location("quality_documents", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.report()


def print_table(title: str, rows: list[Row]) -> None:
    print(f"\n## {title}\n")
    if not rows:
        print("(no rows)")
        return
    print("\n".join(table_lines(rows)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixtures", type=Path, default=DEFAULT_FIXTURES)
    args = parser.parse_args(argv)
    if not (args.fixtures / "meetings").is_dir():
        print(f"skipped: no fixtures at {args.fixtures} (the shared developer fixtures are not on this machine)")
        return 0
    engine = OfflineEngine()
    print_table(
        f"Meeting summaries vs QMSum references (ROUGE F1 x100, {SUMMARY_WORDS}-word budget)",
        meetings_report(args.fixtures, engine),
    )
    print_table("Action-item owners vs ELITR human minutes", owners_report(args.fixtures, engine))
    documents = documents_report()
    if documents is not None:
        print_table("Documents and outlines", documents)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
