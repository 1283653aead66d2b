"""S3 Annotations contract (spec §2-§8, §11, §13, §14, §20), run on every backend via ``store``."""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor

import pytest

from marginalia.errors import (
    AnnotationLimitExceeded,
    AnnotationNotFound,
    BucketNotFound,
    InvalidAnnotationName,
    InvalidArgument,
    InvalidPayload,
    MethodNotAllowed,
    ObjectNotFound,
    PayloadTooLarge,
    PreconditionFailed,
)
from marginalia.storage import rules

MiB = 1024 * 1024


def md5_etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'


@pytest.fixture
def obj(store, bucket, key):
    """An existing object: (bucket, key, ObjectInfo)."""
    k = key("doc.txt")
    return bucket, k, store.put_object(bucket, k, b"the object body")


# --- put / get / overwrite -------------------------------------------------------------------
@pytest.mark.parametrize(
    "payload",
    [
        b"x",
        '{"summary": "ok", "score": 0.9}',
        "caf\u00e9 \u2603 \U0001f600",
        b"\xef\xbb\xbfBOM kept",
        b"nul\x00inside",
        b"a\r\nb\n",
    ],
)
def test_put_then_get_returns_the_exact_bytes(store, obj, payload):
    bucket, key, _ = obj
    expected = payload.encode("utf-8") if isinstance(payload, str) else payload
    info = store.put_annotation(bucket, key, "agent.result", payload)
    assert info.name == "agent.result"
    assert info.size == len(expected)
    assert info.etag == md5_etag(expected)  # R9.8
    got = store.get_annotation(bucket, key, "agent.result")
    assert got.payload == expected  # R7.5: unchanged
    assert got.info.etag == info.etag and got.info.size == len(expected)
    assert got.info.checksum_algorithm == "CRC32"  # what boto3's default client sends (R9.3)
    assert got.info.checksum == rules.checksum("CRC32", expected)


def test_annotations_do_not_touch_the_object(store, obj):
    bucket, key, before = obj
    store.put_annotation(bucket, key, "a", "1")
    store.put_annotation(bucket, key, "a", "2")
    store.delete_annotation(bucket, key, "a")
    after = store.head_object(bucket, key)
    assert (after.etag, after.size, after.last_modified) == (before.etag, before.size, before.last_modified)  # R1.6
    assert store.get_object(bucket, key)[0] == b"the object body"


def test_overwrite_is_last_writer_wins(store, obj):
    bucket, key, _ = obj
    first = store.put_annotation(bucket, key, "status", "running")
    second = store.put_annotation(bucket, key, "status", "done")
    assert first.etag != second.etag
    assert store.get_annotation(bucket, key, "status").payload == b"done"
    assert [a.name for a in store.list_annotations(bucket, key)] == ["status"]


def test_json_helper_writes_compact_utf8(store, obj):
    bucket, key, _ = obj
    store.put_json_annotation(bucket, key, "agent.summary", {"title": "Café", "n": [1, 2]})
    got = store.get_annotation(bucket, key, "agent.summary")
    assert got.payload == '{"title":"Café","n":[1,2]}'.encode()
    assert got.json() == {"title": "Café", "n": [1, 2]}


# --- missing things --------------------------------------------------------------------------
def test_missing_name_object_and_bucket(store, obj, key):
    bucket, k, _ = obj
    with pytest.raises(AnnotationNotFound):
        store.get_annotation(bucket, k, "absent")
    with pytest.raises(ObjectNotFound):
        store.get_annotation(bucket, key("absent.txt"), "x")
    with pytest.raises(ObjectNotFound):
        store.put_annotation(bucket, key("absent.txt"), "x", "1")  # R2.8: never creates the object
    with pytest.raises(ObjectNotFound):
        store.head_object(bucket, key("absent.txt"))
    with pytest.raises(ObjectNotFound):
        store.list_annotations_page(bucket, key("absent.txt"))
    with pytest.raises(BucketNotFound):
        store.put_annotation("nobucket-" + bucket[-20:], k, "x", "1")


def test_delete_is_permanent_and_idempotent(store, obj):
    bucket, key, _ = obj
    store.put_annotation(bucket, key, "tmp", "1")
    store.delete_annotation(bucket, key, "tmp")
    with pytest.raises(AnnotationNotFound):
        store.get_annotation(bucket, key, "tmp")
    store.delete_annotation(bucket, key, "tmp")  # R5.4
    store.delete_annotation(bucket, key, "never-there")
    assert list(store.list_annotations(bucket, key)) == []


# --- listing ---------------------------------------------------------------------------------
def test_list_sorted_by_utf8_bytes_paginated_and_filtered(store, obj):
    bucket, key, _ = obj
    names = ["b", "a", "Z", "z", "é", "agent.summary", "agent.keywords", "agent-x", "_u", "0"]
    for n in names:
        store.put_annotation(bucket, key, n, n)
    expected = sorted(names, key=lambda n: n.encode("utf-8"))  # R4.12
    assert [a.name for a in store.list_annotations(bucket, key)] == expected

    pages, token, seen = 0, None, []
    while True:
        page = store.list_annotations_page(bucket, key, max_results=3, continuation_token=token)
        assert len(page.annotations) <= 3
        seen += [a.name for a in page.annotations]
        pages += 1
        if not (token := page.next_token):
            break
    assert seen == expected and pages == 4

    assert [a.name for a in store.list_annotations(bucket, key, prefix="agent.")] == ["agent.keywords", "agent.summary"]
    assert [a.name for a in store.list_annotations(bucket, key, prefix="agent", page_size=1)] == [
        "agent-x", "agent.keywords", "agent.summary"
    ]  # fmt: skip
    assert list(store.list_annotations(bucket, key, prefix="nothing")) == []
    entry = next(a for a in store.list_annotations(bucket, key) if a.name == "é")
    assert entry.size == 2 and entry.etag == md5_etag("é".encode())


def test_list_empty_object_has_no_token(store, obj):
    bucket, key, _ = obj
    page = store.list_annotations_page(bucket, key)
    assert page.annotations == [] and page.next_token is None


@pytest.mark.parametrize("size", [0, 1001, -5])
def test_list_page_size_must_be_1_to_1000(store, obj, size):
    bucket, key, _ = obj
    with pytest.raises(InvalidArgument):
        store.list_annotations_page(bucket, key, max_results=size)


@pytest.mark.parametrize("token", ["", "garbage!", "bm90LWpzb24"])
def test_bad_continuation_token_is_invalid_argument(store, obj, token):
    bucket, key, _ = obj
    store.put_annotation(bucket, key, "a", "1")
    with pytest.raises(InvalidArgument):  # R4.10
        store.list_annotations_page(bucket, key, continuation_token=token)


# --- names (R6) ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["a", "a" * 512, "é" * 256, "名" * 170, "agent.run-2026_06.result", "0abc", "A.b-C_d", "as3", "xaws"]
)
def test_valid_names_at_and_inside_the_limits(store, obj, name):
    bucket, key, _ = obj
    store.put_annotation(bucket, key, name, "ok")
    assert store.get_annotation(bucket, key, name).info.name == name
    assert [a.name for a in store.list_annotations(bucket, key)] == [name]


@pytest.mark.parametrize(
    "name, code",
    [
        ("", "UserAnnotationNameMustBeSpecified"),
        ("   ", "UserAnnotationNameMustBeSpecified"),
        ("a" * 513, "AnnotationNameTooLong"),
        ("é" * 256 + "a", "AnnotationNameTooLong"),
        ("has space", "InvalidAnnotationName"),
        ("a/b", "InvalidAnnotationName"),
        ("a:b", "InvalidAnnotationName"),
        ("a@b", "InvalidAnnotationName"),
        ("e\u0301", "InvalidAnnotationName"),  # combining mark is not a letter (R6.6)
        ("\u0663", "InvalidAnnotationName"),  # Arabic-Indic digit: ASCII digits only (R6.2 strict)
        ("aws", "InvalidAnnotationName"),
        ("AWSome", "InvalidAnnotationName"),
        ("Aws.x", "InvalidAnnotationName"),
        ("s3_data", "InvalidAnnotationName"),
        ("S3", "InvalidAnnotationName"),
        ("a" * 600 + " ", "AnnotationNameTooLong"),  # precedence: too long before invalid (R6.5)
    ],
)
def test_invalid_names_fail_the_same_way_everywhere(store, obj, name, code):
    bucket, key, _ = obj
    for call in (
        lambda: store.put_annotation(bucket, key, name, "x"),
        lambda: store.get_annotation(bucket, key, name),
        lambda: store.delete_annotation(bucket, key, name),
    ):
        with pytest.raises(InvalidAnnotationName) as err:
            call()
        assert err.value.code == code
        assert f"s3://{bucket}/{key}" in str(err.value)
    assert list(store.list_annotations(bucket, key)) == []


# --- payloads (R7) ---------------------------------------------------------------------------
@pytest.mark.parametrize("payload", [b"a" * MiB, "é" * (MiB // 2), "😀" * (MiB // 4)])
def test_payload_of_exactly_one_mib_is_accepted(store, obj, payload):
    bucket, key, _ = obj
    info = store.put_annotation(bucket, key, "big", payload)
    assert info.size == MiB
    assert store.get_annotation(bucket, key, "big").payload == (
        payload if isinstance(payload, bytes) else payload.encode()
    )


@pytest.mark.parametrize(
    "payload, error, code",
    [
        (b"", InvalidPayload, "EntityTooSmall"),
        ("", InvalidPayload, "EntityTooSmall"),
        (b"a" * (MiB + 1), PayloadTooLarge, "EntityTooLarge"),
        ("é" * (MiB // 2) + "a", PayloadTooLarge, "EntityTooLarge"),  # bytes, not characters
        (b"\xff\xfe", InvalidPayload, "UnsupportedMediaType"),
        (b"ok then \xc3", InvalidPayload, "UnsupportedMediaType"),  # truncated sequence
        (b"\xed\xa0\x80", InvalidPayload, "UnsupportedMediaType"),  # encoded surrogate
    ],
)
def test_bad_payloads_are_rejected(store, obj, payload, error, code):
    bucket, key, _ = obj
    with pytest.raises(error) as err:
        store.put_annotation(bucket, key, "p", payload)
    assert err.value.code == code
    with pytest.raises(AnnotationNotFound):
        store.get_annotation(bucket, key, "p")


# --- ObjectIfMatch (R14) ---------------------------------------------------------------------
def test_object_if_match_guards_put_and_delete(store, obj):
    bucket, key, info = obj
    store.put_annotation(bucket, key, "a", "quoted", if_match=info.etag)
    store.put_annotation(bucket, key, "b", "unquoted", if_match=info.etag.strip('"'))  # R14.2
    with pytest.raises(PreconditionFailed):
        store.put_annotation(bucket, key, "c", "x", if_match=md5_etag(b"other"))
    with pytest.raises(PreconditionFailed):
        store.delete_annotation(bucket, key, "a", if_match=md5_etag(b"other"))
    assert store.get_annotation(bucket, key, "a").payload == b"quoted"  # still there
    store.delete_annotation(bucket, key, "a", if_match=info.etag)
    assert [a.name for a in store.list_annotations(bucket, key)] == ["b"]

    store.put_object(bucket, key, b"rewritten")  # the ETag read earlier is now stale
    with pytest.raises(PreconditionFailed):
        store.put_annotation(bucket, key, "result", "derived from the old body", if_match=info.etag)


# --- lifecycle (R11) -------------------------------------------------------------------------
def test_unversioned_overwrite_and_delete_drop_annotations(store, obj):
    bucket, key, _ = obj
    store.put_annotation(bucket, key, "a", "1")
    store.put_object(bucket, key, b"new body")  # R11.3
    assert list(store.list_annotations(bucket, key)) == []
    store.put_annotation(bucket, key, "b", "1")
    store.delete_object(bucket, key)
    store.put_object(bucket, key, b"reborn")
    assert list(store.list_annotations(bucket, key)) == []


def test_versioned_lifecycle(store, versioned_bucket, key):
    b, k = versioned_bucket, key("doc")
    v1 = store.put_object(b, k, b"one")
    info = store.put_annotation(b, k, "summary", "of one")
    assert info.version_id == v1.version_id
    v2 = store.put_object(b, k, b"two")
    assert list(store.list_annotations(b, k)) == []  # R11.2: a new version starts empty
    assert store.get_annotation(b, k, "summary", version_id=v1.version_id).payload == b"of one"  # R11.1
    store.put_annotation(b, k, "late", "on a noncurrent version", version_id=v1.version_id)
    assert [a.name for a in store.list_annotations(b, k, version_id=v1.version_id)] == ["late", "summary"]
    store.put_annotation(b, k, "summary", "of two")

    store.delete_object(b, k)  # delete marker: annotations kept (R11.4)
    with pytest.raises(ObjectNotFound):
        store.get_annotation(b, k, "summary")
    with pytest.raises(ObjectNotFound):
        store.list_annotations_page(b, k)
    assert store.get_annotation(b, k, "summary", version_id=v2.version_id).payload == b"of two"

    store.delete_object(b, k, version_id=v1.version_id)  # R11.5: the version and its annotations
    with pytest.raises(ObjectNotFound):
        store.get_annotation(b, k, "summary", version_id=v1.version_id)
    with pytest.raises(ObjectNotFound):
        store.put_annotation(b, k, "x", "1", version_id=v1.version_id)


def test_annotation_on_unknown_version(store, versioned_bucket, key):
    other = store.put_object(versioned_bucket, key("other"), b"x")
    store.put_object(versioned_bucket, key("doc"), b"y")
    with pytest.raises(ObjectNotFound) as err:
        store.put_annotation(versioned_bucket, key("doc"), "a", "1", version_id=other.version_id)
    assert err.value.code == "NoSuchVersion"
    assert not isinstance(err.value, MethodNotAllowed)


def test_object_if_match_uses_the_targeted_version(store, versioned_bucket, key):
    b, k = versioned_bucket, key("doc")
    v1 = store.put_object(b, k, b"one")
    store.put_object(b, k, b"two")
    store.put_annotation(b, k, "a", "1", version_id=v1.version_id, if_match=v1.etag)  # R14.3
    with pytest.raises(PreconditionFailed):
        store.put_annotation(b, k, "a", "1", if_match=v1.etag)  # current is v2


def test_copy_from_a_specific_source_version(store, versioned_bucket, key):
    b, k = versioned_bucket, key("src")
    v1 = store.put_object(b, k, b"one")
    store.put_annotation(b, k, "about", "version one")
    store.put_object(b, k, b"two")
    store.put_annotation(b, k, "about", "version two")
    copied = store.copy_object(b, k, b, key("dst"), src_version_id=v1.version_id)
    assert copied.version_id and copied.version_id != v1.version_id
    assert store.get_object(b, key("dst"))[0] == b"one"
    assert store.get_annotation(b, key("dst"), "about").payload == b"version one"  # R13.5


# --- the 1,000 limit (R8.1): the slow one, once per backend --------------------------------
def test_one_thousand_annotations_limit(store, obj):
    bucket, key, _ = obj
    names = [f"n{i:04d}" for i in range(rules.MAX_ANNOTATIONS_PER_VERSION)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda n: store.put_annotation(bucket, key, n, n), names))
    with pytest.raises(AnnotationLimitExceeded) as err:
        store.put_annotation(bucket, key, "one-too-many", "x")
    assert err.value.code == "AnnotationLimitExceeded"
    store.put_annotation(bucket, key, "n0500", "overwrite at the limit is fine")
    page = store.list_annotations_page(bucket, key)
    assert len(page.annotations) == 1000 and page.next_token is None
    assert [a.name for a in page.annotations] == names
    pages = []
    token = None
    while True:
        page = store.list_annotations_page(bucket, key, max_results=300, continuation_token=token)
        pages.append(len(page.annotations))
        if not (token := page.next_token):
            break
    assert pages == [300, 300, 300, 100]
    store.delete_annotation(bucket, key, "n0000")
    store.put_annotation(bucket, key, "one-more", "fits again")
    assert store.get_annotation(bucket, key, "n0500").payload == b"overwrite at the limit is fine"


def test_checks_run_in_the_same_order_on_every_backend(store, obj):
    """One shared validator (rules.validate_annotation_address): name, then version id, then payload."""
    bucket, key, _ = obj
    with pytest.raises(InvalidAnnotationName):
        store.put_annotation(bucket, key, "", b"", version_id="")
    with pytest.raises(InvalidArgument, match=r"invalid version id '' .*\(R11\.7\)"):
        store.put_annotation(bucket, key, "ok", b"", version_id="")
    with pytest.raises(InvalidArgument, match=r"invalid version id"):
        store.list_annotations_page(bucket, key, version_id="", max_results=0)
    assert list(store.list_annotations(bucket, key)) == []
