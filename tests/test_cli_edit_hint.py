"""The approval hint names a file fitting the agent (it said ``minutes.json`` for every agent)."""

from __future__ import annotations

import importlib.resources

from marginalia.testing.cli import run_cli


def test_edit_hint_names_the_agents_document(tmp_path, monkeypatch):
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{tmp_path / 'store'}")
    monkeypatch.delenv("MARGINALIA_STATE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    pdf = importlib.resources.files("marginalia.samples") / "sample_report.pdf"
    assert run_cli("mb", "demo")[0] == 0
    assert run_cli("put", str(pdf), "s3://demo/q3.pdf")[0] == 0
    code, out, err = run_cli("summarize", "s3://demo/q3.pdf", "--review")
    assert code == 0, err
    assert "--edit summary.json" in out and "minutes.json" not in out
