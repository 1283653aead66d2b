"""Object contract (put/get/head/list/delete/copy/conditional put), run on every backend.

Every test takes the ``store`` fixture, so the local directory store, the boto3 backend against the
project's S3 test server and (when configured) live AWS must all give the same answers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io

import pytest

from marginalia.errors import (
    BucketNotFound,
    InvalidArgument,
    InvalidInput,
    InvalidURI,
    ObjectNotFound,
    PreconditionFailed,
)
from marginalia.storage import rules


def md5_etag(data: bytes) -> str:
    return '"' + hashlib.md5(data).hexdigest() + '"'


def test_put_get_head_round_trip(store, bucket, key):
    body = b"minutes of the meeting\n\x00\xff binary is fine for objects"
    info = store.put_object(bucket, key("a.bin"), body, content_type="text/plain", metadata={"Source": "unit"})
    assert info.etag == md5_etag(body)
    assert info.size == len(body)
    data, got = store.get_object(bucket, key("a.bin"))
    assert data == body
    head = store.head_object(bucket, key("a.bin"))
    assert head.etag == got.etag == info.etag
    assert head.size == len(body)
    assert head.content_type == "text/plain"
    assert head.metadata == {"source": "unit"}
    assert head.last_modified.tzinfo is not None
    assert abs(head.last_modified - dt.datetime.now(dt.UTC)) < dt.timedelta(minutes=5)
    assert head.version_id is None  # unversioned bucket


def test_streams_file_objects_and_paths(store, bucket, key, tmp_path):
    body = bytes(range(256)) * 12_289  # ~3 MiB: several chunks
    path = tmp_path / "big.bin"
    path.write_bytes(body)
    from_path = store.put_object(bucket, key("from-path"), path)
    from_stream = store.put_object(bucket, key("from-stream"), io.BytesIO(body))
    assert from_path.etag == from_stream.etag == md5_etag(body)
    chunks, info = store.open_object(bucket, key("from-path"))
    assert b"".join(chunks) == body and info.size == len(body)
    target = tmp_path / "out" / "copy.bin"
    target.parent.mkdir()
    store.download(bucket, key("from-stream"), target)
    assert target.read_bytes() == body
    assert [p.name for p in target.parent.iterdir()] == ["copy.bin"]  # no temp file left behind


def test_missing_object_and_bucket(store, bucket, key):
    with pytest.raises(ObjectNotFound):
        store.get_object(bucket, key("nope"))
    with pytest.raises(ObjectNotFound):
        store.head_object(bucket, key("nope"))
    missing = "nobucket-" + bucket[-20:]
    assert not store.bucket_exists(missing)
    assert store.bucket_exists(bucket)
    with pytest.raises(BucketNotFound):
        store.put_object(missing, "k", b"x")
    with pytest.raises(BucketNotFound):
        store.get_object(missing, "k")
    with pytest.raises(BucketNotFound):  # S3 answers a HEAD with a bare 404: the store asks which is missing
        store.head_object(missing, "k")


@pytest.mark.parametrize("bad_key", ["../escape", "a/../../b", "/abs/path", "a\x00b", "dir/./x", ""])
def test_unsafe_keys_rejected_before_any_call(store, bucket, bad_key):
    with pytest.raises(InvalidURI):
        store.put_object(bucket, bad_key, b"x")
    with pytest.raises(InvalidURI):
        store.get_object(bucket, bad_key)
    with pytest.raises(InvalidURI):
        store.put_annotation(bucket, bad_key, "note", "x")


def test_list_pagination_prefix_and_utf8_order(store, bucket, key):
    names = ["b", "a", "Z", "z", "é", "a/1", "a/2", "ab"]
    for n in names:
        store.put_object(bucket, key(n), n.encode())
    expected = sorted((key(n) for n in names), key=lambda k: k.encode("utf-8"))
    assert [o.key for o in store.list_objects(bucket, key())] == expected

    seen, token, pages = [], None, 0
    while True:
        page = store.list_objects_page(bucket, key(), max_keys=3, continuation_token=token)
        assert len(page.objects) <= 3
        seen += [o.key for o in page.objects]
        pages += 1
        token = page.next_token
        if token is None:
            break
    assert seen == expected and pages == 3

    assert [o.key for o in store.list_objects(bucket, key("a"))] == [key("a"), key("a/1"), key("a/2"), key("ab")]
    assert [o.key for o in store.list_objects(bucket, key(), start_after=key("b"))] == [key("z"), key("é")]
    sizes = {o.key: o.size for o in store.list_objects(bucket, key())}
    assert sizes[key("é")] == len("é".encode())


def test_list_with_delimiter_pages_through_common_prefixes(store, bucket, key):
    for n in ["x/1", "x/2", "y/1", "top", "zz/9"]:
        store.put_object(bucket, key(n), b"1")
    page = store.list_objects_page(bucket, key(), delimiter="/")
    assert [o.key for o in page.objects] == [key("top")]
    assert page.common_prefixes == [key("x/"), key("y/"), key("zz/")]
    # A page boundary that falls on a common prefix must not repeat it.
    seen_prefixes, seen_keys, token = [], [], None
    while True:
        page = store.list_objects_page(bucket, key(), delimiter="/", max_keys=1, continuation_token=token)
        seen_prefixes += page.common_prefixes
        seen_keys += [o.key for o in page.objects]
        if not (token := page.next_token):
            break
    assert seen_prefixes == [key("x/"), key("y/"), key("zz/")]
    assert seen_keys == [key("top")]


@pytest.mark.parametrize("max_keys", [0, 1001, -1])
def test_list_page_size_is_validated(store, bucket, max_keys):
    with pytest.raises(InvalidArgument):
        store.list_objects_page(bucket, max_keys=max_keys)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"delimiter": ""}, "delimiter for s3://{bucket}/{prefix} must be a non-empty string"),
        ({"continuation_token": ""}, "continuation token provided for s3://{bucket}/{prefix} is incorrect"),
    ],
)
def test_list_arguments_are_refused_alike_on_every_backend(store, bucket, key, arguments, message):
    """The shared ListObjectsV2 validator (rules.validate_list_objects) answers before the backend."""
    with pytest.raises(InvalidArgument) as err:
        store.list_objects_page(bucket, key(), **arguments)
    assert message.format(bucket=bucket, prefix=key()) in str(err.value)


@pytest.mark.parametrize("version_id", ["", "v" * 1025, 7])
def test_version_ids_are_validated_alike_on_every_backend(store, bucket, key, version_id):
    """R11.7 via rules.validate_version_id: same error and message on both backends, for every call."""
    store.put_object(bucket, key("a"), b"x")
    uri = f"s3://{bucket}/{key('a')}"
    calls = [
        lambda: store.head_object(bucket, key("a"), version_id=version_id),
        lambda: store.get_object(bucket, key("a"), version_id=version_id),
        lambda: store.delete_object(bucket, key("a"), version_id=version_id),
        lambda: store.get_annotation(bucket, key("a"), "note", version_id=version_id),
        lambda: store.copy_object(bucket, key("a"), bucket, key("b"), src_version_id=version_id),
    ]
    for call in calls:
        with pytest.raises(InvalidArgument, match=rf"invalid version id .* for {uri} \(R11.7\)"):
            call()
    assert store.get_object(bucket, key("a"))[0] == b"x"  # nothing was deleted


def test_metadata_must_map_strings_to_strings(store, bucket, key):
    with pytest.raises(InvalidInput, match="must map strings to strings"):
        store.put_object(bucket, key("m"), b"x", metadata={"n": 1})
    assert not list(store.list_objects(bucket, key()))


def test_delete_is_idempotent_and_batch_delete(store, bucket, key):
    for n in "abc":
        store.put_object(bucket, key(n), n.encode())
    store.delete_object(bucket, key("a"))
    store.delete_object(bucket, key("a"))  # again: no error
    store.delete_object(bucket, key("never-existed"))
    with pytest.raises(ObjectNotFound):
        store.head_object(bucket, key("a"))
    store.delete_objects(bucket, [key("b"), key("c"), key("missing")])
    assert list(store.list_objects(bucket, key())) == []


def test_conditional_put(store, bucket, key):
    k = key("cond")
    first = store.put_object(bucket, k, b"v1", if_none_match=True)
    with pytest.raises(PreconditionFailed):
        store.put_object(bucket, k, b"v2", if_none_match=True)
    assert store.get_object(bucket, k)[0] == b"v1"
    with pytest.raises(PreconditionFailed):
        store.put_object(bucket, k, b"v2", if_match=md5_etag(b"something else"))
    second = store.put_object(bucket, k, b"v2", if_match=first.etag)  # quoted
    third = store.put_object(bucket, k, b"v3", if_match=second.etag.strip('"'))  # unquoted (R14.2)
    assert store.get_object(bucket, k)[0] == b"v3" and third.etag == md5_etag(b"v3")
    with pytest.raises(ObjectNotFound):
        store.put_object(bucket, key("absent"), b"x", if_match=first.etag)


def test_copy_object_with_and_without_annotations(store, bucket, key):
    src = store.put_object(bucket, key("src"), b"source body", content_type="text/plain")
    store.put_annotation(bucket, key("src"), "agent.summary", '{"s":1}')
    store.put_annotation(bucket, key("src"), "note", "hello")

    copied = store.copy_object(bucket, key("src"), bucket, key("dst"))  # COPY is the default
    assert copied.etag == src.etag
    assert store.get_object(bucket, key("dst"))[0] == b"source body"
    assert [a.name for a in store.list_annotations(bucket, key("dst"))] == ["agent.summary", "note"]
    got = store.get_annotation(bucket, key("dst"), "agent.summary")
    assert got.payload == b'{"s":1}' and got.info.etag == md5_etag(b'{"s":1}')

    store.copy_object(bucket, key("src"), bucket, key("bare"), annotation_directive="EXCLUDE")
    assert store.get_object(bucket, key("bare"))[0] == b"source body"
    assert list(store.list_annotations(bucket, key("bare"))) == []

    # The copy is independent: changing the source's annotations leaves the copy's alone.
    store.put_annotation(bucket, key("src"), "note", "changed")
    assert store.get_annotation(bucket, key("dst"), "note").payload == b"hello"

    with pytest.raises(InvalidArgument):
        store.copy_object(bucket, key("src"), bucket, key("x"), annotation_directive="MERGE")
    with pytest.raises(ObjectNotFound):
        store.copy_object(bucket, key("missing"), bucket, key("x"))


def test_copy_onto_existing_key_replaces_its_annotations(store, bucket, key):
    store.put_object(bucket, key("a"), b"a")
    store.put_annotation(bucket, key("a"), "from-a", "1")
    store.put_object(bucket, key("b"), b"b")
    store.put_annotation(bucket, key("b"), "from-b", "1")
    store.copy_object(bucket, key("a"), bucket, key("b"))
    assert [a.name for a in store.list_annotations(bucket, key("b"))] == ["from-a"]  # R11.2 + R13.5


def test_versioning_basics(store, versioned_bucket, key):
    b, k = versioned_bucket, key("doc")
    assert store.is_versioned(b)
    v1 = store.put_object(b, k, b"one")
    v2 = store.put_object(b, k, b"two")
    assert v1.version_id and v2.version_id and v1.version_id != v2.version_id
    assert store.get_object(b, k)[0] == b"two"
    assert store.get_object(b, k, version_id=v1.version_id)[0] == b"one"
    assert store.head_object(b, k, version_id=v1.version_id).etag == md5_etag(b"one")
    store.delete_object(b, k)  # delete marker
    with pytest.raises(ObjectNotFound):
        store.get_object(b, k)
    assert [o.key for o in store.list_objects(b, key())] == []
    assert store.get_object(b, k, version_id=v2.version_id)[0] == b"two"
    store.delete_object(b, k, version_id=v1.version_id)  # permanent
    with pytest.raises(ObjectNotFound):
        store.get_object(b, k, version_id=v1.version_id)


def test_unknown_version_is_no_such_version(store, versioned_bucket, key):
    other = store.put_object(versioned_bucket, key("other"), b"x")  # a well-formed id of another key
    store.put_object(versioned_bucket, key("doc"), b"y")
    with pytest.raises(ObjectNotFound) as err:
        store.get_object(versioned_bucket, key("doc"), version_id=other.version_id)
    assert err.value.code == "NoSuchVersion"


def test_unversioned_bucket_reports_it(store, bucket):
    assert store.is_versioned(bucket) is False


def test_token_from_rules_is_opaque_text():
    token = rules.encode_token("objects", "a/é")
    assert "/" not in token and "é" not in token
    assert rules.decode_token(token, "objects")["l"] == "a/é"


def test_copy_onto_itself_is_refused_unless_restoring_a_version(store, bucket, versioned_bucket, key):
    store.put_object(bucket, key("same"), b"body")
    store.put_annotation(bucket, key("same"), "note", "kept")
    with pytest.raises(InvalidArgument, match="onto itself") as err:
        store.copy_object(bucket, key("same"), bucket, key("same"))
    assert err.value.code == "InvalidRequest"
    assert store.get_annotation(bucket, key("same"), "note").payload == b"kept"  # nothing changed

    # Restoring an older version onto its own key is a real copy: a new version with its annotations.
    old = store.put_object(versioned_bucket, key("doc"), b"one")
    store.put_annotation(versioned_bucket, key("doc"), "note", "of one")
    store.put_object(versioned_bucket, key("doc"), b"two")
    restored = store.copy_object(
        versioned_bucket, key("doc"), versioned_bucket, key("doc"), src_version_id=old.version_id
    )
    assert restored.version_id not in (None, old.version_id)
    assert store.get_object(versioned_bucket, key("doc"))[0] == b"one"
    assert store.get_annotation(versioned_bucket, key("doc"), "note").payload == b"of one"
