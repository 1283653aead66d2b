"""The offline engine is thread-safe and deterministic: map-reduce ``Send`` branches run its
calls in parallel threads, and every call must give exactly what it gives alone.

Root cause of the old difference: pysbd's ``Segmenter.segment`` keeps its input on the
instance (``self.original_text``) and reads it back to compute character spans, and one
segmenter was shared by every thread; two threads cut each other's text. Segmenters (and the
LexRank summarizers) are now per thread.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path

import pytest

from marginalia.engines import text as nlp
from marginalia.engines.offline import OfflineEngine
from marginalia.schemas import Transcript
from marginalia.tools.pdf import read_pages
from marginalia.tools.transcripts import parse_transcript

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
THREADS = 4


def _in_parallel(fn, inputs: list) -> list:
    """``fn`` over ``inputs`` in THREADS threads released together (maximal overlap)."""
    start = threading.Barrier(min(THREADS, len(inputs)))

    def call(item):
        try:
            start.wait(timeout=10)
        except threading.BrokenBarrierError:
            pass
        return fn(item)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(call, inputs))


def _meeting_chunks() -> list[Transcript]:
    chunks = []
    for path in sorted((FIXTURES / "meetings").glob("qmsum_*.json")):
        t = parse_transcript(path.read_bytes(), filename=path.name)
        chunks.append(Transcript(segments=t.segments[:100], speakers=t.speakers))
    sample = files("marginalia") / "samples" / "standup.vtt"
    chunks.append(parse_transcript(sample.read_bytes(), filename="standup.vtt"))
    return chunks


@pytest.mark.timeout(120)
def test_parallel_extract_minutes_equals_serial():
    engine = OfflineEngine()
    chunks = _meeting_chunks()
    assert len(chunks) >= THREADS
    serial = [engine.extract_minutes(c).model_dump() for c in chunks]
    for _round in range(2):
        assert [m.model_dump() for m in _in_parallel(engine.extract_minutes, chunks)] == serial


@pytest.mark.timeout(120)
def test_parallel_summarize_pages_equals_serial():
    engine = OfflineEngine()
    documents = [read_pages(p) for p in sorted((FIXTURES / "pdfs").glob("*.pdf"))]
    documents.append(read_pages(Path(str(files("marginalia") / "samples" / "sample_report.pdf"))))
    inputs = [pages[a : a + 2] for pages in documents for a in range(0, len(pages), 2)][:THREADS]
    assert len(inputs) >= THREADS
    serial = [engine.summarize_pages(p).model_dump() for p in inputs]
    assert [s.model_dump() for s in _in_parallel(engine.summarize_pages, inputs)] == serial


def test_parallel_sentence_splitting_equals_serial():
    """The narrowest form of the race: pysbd's shared segmenter."""
    texts = [" ".join(s.text for s in c.segments) for c in _meeting_chunks()]
    serial = [nlp.split_sentences(t) for t in texts]
    assert _in_parallel(nlp.split_sentences, texts) == serial
