"""PDF text extraction: real papers, the project's sample, and every kind of bad file."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tracemalloc
import unicodedata
from pathlib import Path

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.generic import EncodedStreamObject, NameObject

from marginalia.errors import InvalidInput, UnsupportedInput
from marginalia.samples import make_sample_pdf
from marginalia.samples.make_sample_pdf import text_pdf
from marginalia.testing.fixtures import SHARED_FIXTURES
from marginalia.tools.pdf import (
    abstract_text,
    iter_pages,
    normalize_text,
    pdf_info,
    read_pages,
    remove_abstract,
)

FIXTURES = Path(__file__).parents[1] / "fixtures" / "pdfs"
SHARED = SHARED_FIXTURES / "pdfs"
SAMPLE = Path(make_sample_pdf.__file__).with_name("sample_report.pdf")
CC_BY = json.loads((FIXTURES / "references.json").read_text())


def _tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text).lower().replace("-", "")
    return re.findall(r"[a-z0-9]+", text)


def _image_only_pdf(pages: int = 1) -> bytes:
    """What a scanner produces: pages that are one picture each, no text objects."""
    buffer = io.BytesIO()
    images = [Image.new("L", (60, 80), color=200 - 10 * i) for i in range(pages)]
    images[0].save(buffer, "PDF", save_all=True, append_images=images[1:])
    return buffer.getvalue()


# --- good files ------------------------------------------------------------------------------
def test_sample_report_is_what_the_generator_writes():
    assert SAMPLE.read_bytes() == make_sample_pdf.sample_report_bytes()


def test_sample_report_pages_and_text():
    pages = read_pages(SAMPLE)
    assert [n for n, _ in pages] == [1, 2, 3]
    assert "$412,380" in pages[0][1]
    assert "2 EKS compute costs" in pages[1][1]
    assert "finops@example.com" in pages[2][1]
    assert all("  " not in text for _, text in pages)


def test_pdf_info_of_sample():
    info = pdf_info(SAMPLE)
    assert info == {
        "page_count": 3,
        "title": "Q3 Platform Cost Review",
        "authors": ["Maria Lopez", "Dev Patel"],
        "encrypted": False,
    }


def test_iter_pages_is_lazy_and_accepts_streams():
    stream = io.BytesIO(SAMPLE.read_bytes())
    pages = iter_pages(stream, name="s3://bucket/report.pdf")
    first = next(pages)
    assert first[0] == 1 and "Q3 Platform Cost Review" in first[1]
    assert [n for n, _ in pages] == [2, 3]


class _NoSeek(io.RawIOBase):
    def __init__(self, data: bytes):
        self._inner = io.BytesIO(data)

    def readable(self):
        return True

    def seekable(self):
        return False

    def readinto(self, buffer):
        chunk = self._inner.read(len(buffer))
        buffer[: len(chunk)] = chunk
        return len(chunk)


def test_non_seekable_stream_is_buffered():
    pages = read_pages(_NoSeek(SAMPLE.read_bytes()), name="stdin")
    assert len(pages) == 3


def test_line_end_hyphenation_is_rejoined_but_compounds_stay():
    raw = "We tune discrimi-\nnative models.\nA well-\nknown and well-known idea.\nSee Table-\n2."
    assert normalize_text(raw) == ("We tune discriminative models.\nA well-known and well-known idea.\nSee Table-\n2.")


def test_ligatures_and_spaces_are_normalised():
    assert (
        normalize_text("e\ufb00ective  \t con\ufb01dence\u00a0here\n\n\n  next ") == "effective confidence here\nnext"
    )


@pytest.mark.parametrize("entry", CC_BY, ids=lambda e: e["file"])
def test_cc_by_papers_extract_with_their_abstract(entry):
    path = FIXTURES / entry["file"]
    pages = read_pages(path)
    assert len(pages) == entry["pages"]
    abstract = abstract_text(pages[0][1])
    assert abstract is not None
    got, want = _tokens(abstract), _tokens(entry["reference_summary"])
    # The reference is the same text extracted by pypdf; only hyphen/ligature handling may differ.
    assert len(set(want) - set(got)) <= 0.02 * len(set(want))
    assert abs(len(got) - len(want)) <= 0.03 * len(want)


@pytest.mark.skipif(not SHARED.is_dir(), reason="non-commercial ACL PDFs only on dev machines")
@pytest.mark.parametrize(
    "name", ["science-parse__dyer12.pdf", "science-parse__roark13.pdf", "science-parse__P14-1059.pdf"]
)
def test_acl_papers_abstract_and_metadata(name):
    reference = next(e for e in json.loads((SHARED / "references.json").read_text()) if e["file"] == name)
    pages = read_pages(SHARED / name)
    assert len(pages) == reference["pages"]
    assert set(_tokens(reference["reference_summary"])) <= set(_tokens(abstract_text(pages[0][1])))
    info = pdf_info(SHARED / name)
    assert info["title"] and len(info["authors"]) >= 2


def test_remove_abstract_cuts_only_the_abstract():
    pages = read_pages(SAMPLE)
    abstract = abstract_text(pages[0][1])
    stripped = remove_abstract(pages)
    assert abstract and abstract not in " ".join(stripped[0][1].split("\n"))
    assert "Abstract" not in stripped[0][1].split("\n")
    assert abstract_text(stripped[0][1]) is None
    assert "1 Introduction" in stripped[0][1] and "Q3 Platform Cost Review" in stripped[0][1]
    assert stripped[1:] == pages[1:]


def test_remove_abstract_without_heading(tmp_path):
    entry = next(e for e in CC_BY if e["file"] == "CERMINE__test2.pdf")  # "Objectives. ..." block, no heading
    pages = read_pages(FIXTURES / entry["file"])
    stripped = remove_abstract(pages)
    assert "Focus groups were conducted" in pages[0][1]
    assert "Focus groups were conducted" not in stripped[0][1]
    assert "1. Introduction" in stripped[0][1]


def test_memory_stays_bounded_with_page_count(tmp_path):
    paragraph = ("body", "Filler text about storage and compute costs for a long report. " * 20)
    peaks = {}
    for count in (20, 200):
        path = tmp_path / f"{count}.pdf"
        path.write_bytes(text_pdf([[paragraph]] * count))
        tracemalloc.start()
        extracted = sum(len(text) for _, text in iter_pages(path))
        peaks[count] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert extracted > count * 1000
    # Ten times the pages (and text) must cost far less than ten times the memory.
    assert peaks[200] < 5 * peaks[20]


# --- page ranges -----------------------------------------------------------------------------
def _numbered_pdf(count: int) -> bytes:
    """``count`` pages, each saying its own number in unique words."""
    return text_pdf(
        [
            [("heading", f"Section {i}"), ("body", " ".join(f"page{i} word{j} {i * j}" for j in range(80)))]
            for i in range(1, count + 1)
        ]
    )


def test_iter_pages_reads_only_the_range_asked_for():
    data = _numbered_pdf(12)
    whole = read_pages(io.BytesIO(data))
    assert [n for n, _ in whole] == list(range(1, 13))
    assert all(f"page{n} " in text for n, text in whole)
    middle = list(iter_pages(io.BytesIO(data), first=4, last=7))
    assert middle == whole[3:7]  # same text as a full read
    assert list(iter_pages(io.BytesIO(data), first=11, last=99)) == whole[10:]  # clipped to the end
    assert list(iter_pages(io.BytesIO(data), first=12)) == whole[11:]


@pytest.mark.parametrize("first, last, says", [(0, 3, "not valid"), (5, 4, "not valid"), (13, None, "has 12 page")])
def test_iter_pages_bad_range_is_invalid_input_naming_the_file(first, last, says):
    with pytest.raises(InvalidInput, match=says) as info:
        list(iter_pages(io.BytesIO(_numbered_pdf(12)), first=first, last=last, name="s3://b/r.pdf"))
    assert "s3://b/r.pdf" in str(info.value)


def test_iter_pages_scanned_range_names_the_pages():
    with pytest.raises(UnsupportedInput, match="no text layer on pages 2-3"):
        list(iter_pages(io.BytesIO(_image_only_pdf(4)), first=2, last=3))


def test_iter_pages_memory_does_not_grow_with_the_pages_read(tmp_path):
    """Each page's parsed content stream leaves pypdf's cache once its text is out: measured
    ~40 bytes kept a page (pypdf's page list), against ~5.3 KiB a page without the trimming.
    Measured in a fresh interpreter: in a long test session other threads and handlers allocate too."""
    path = tmp_path / "240.pdf"
    path.write_bytes(_numbered_pdf(240))
    probe = (
        "import gc, json, sys, tracemalloc\n"
        "from marginalia.tools.pdf import iter_pages\n"
        "tracemalloc.start()\n"
        "marks = {}\n"
        "for number, _text in iter_pages(sys.argv[1]):\n"
        "    if number in (40, 240):\n"
        "        gc.collect()\n"  # what is kept, not cyclic garbage a later collection frees
        "        marks[number] = tracemalloc.get_traced_memory()[0]\n"
        "print(json.dumps(marks))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=120, check=True
    )
    marks = {int(k): v for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items()}
    assert (marks[240] - marks[40]) / 200 < 1024, marks


# --- bad files -------------------------------------------------------------------------------
def _error(exc_type, data: bytes, **options) -> str:
    with pytest.raises(exc_type) as info:
        read_pages(io.BytesIO(data), name="s3://bucket/in.pdf", **options)
    message = str(info.value)
    assert "s3://bucket/in.pdf" in message
    assert "Traceback" not in message
    return message


def test_not_a_pdf():
    assert "not a PDF" in _error(InvalidInput, b"Quarterly numbers, plain text, not a PDF at all.\n" * 50)


def test_empty_file():
    assert "empty" in _error(InvalidInput, b"")


def test_missing_file(tmp_path):
    with pytest.raises(InvalidInput, match="no such file"):
        read_pages(tmp_path / "absent.pdf")


@pytest.mark.parametrize("fraction", [0.1, 0.5, 0.9])
def test_truncated(fraction):
    data = (FIXTURES / "CERMINE__test2.pdf").read_bytes()
    assert "corrupt or truncated" in _error(InvalidInput, data[: int(len(data) * fraction)])


def test_garbage_after_header():
    assert "corrupt" in _error(InvalidInput, b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n")


def test_corrupt_xref_offset_is_repaired():
    data = SAMPLE.read_bytes()
    broken = re.sub(rb"startxref\s+\d+", b"startxref\n987654", data)
    assert broken != data
    pages = read_pages(io.BytesIO(broken))  # non-strict pypdf rebuilds the table by scanning
    assert len(pages) == 3 and "$412,380" in pages[0][1]


def test_undecodable_page_content_reads_as_an_empty_page():
    """One page's compressed stream is garbage: that page has no text, the others still read."""
    writer = PdfWriter(clone_from=io.BytesIO(SAMPLE.read_bytes()))
    stream = EncodedStreamObject()
    stream._data = b"this is not zlib data" * 10
    stream[NameObject("/Filter")] = NameObject("/FlateDecode")
    writer.pages[1].replace_contents(stream)
    buffer = io.BytesIO()
    writer.write(buffer)
    pages = read_pages(io.BytesIO(buffer.getvalue()), name="doc.pdf")
    assert [n for n, _ in pages] == [1, 2, 3]
    assert pages[1][1] == "" and "$412,380" in pages[0][1] and "Conclusion" in pages[2][1]


def _encrypted(password: str) -> bytes:
    writer = PdfWriter(clone_from=io.BytesIO(SAMPLE.read_bytes()))
    writer.encrypt(user_password=password, owner_password="owner-secret", algorithm="AES-256")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def test_encrypted_without_password():
    assert "encrypted" in _error(InvalidInput, _encrypted("s3cret"))


def test_encrypted_wrong_password():
    message = _error(InvalidInput, _encrypted("s3cret"), password="guess")
    assert "password given does not open" in message
    assert "guess" not in message and "s3cret" not in message  # secrets never in messages


def test_encrypted_right_password():
    data = _encrypted("s3cret")
    pages = read_pages(io.BytesIO(data), password="s3cret")
    assert len(pages) == 3 and "$412,380" in pages[0][1]
    assert pdf_info(io.BytesIO(data), password="s3cret")["encrypted"] is True


def test_encrypted_with_empty_user_password_opens_without_one():
    pages = read_pages(io.BytesIO(_encrypted("")))
    assert len(pages) == 3


def test_zero_pages():
    buffer = io.BytesIO()
    PdfWriter().write(buffer)
    assert "no pages" in _error(InvalidInput, buffer.getvalue())


def test_scanned_pdf_has_no_text_layer():
    data = _image_only_pdf(2)
    assert len(PdfReader(io.BytesIO(data)).pages) == 2
    assert "no text layer" in _error(UnsupportedInput, data)
    assert read_pages(io.BytesIO(data), allow_no_text=True) == [(1, ""), (2, "")]


def test_blank_first_page_is_kept_in_order():
    writer = PdfWriter(clone_from=io.BytesIO(_image_only_pdf(1)))
    for page in PdfReader(io.BytesIO(SAMPLE.read_bytes())).pages[:2]:
        writer.add_page(page)
    buffer = io.BytesIO()
    writer.write(buffer)
    pages = read_pages(io.BytesIO(buffer.getvalue()))
    assert [n for n, _ in pages] == [1, 2, 3]
    assert pages[0][1] == "" and "$412,380" in pages[1][1]


def test_time_budget():
    message = _error(UnsupportedInput, SAMPLE.read_bytes(), time_budget=0)
    assert "budget" in message


def test_valid_text_pairs_drops_and_maps_surrogates():
    from marginalia.tools.pdf import valid_text

    assert valid_text("set \ud835\udc9c of") == "set A of"  # a pair split in two code points: joined, mapped
    assert valid_text("loss \ud835 and \udc9c.") == "loss  and ."  # halves with no partner: dropped
    assert valid_text("\U0001d4c1\u2081/\U0001d4c1\u2082 norm") == "l\u2081/l\u2082 norm"  # only math letters
    assert valid_text("na\u00efve caf\u00e9") == "na\u00efve caf\u00e9"
    assert normalize_text("a \ud835b").encode("utf-8") == b"a b"


#: Title and authors as printed on each fixture's first page (read by a person), for those in the repo.
FRONT_PAGES = {
    name: (paper["title"], paper["authors"])
    for name, paper in json.loads((FIXTURES / "front_pages.json").read_text())["papers"].items()
    if (FIXTURES / name).exists()
}


@pytest.mark.parametrize("name", sorted(FRONT_PAGES))
def test_title_and_authors_from_metadata_and_first_page_layout(name):
    """example2's metadata title is a job number ("6489122611071476 1..10"), test2's author is
    "Nuala E. Tully {et al.}": both are refused and the first page's layout is read instead."""
    title, authors = FRONT_PAGES[name]
    info = pdf_info(FIXTURES / name)
    assert (info["title"], info["authors"]) == (title, authors)


def test_sections_from_layout_headings():
    from marginalia.tools.pdf import headings, sections

    found = headings(FIXTURES / "CERMINE__test2.pdf")
    listed = sections(found, 6)
    assert [s["title"] for s in listed] == [
        "1. Introduction", "2. Methods", "3. Results", "4. Experience of Programmes", "5. Maintenance",
        "6. Improvements", "7. GP Services", "8. Quality of Care", "9. Labelling the Condition “Heart Failure”",
        "10. Medication", "11. Discussion",
    ]  # fmt: skip
    assert listed[0]["pages"] == [1, 2] and listed[-1]["pages"] == [4, 5]  # Discussion ends at Acknowledgments
    assert {"title": "References", "page": 5} in found  # a boundary, not a section
    bmc = [s["title"] for s in sections(headings(FIXTURES / "CERMINE__example2.pdf"), 10)]
    assert bmc[:3] == ["Background", "Methods", "Results"] and "Conclusions" in bmc and "Additional file" not in bmc
