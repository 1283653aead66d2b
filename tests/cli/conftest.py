"""A fresh local store per test (``MARGINALIA_STORE``) and the in-process CLI."""

from __future__ import annotations

import pytest


@pytest.fixture
def store_env(tmp_path, monkeypatch):
    """``MARGINALIA_STORE`` names a fresh local store in ``tmp_path``; wide output (no folding)."""
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{tmp_path / 'store'}")
    monkeypatch.delenv("MARGINALIA_STATE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "store"
