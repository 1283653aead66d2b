"""Fixtures shared by the offline engine's tests: the project's sample report, read and summarised once."""

from __future__ import annotations

from pathlib import Path

import pytest

from marginalia.engines.offline_summary import summarize_pages
from marginalia.samples import make_sample_pdf
from marginalia.tools.pdf import pdf_info, read_pages

SAMPLE_REPORT = Path(make_sample_pdf.__file__).with_name("sample_report.pdf")


@pytest.fixture(scope="session")
def sample_pages():
    return read_pages(SAMPLE_REPORT)


@pytest.fixture(scope="session")
def sample_summary(sample_pages):
    return summarize_pages(sample_pages, info=pdf_info(SAMPLE_REPORT))
