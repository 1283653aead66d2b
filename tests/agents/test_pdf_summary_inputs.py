"""Bad PDFs: each stops with one clear error naming the object, and nothing is written.

The broken files are made here from a real, valid PDF (the packaged sample report): cut short,
overwritten with garbage, encrypted, with no pages, with pages but no text layer.
"""

from __future__ import annotations

import io
import json
import random

import pytest
from pypdf import PdfReader, PdfWriter

import marginalia.api as api
from marginalia import api_documents as docs
from marginalia.errors import InvalidInput, UnsupportedInput
from marginalia.samples.make_sample_pdf import sample_report_bytes

PASSWORD = "Tr0ub4dor-pdf-pw"


def _write(writer: PdfWriter) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def truncated() -> bytes:
    good = sample_report_bytes()
    return good[: len(good) * 2 // 3]


def corrupt() -> bytes:
    """A real header, then garbage: pypdf cannot rebuild anything from it."""
    rnd = random.Random(5)
    return b"%PDF-1.7\n" + bytes(rnd.randrange(256) for _ in range(4000))


def broken_page_tree() -> bytes:
    return sample_report_bytes().replace(b"/Kids", b"/Kidz")


def encrypted() -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(sample_report_bytes())))
    writer.encrypt(PASSWORD, algorithm="AES-256")
    return _write(writer)


def zero_pages() -> bytes:
    return _write(PdfWriter())


def image_only() -> bytes:
    """Two pages that only draw (a grey box, as a scan's image would): no text layer."""
    from pypdf.generic import DecodedStreamObject

    writer = PdfWriter()
    for _ in range(2):
        page = writer.add_blank_page(612, 792)
        drawing = DecodedStreamObject()
        drawing.set_data(b"0.5 g 72 72 468 648 re f")
        page.replace_contents(drawing)
    return _write(writer)


BAD_PDFS = {
    "truncated": (truncated, InvalidInput, "corrupt or truncated"),
    "corrupt": (corrupt, InvalidInput, "corrupt or truncated"),
    "broken page tree": (broken_page_tree, InvalidInput, "no pages"),
    "encrypted, no password": (encrypted, InvalidInput, "encrypted"),
    "zero pages": (zero_pages, InvalidInput, "no pages"),
    "image only (scanned)": (image_only, UnsupportedInput, "no text layer"),
    "not a PDF": (lambda: b"PK\x03\x04 this is a zip, not a PDF", InvalidInput, "not a PDF"),
    "empty file": (lambda: b"", InvalidInput, "empty"),
}


@pytest.mark.parametrize("case", sorted(BAD_PDFS))
def test_bad_pdf_stops_with_a_clear_error_and_writes_nothing(agent_env, case):
    make, error, words = BAD_PDFS[case]
    key = f"bad/{case.replace(' ', '-')}.pdf"
    uri = agent_env.put(key, make())
    with pytest.raises(error) as caught:
        docs.summarize(uri)
    message = str(caught.value)
    assert words in message and uri in message and "Traceback" not in message
    assert agent_env.all_annotations() == []
    if case in REFUSED_BEFORE_A_THREAD:  # its first KiB already says it is no PDF: no thread at all
        assert agent_env.index().list() == []
    else:  # found while reading pages: the thread is recorded as failed, with the reason
        (record,) = agent_env.index().list()
        assert record.status == "failed" and words in record.error


REFUSED_BEFORE_A_THREAD = {"not a PDF", "empty file"}


def test_wrong_password_is_named_and_writes_nothing(local_env):
    uri = local_env.put("enc/q3.pdf", encrypted())
    with pytest.raises(InvalidInput, match="password given does not open"):
        docs.summarize(uri, password="not-it")
    assert local_env.all_annotations() == []


def _every_stored_byte(env) -> bytes:
    """Every object and annotation payload of every bucket the test used (data and state)."""
    from marginalia.runtime import state_location

    state = state_location(env.store)
    blobs = []
    for bucket in {env.bucket, state.bucket}:
        for obj in env.store.list_objects(bucket):
            blobs.append(env.store.get_object(bucket, obj.key)[0])
            for info in env.store.list_annotations(bucket, obj.key):
                blobs.append(env.store.get_annotation(bucket, obj.key, info.name).payload)
    return b"\n".join(blobs)


def test_encrypted_pdf_with_its_password_and_the_password_is_never_stored(agent_env, monkeypatch):
    key = "enc/q3.pdf"
    uri = agent_env.put(key, encrypted())
    waiting = docs.summarize(uri, password=PASSWORD, review=True)
    assert waiting.status == "waiting" and waiting.proposal["title"] == "Q3 Platform Cost Review"

    # A review is answered later, as from another process (resume builds a fresh context): with
    # MARGINALIA_PDF_PASSWORD the revision re-reads the PDF; without it, it revises from the
    # summary alone rather than fail and strand the thread past its interrupt.
    monkeypatch.setenv("MARGINALIA_PDF_PASSWORD", PASSWORD)
    revised = api.resume(waiting.thread_id, action="reject", feedback="Focus on Karpenter.")
    assert revised.status == "waiting" and "Karpenter" in revised.proposal["summary"]
    assert "Karpenter" not in waiting.proposal["summary"]  # it came from the re-read pages
    monkeypatch.delenv("MARGINALIA_PDF_PASSWORD")
    shorter = api.resume(waiting.thread_id, action="reject", feedback="Shorter, please.")
    assert shorter.status == "waiting" and shorter.iterations == 2
    assert len(shorter.proposal["summary"].split()) < len(revised.proposal["summary"].split())
    done = api.resume(waiting.thread_id, action="approve")
    assert done.status == "done" and done.iterations == 3
    assert agent_env.annotation(key, "summary")["summary"] == shorter.proposal["summary"]

    stored = _every_stored_byte(agent_env)
    assert b"Maria Lopez" in stored  # the scan does see the summary and checkpoints...
    assert PASSWORD.encode() not in stored  # ...and the password is nowhere


def test_scanned_pdf_with_allow_no_text_gets_a_no_text_summary(agent_env):
    key = "scan/page.pdf"
    uri = agent_env.put(key, image_only())
    result = docs.summarize(uri, allow_no_text=True)
    assert result.status == "done"
    summary = agent_env.annotation(key, "summary")
    assert summary["status"] == "no_text" and summary["page_count"] == 2 and summary["summary"] == ""
    assert summary["provenance"]["agent"] == "pdf_summary"


def test_cli_bad_pdf_is_one_line_exit_2(local_env):
    uri = local_env.put("bad/scan.pdf", image_only())
    proc = local_env.run("summarize", uri)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "no text layer" in lines[0] and "--allow-no-text" in lines[0]
    from typer.testing import CliRunner

    from marginalia.cli import app

    ok = CliRunner().invoke(app, ["summarize", uri, "--allow-no-text"])  # in-process: flags reach the API
    assert ok.exit_code == 0 and "wrote summary" in ok.output, ok.output
    assert local_env.annotation("bad/scan.pdf", "summary")["status"] == "no_text"


# --- a text layer that is not valid Unicode ---------------------------------------------------
#: Byte codes of the font below whose ToUnicode map gives UTF-16 surrogate HALVES, as real
#: producers do for mathematical alphabets: 0x81 0x82 are the two halves of 𝒜 (U+1D49C) in two
#: entries, 0x80 is a high half with no partner, 0x83 is 𝓁 (U+1D4C1) written as a whole pair.
_SURROGATE_CMAP = b"""/CIDInit /ProcSet findresource begin 12 dict begin begincmap
/CMapName /MathHalves def
1 begincodespacerange <00> <FF> endcodespacerange
1 beginbfrange <20> <7E> <0020> endbfrange
4 beginbfchar <80> <D835> <81> <D835> <82> <DC9C> <83> <D835DCC1> endbfchar
endcmap CMapName currentdict /CMap defineresource pop end end"""

_MATH_PARAGRAPHS = [
    b"Learning a feature set \x81\x82 from large corpora is the problem we study in this paper.",
    b"The loss \x83 combines a data term and a sparse penalty \x80 over all feature weights.",
    b"We show that joint selection over distributed shards keeps the useful features of \x81\x82.",
    b"Experiments on a large corpus show that the selected model improves translation quality.",
    b"The penalty \x83 removes most features while the accuracy of the model stays the same.",
]


def math_alphabet_pdf(pages: int = 2) -> bytes:
    """A real PDF whose text layer makes pypdf return lone and split UTF-16 surrogates."""
    from pypdf.generic import DecodedStreamObject, DictionaryObject, NameObject

    writer = PdfWriter()
    cmap = DecodedStreamObject()
    cmap.set_data(_SURROGATE_CMAP)
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
            NameObject("/ToUnicode"): writer._add_object(cmap),
        }
    )
    for number in range(pages):
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
        lines = [b"BT /F1 16 Tf 72 720 Td (Sparse Features for \x81\x82 Models) Tj ET"] if number == 0 else []
        for i, paragraph in enumerate(_MATH_PARAGRAPHS):
            lines.append(b"BT /F1 10 Tf 72 %d Td (%s) Tj ET" % (680 - 20 * i, paragraph))
        content = DecodedStreamObject()
        content.set_data(b"\n".join(lines))
        page.replace_contents(content)
    return _write(writer)


def test_math_alphabet_text_layer_is_read_as_valid_text():
    from marginalia.tools.pdf import read_pages

    raw = PdfReader(io.BytesIO(math_alphabet_pdf())).pages[0].extract_text()
    with pytest.raises(UnicodeEncodeError):  # what pypdf gives: not storable as it is
        raw.encode("utf-8")
    pages = read_pages(io.BytesIO(math_alphabet_pdf()))
    text = "\n".join(t for _, t in pages)
    text.encode("utf-8")
    assert "feature set A from" in text and "The loss l combines" in text  # pairs joined, letters plain
    assert "sparse penalty over" in text  # the half with no partner names no character: dropped


def test_math_alphabet_pdf_is_summarised_approved_and_annotated(local_env):
    """The crash of issue 13: summarize -> approve -> annotation, one process each, no traceback."""
    uri = local_env.put("papers/math.pdf", math_alphabet_pdf())
    proc = local_env.run("summarize", uri, "--review")
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    thread = next(line.split("approve ", 1)[1].split()[0] for line in proc.stdout.splitlines() if "approve " in line)
    approved = local_env.run("approve", thread)
    assert approved.returncode == 0 and "Traceback" not in approved.stderr, approved.stderr
    summary = local_env.annotation("papers/math.pdf", "summary")
    blob = json.dumps(summary, ensure_ascii=False)
    blob.encode("utf-8")
    assert "\\ud835" not in json.dumps(summary) and summary["page_count"] == 2
    assert "Sparse Features for A Models" in blob
