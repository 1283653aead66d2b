"""The offline engine's entities, on the project's sample report (through its summary)."""

from __future__ import annotations


def test_sample_entities(sample_summary):
    found = {(e.type, e.text): e.pages for e in sample_summary.entities}
    assert found[("MONEY", "$412,380")] == [1]
    assert found[("EMAIL", "finops@example.com")] == [1, 3]
    assert found[("DATE", "2025-10-31")] == [2, 3]
    assert found[("ACRONYM", "EKS")] == [1, 2, 3]
    assert ("PERSON", "Dev Patel") in found and ("PERSON", "Maria Lopez") in found
    assert found[("URL", "https://wiki.example.com/platform/cost-review")] == [3]
    assert ("ORG", "Platform Engineering") in found


def test_entities_of_a_paper_are_typed_with_confidence():
    """Precision over recall: no untyped phrase, no one-off capitals read as acronyms, no
    "Research Article" as an organisation (on a real paper, dyer12 / example2)."""
    from pathlib import Path

    from marginalia.engines.offline_entities import extract_entities
    from marginalia.tools.pdf import read_pages

    pages = read_pages(Path(__file__).parents[1] / "fixtures" / "pdfs" / "CERMINE__test2.pdf")
    found = {(e.type, e.text) for e in extract_entities(pages, authors=["Nuala E. Tully"])}
    assert not any(kind == "OTHER" for kind, _ in found)
    assert ("ORG", "Research Article") not in found and ("ORG", "Hindawi Publishing Corporation") in found
    assert ("PERSON", "Nuala E. Tully") in found and ("ORG", "Royal College of Surgeons") in found
    acronyms = {text for kind, text in found if kind == "ACRONYM"}
    flat = " ".join(t for _, t in pages)
    assert all(flat.count(a) >= 3 or f"({a})" in flat for a in acronyms)
