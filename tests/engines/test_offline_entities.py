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
