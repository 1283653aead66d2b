"""PDF extraction bounded per page and per document (issue 17 item 3): a hostile page is stopped
at the limit with one line naming the page and the limit; a normal PDF reads as without bounds."""

from __future__ import annotations

import zlib

import pytest

from marginalia.errors import InvalidInput, UnsupportedInput
from marginalia.tools import pdf
from marginalia.tools.pdf_bounds import Limits, bounded_iter_pages, bounded_pdf_info


def heavy_pdf(ops_mb: int, *, pages_before: int = 0) -> bytes:
    """``pages_before`` ordinary pages, then one whose Flate content stream (a few KB in the file)
    inflates to ``ops_mb`` MB of text-showing operators: minutes of pypdf, hundreds of MB."""
    z = zlib.compressobj(9)
    chunk = b"BT /F1 12 Tf 72 720 Td " + b"(a) Tj " * 20000 + b"ET\n"
    heavy = b"".join(z.compress(chunk) for _ in range((ops_mb << 20) // len(chunk) + 1)) + z.flush()
    light = zlib.compress(b"BT /F1 12 Tf 72 720 Td (An ordinary page of text.) Tj ET\n")
    streams = [light] * pages_before + [heavy]
    n = len(streams)
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    objs.append(b"<< /Type /Pages /Kids [%s] /Count %d >>" % (b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(n)), n))
    objs.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for i, stream in enumerate(streams):
        objs.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
            b"/Resources << /Font << /F1 3 0 R >> >> >>" % (5 + 2 * i)
        )
        objs.append(b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream")
    out, offsets = bytearray(b"%PDF-1.7\n"), []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    out += b"".join(b"%010d 00000 n \n" % off for off in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


@pytest.fixture(scope="module")
def hostile():
    return heavy_pdf(40, pages_before=2)


def test_a_page_over_its_time_limit_is_one_line_naming_the_page(hostile):
    pages = []
    with pytest.raises(UnsupportedInput) as caught:
        for number, text in bounded_iter_pages(hostile, name="s3://b/evil.pdf", limits=Limits(page_seconds=3)):
            pages.append((number, text))
    assert str(caught.value) == "s3://b/evil.pdf: page 3 went over the 3 s per-page limit"
    assert [n for n, _ in pages] == [1, 2] and "ordinary page" in pages[0][1]  # the pages before came out


def test_a_page_over_its_memory_limit_is_one_line_naming_the_page(hostile):
    with pytest.raises(UnsupportedInput) as caught:
        list(bounded_iter_pages(hostile, name="evil.pdf", limits=Limits(page_mb=32)))
    assert str(caught.value) == "evil.pdf: page 3 went over the 32 MB memory limit"


def test_the_document_limit_holds_too(hostile):
    with pytest.raises(UnsupportedInput, match=r"^evil.pdf: page 3 went over the document's 2 s limit$"):
        list(bounded_iter_pages(hostile, name="evil.pdf", limits=Limits(page_seconds=60, document_seconds=2)))


def test_a_normal_pdf_reads_the_same_bounded_and_errors_keep_their_kind():
    import marginalia

    sample = (marginalia.__file__.rsplit("/", 1)[0]) + "/samples/sample_report.pdf"
    assert list(bounded_iter_pages(sample)) == pdf.read_pages(sample)
    assert bounded_pdf_info(sample) == pdf.pdf_info(sample)
    with pytest.raises(InvalidInput, match="page 99 asked for"):
        list(bounded_iter_pages(sample, first=99, name="sample.pdf"))
