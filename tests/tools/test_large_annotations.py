"""Large JSON annotations on the real local store: split, index last, verify, clean up, limits."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from marginalia.errors import (
    AnnotationLimitExceeded,
    AnnotationNotFound,
    ConflictRetry,
    InvalidAnnotationName,
    PreconditionFailed,
)
from marginalia.storage.rules import MAX_ANNOTATIONS_PER_VERSION, MAX_PAYLOAD_BYTES
from marginalia.tools.large_annotations import INDEX_FORMAT, get_json, part_name, put_json, split_utf8

B, K = "notes", "meetings/day.vtt"


@pytest.fixture
def store(local_store):
    local_store.create_bucket(B)
    local_store.put_object(B, K, b"WEBVTT\n")
    return local_store


def _names(store, **kw) -> list[str]:
    return [a.name for a in store.list_annotations(B, K, **kw)]


def _big_doc(mib: float) -> dict:
    # Multi-byte characters everywhere, so naive byte cuts would split characters.
    unit = "Grüße 😀 – €"  # 1-, 2-, 3- and 4-byte characters
    n = int(mib * MAX_PAYLOAD_BYTES / len(unit.encode()))
    return {"segments": [{"id": 0, "text": unit * n}], "speakers": ["Zoë"]}


def test_small_document_is_written_directly(store):
    doc = {"title": "Stand-up", "attendees": ["Ana", "Bo"]}
    infos = put_json(store, B, K, "minutes", doc)
    assert [i.name for i in infos] == ["minutes"]
    assert _names(store) == ["minutes"]
    assert store.get_annotation(B, K, "minutes").json() == doc  # readable without this module
    assert get_json(store, B, K, "minutes") == doc


def test_large_document_is_split_on_character_boundaries(store):
    doc = _big_doc(2.5)
    payload = json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()
    infos = put_json(store, B, K, "transcript", doc)
    names = [i.name for i in infos]
    assert names[0] == "transcript" and names[1:] == [part_name("transcript", i) for i in range(1, len(names))]
    assert len(names) - 1 == 3
    pieces = [store.get_annotation(B, K, n).payload for n in names[1:]]
    assert all(0 < len(p) <= MAX_PAYLOAD_BYTES for p in pieces)
    for p in pieces:
        p.decode("utf-8")  # every part is valid UTF-8 on its own (R7.2)
    assert b"".join(pieces) == payload
    index = store.get_annotation(B, K, "transcript").json()
    assert index == {
        "format": INDEX_FORMAT,
        "parts": 3,
        "part_names": names[1:],
        "size": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
        "content_type": "application/json",
    }
    assert get_json(store, B, K, "transcript") == doc


class RecordingStore:
    """The real store, with the order of writes recorded (a spy, not a mock)."""

    def __init__(self, inner):
        self.inner, self.calls = inner, []

    def put_annotation(self, bucket, key, name, payload, **kw):
        self.calls.append(("put", name))
        return self.inner.put_annotation(bucket, key, name, payload, **kw)

    def delete_annotation(self, bucket, key, name, **kw):
        self.calls.append(("delete", name))
        return self.inner.delete_annotation(bucket, key, name, **kw)

    def __getattr__(self, attr):
        return getattr(self.inner, attr)


def test_index_is_written_after_its_parts_and_stale_parts_go_last(store):
    spy = RecordingStore(store)
    put_json(spy, B, K, "doc", {"x": "y" * 5000}, part_limit=1000)  # 6 parts
    assert spy.calls[-1] == ("put", "doc") and len(spy.calls) == 7
    spy.calls.clear()
    put_json(spy, B, K, "doc", {"x": "y" * 2500}, part_limit=1000)  # 3 parts
    assert [c for c in spy.calls if c[0] == "put"][-1] == ("put", "doc")
    first_delete = next(i for i, c in enumerate(spy.calls) if c[0] == "delete")
    assert spy.calls.index(("put", "doc")) < first_delete
    assert sorted(n for op, n in spy.calls if op == "delete") == [part_name("doc", i) for i in (4, 5, 6)]
    assert _names(store) == ["doc", *(part_name("doc", i) for i in (1, 2, 3))]
    assert get_json(store, B, K, "doc") == {"x": "y" * 2500}


def test_a_document_that_shrinks_below_the_limit_leaves_no_parts(store):
    put_json(store, B, K, "doc", {"x": "y" * 5000}, part_limit=1000)
    store.put_annotation(B, K, "doc.part-notes", "a different annotation that merely shares the prefix")
    put_json(store, B, K, "doc", {"x": "small"})
    assert _names(store) == ["doc", "doc.part-notes"]
    assert get_json(store, B, K, "doc") == {"x": "small"}


def test_limit_is_checked_before_anything_is_written(store):
    for i in range(MAX_ANNOTATIONS_PER_VERSION - 4):
        store.put_annotation(B, K, f"n{i:04d}", "x")
    before = _names(store)
    with pytest.raises(AnnotationLimitExceeded, match="needs 6 annotation"):
        put_json(store, B, K, "doc", {"x": "y" * 4000}, part_limit=1000)  # 5 parts + index
    assert _names(store) == before
    infos = put_json(store, B, K, "doc", {"x": "y" * 2000}, part_limit=1000)  # 3 parts + index fit exactly
    assert len(infos) == 4 and len(_names(store)) == MAX_ANNOTATIONS_PER_VERSION
    with pytest.raises(AnnotationLimitExceeded):
        put_json(store, B, K, "another", {"small": True})
    # Overwriting with the same number of parts needs no new names: allowed at the limit (R8.1).
    put_json(store, B, K, "doc", {"x": "z" * 2000}, part_limit=1000)
    assert get_json(store, B, K, "doc") == {"x": "z" * 2000}


def test_part_names_too_long_fail_before_writing(store):
    name = "n" * 510  # valid alone (<= 512 bytes), but not with ".part-0001"
    with pytest.raises(InvalidAnnotationName, match="part name"):
        put_json(store, B, K, name, {"x": "y" * 3000}, part_limit=1000)
    assert _names(store) == []


def test_if_match_conditions_the_writes(store):
    etag = store.head_object(B, K).etag
    put_json(store, B, K, "doc", {"x": "y" * 3000}, part_limit=1000, if_match=etag)
    with pytest.raises(PreconditionFailed):
        put_json(
            store, B, K, "doc", {"x": "changed" * 1000}, part_limit=1000, if_match='"0123456789abcdef0123456789abcdef"'
        )
    assert get_json(store, B, K, "doc") == {"x": "y" * 3000}


def test_versioned_object_parts_stay_on_their_version(local_store):
    local_store.create_bucket("vers", versioned=True)
    v1 = local_store.put_object("vers", K, b"one").version_id
    local_store.put_object("vers", K, b"two")
    put_json(local_store, "vers", K, "doc", {"x": "y" * 3000}, part_limit=1000, version_id=v1)
    assert get_json(local_store, "vers", K, "doc", version_id=v1) == {"x": "y" * 3000}
    assert list(local_store.list_annotations("vers", K)) == []  # the current version has none (R11.1)


def test_tampered_or_missing_parts_are_detected(store):
    put_json(store, B, K, "doc", {"x": "y" * 3000}, part_limit=1000)
    store.put_annotation(B, K, part_name("doc", 2), "z" * 1000)  # same size, other bytes
    with pytest.raises(ConflictRetry, match="do not match"):
        get_json(store, B, K, "doc")
    store.delete_annotation(B, K, part_name("doc", 2))
    with pytest.raises(ConflictRetry, match="missing"):
        get_json(store, B, K, "doc")
    with pytest.raises(AnnotationNotFound):
        get_json(store, B, K, "absent")


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=0, max_size=400), st.integers(min_value=4, max_value=64))
def test_split_utf8_never_cuts_a_character(text, limit):
    data = text.encode("utf-8")
    pieces = split_utf8(data, limit)
    assert b"".join(pieces) == data
    assert all(0 < len(p) <= limit for p in pieces)
    assert "".join(p.decode("utf-8") for p in pieces) == text
