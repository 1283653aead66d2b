"""Property tests of the shared validator (:mod:`marginalia.storage.rules`) with hypothesis.

Each property restates a spec rule independently of the implementation (e.g. R6.2 via Unicode
categories), so a regression in either the rule or the code shows up as a counterexample.
"""

from __future__ import annotations

import base64
import hashlib
import unicodedata
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from marginalia.errors import InvalidAnnotationName, InvalidArgument, InvalidPayload, PayloadTooLarge
from marginalia.storage import rules

ALLOWED_PUNCT = set("0123456789_.-")


def spec_says_valid(name: str) -> bool:
    """R6.1-R6.4 written out directly from the spec text."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return False
    if not name.strip() or size > 512:
        return False
    if not all(c in ALLOWED_PUNCT or unicodedata.category(c).startswith("L") for c in name):
        return False
    return not (name[:3].lower() == "aws" or name[:2].lower() == "s3")


names = st.one_of(
    st.text(alphabet=st.sampled_from("abcAWSs3é名_.-0 /:\u0301\u0663"), max_size=12),
    st.text(max_size=40),
    st.text(alphabet=st.characters(categories=["L"]), min_size=100, max_size=300),
)


@given(names)
def test_name_validator_matches_the_spec(name):
    assert (rules.annotation_name_error(name) is None) == spec_says_valid(name)


@given(names)
def test_name_errors_follow_the_precedence(name):
    problem = rules.annotation_name_error(name)
    if problem is None:
        assert rules.validate_annotation_name(name, bucket="bkt", key="k") == name
        return
    code, reason = problem
    if not name.strip():
        assert code == "UserAnnotationNameMustBeSpecified"
    elif len(name.encode("utf-8", "surrogatepass")) > 512:
        assert code == "AnnotationNameTooLong"
    else:
        assert code == "InvalidAnnotationName"
    assert "(R6." in reason
    with pytest.raises(InvalidAnnotationName, match=r"s3://bkt/k"):
        rules.validate_annotation_name(name, bucket="bkt", key="k")


@given(st.binary(max_size=64))
def test_payload_bytes_accepted_iff_nonempty_utf8(data):
    try:
        data.decode("utf-8")
        valid = len(data) > 0
    except UnicodeDecodeError:
        valid = False
    if valid:
        assert rules.payload_bytes(data, bucket="bkt", key="k", name="n") == data
    else:
        with pytest.raises(InvalidPayload) as err:
            rules.payload_bytes(data, bucket="bkt", key="k", name="n")
        assert err.value.code == ("EntityTooSmall" if not data else "UnsupportedMediaType")


@given(st.text(min_size=1, max_size=64))
def test_str_payloads_are_encoded_as_utf8(text):
    try:
        expected = text.encode("utf-8")
    except UnicodeEncodeError:
        with pytest.raises(InvalidPayload):
            rules.payload_bytes(text, bucket="bkt", key="k", name="n")
        return
    assert rules.payload_bytes(text, bucket="bkt", key="k", name="n") == expected


def test_payload_size_is_counted_in_bytes():
    assert (
        len(rules.payload_bytes("€" * (rules.MAX_PAYLOAD_BYTES // 3), bucket="b", key="k", name="n"))
        <= rules.MAX_PAYLOAD_BYTES
    )
    with pytest.raises(PayloadTooLarge, match="1,048,577 bytes"):
        rules.payload_bytes(b"x" * (rules.MAX_PAYLOAD_BYTES + 1), bucket="bkt", key="k", name="n")
    with pytest.raises(InvalidPayload):
        rules.payload_bytes(123, bucket="bkt", key="k", name="n")  # type: ignore[arg-type]


@given(st.integers(min_value=-5, max_value=1500) | st.booleans())
def test_page_size_bounds(size):
    if isinstance(size, int) and not isinstance(size, bool) and 1 <= size <= 1000:
        assert rules.validate_page_size(size) == size
    else:
        with pytest.raises(InvalidArgument):
            rules.validate_page_size(size)


@given(st.text(max_size=80), st.sampled_from(["objects", "annotations"]))
def test_tokens_round_trip_and_are_scoped(last, scope):
    token = rules.encode_token(scope, last, cp="x/")
    assert token.isascii() and "=" not in token
    fields = rules.decode_token(token, scope)
    assert fields["l"] == last and fields["cp"] == "x/"
    other = "annotations" if scope == "objects" else "objects"
    with pytest.raises(InvalidArgument):
        rules.decode_token(token, other)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=40))
def test_garbage_tokens_are_invalid_argument(garbage):
    try:
        fields = rules.decode_token(garbage, "annotations")
    except InvalidArgument as exc:
        assert "continuation token" in str(exc)
    else:  # only a well-formed token of the right scope may decode
        assert rules.encode_token("annotations", fields["l"], **{k: v for k, v in fields.items() if k not in "sl"})


@given(st.binary(max_size=256))
def test_checksums_match_reference_implementations(data):
    assert rules.checksum("CRC32", data) == base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
    assert rules.checksum("sha256", data) == base64.b64encode(hashlib.sha256(data).digest()).decode()
    assert rules.checksum("SHA1", data) == base64.b64encode(hashlib.sha1(data).digest()).decode()
    rules.verify_checksum("CRC64NVME", rules.checksum("CRC64NVME", data), data)


def test_crc_check_values():
    # The published check values of each CRC for the ASCII string "123456789".
    assert rules.crc64nvme(b"123456789") == 0xAE8B14860A799888
    assert rules.crc32c(b"123456789") == 0xE3069283
    with pytest.raises(InvalidPayload) as err:
        rules.verify_checksum("CRC32", rules.checksum("CRC32", b"a"), b"b", uri="s3://bkt/k")
    assert err.value.code == "BadDigest" and "s3://bkt/k" in str(err.value)
    with pytest.raises(InvalidArgument):
        rules.checksum("XXHASH3", b"x")


@pytest.mark.parametrize("raw", ['"abc"', "abc", '  "abc" '])
def test_etag_normalisation(raw):
    assert rules.normalize_etag(raw) == '"abc"'
    assert rules.etags_match(raw, "abc")
    with pytest.raises(InvalidArgument):
        rules.normalize_etag('""')


def test_md5_etag_and_directive():
    assert rules.md5_etag(b"hello") == '"5d41402abc4b2a76b9719d911017c592"'
    assert rules.validate_annotation_directive("EXCLUDE") == "EXCLUDE"
    with pytest.raises(InvalidArgument, match="COPY or EXCLUDE"):
        rules.validate_annotation_directive("copy")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.text(alphabet=st.characters(categories=["L", "Nd"], include_characters="_.-"), min_size=1, max_size=20),
       payload=st.text(min_size=1, max_size=200))  # fmt: skip
def test_any_valid_name_and_payload_round_trip_through_the_local_store(local_store, name, payload):
    if not spec_says_valid(name):
        with pytest.raises(InvalidAnnotationName):
            local_store.put_annotation("bkt", "k", name, "x")
        return
    try:
        data = payload.encode("utf-8")
    except UnicodeEncodeError:
        return
    if not local_store.bucket_exists("bkt"):
        local_store.create_bucket("bkt")
        local_store.put_object("bkt", "k", b"x")
    info = local_store.put_annotation("bkt", "k", name, payload)
    got = local_store.get_annotation("bkt", "k", name)
    assert got.payload == data and info.etag == rules.md5_etag(data)
    assert name in {a.name for a in local_store.list_annotations("bkt", "k", prefix=name)}
