"""The fast SQLite-native forms give exactly what the Python (Trino-semantics) functions give.

Differential tests: each query runs twice on a real local store full of awkward payloads — once as
translated (native C functions where :mod:`marginalia.search.native` allows them), once with every
native form switched off (the exact Python functions for every row) — and the rows, or the error,
must be the same. Plus: the catalogue indexes the fast plans rely on, and that an older catalogue
gets them when it is opened.
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from sqlglot import exp

from marginalia.errors import QueryError
from marginalia.search import native
from marginalia.search.local import LocalSearch
from marginalia.storage.local import LocalStore

B = "edge-cases"

# $.n of JSON payloads: integers at every range edge, reals, strings, literals, containers, misses
N_VALUES = [8, -3, 0, 127, 128, -129, 32767, 40000, 2147483647, 2147483648, -2147483649, 9223372036854775807,
            1.5, 2.5, -0.5, 1e2, "12", " 12 ", "007", "x", "", True, False, None, {"a": 1}, [1, 2]]  # fmt: skip
# plain-text payloads of the 'raw' annotation, cast as a column
RAW_VALUES = ["12", "007", "-5", "+5", " 7", "99999999999", "9223372036854775808", "1.5", "x", "١٢", "0"]
KEYS = ["Report.PDF", "ÉKS/Straße.pdf", "notes.TXT", "ß-only", "İstanbul.Pdf", "plain"]
ITEMS = [
    [{"owner": "Alice", "n": 1}, {"owner": "Bob", "n": 2.5}],
    ["a", "b\nc", 'q"uote', "é"],
    [1, 2.25, True, None, [3], {"o": "x"}],
    [],
    {"not": "an array"},
    "a string",
    None,
]


@pytest.fixture(scope="module")
def edge_store(tmp_path_factory):
    store = LocalStore(tmp_path_factory.mktemp("edge"))
    store.create_bucket(B)
    for i, n in enumerate(N_VALUES):
        key = f"json/{i:02d}"
        store.put_object(B, key, b"x")
        store.put_annotation(B, key, "doc", json.dumps({"n": n, "nested": {"n": n}}))
    store.put_object(B, "json/missing", b"x")
    store.put_annotation(B, "json/missing", "doc", json.dumps({"other": 1}))
    store.put_object(B, "json/text", b"x")
    store.put_annotation(B, "json/text", "doc", "plain text, not JSON: n = 8")
    store.put_object(B, "json/array", b"x")
    store.put_annotation(B, "json/array", "doc", "[1, 2, 3]")
    for i, raw in enumerate(RAW_VALUES):
        store.put_object(B, f"raw/{i:02d}", b"x")
        store.put_annotation(B, f"raw/{i:02d}", "raw", raw)
    for key in KEYS:
        store.put_object(B, key, b"x")
        store.put_annotation(B, key, "named", "1")
    for i, items in enumerate(ITEMS):
        store.put_object(B, f"items/{i}", b"x")
        store.put_annotation(B, f"items/{i}", "list", json.dumps({"items": items}))
    yield store
    store.close()


def python_only(patch: pytest.MonkeyPatch) -> None:
    """Switch every native form off: the translation then uses the Python functions only."""
    for name in ("json_extract_scalar", "cast_json_scalar", "cast_column", "cast_json_array", "change_case", "max_by"):
        patch.setattr(native, name, lambda *args, **kwargs: None)
    patch.setattr(
        native, "json_element",
        lambda alias: exp.Anonymous(this="trino_json_element", expressions=[exp.column("type", table=alias), exp.column("value", table=alias)]),
    )  # fmt: skip


def outcome(store, sql):
    """The rows of ``sql``, or the QueryError message it fails with."""
    with LocalSearch(store) as search:
        try:
            result = search.run(sql)
        except QueryError as exc:
            return "error", str(exc), search.translate(sql)
        return "rows", result.rows, result.sql


# two extremes in one SELECT: max_by stays the Python aggregate (the rows must still be right)
FALLBACK_ONLY = "SELECT name, max_by(object_key, sequence_number), max(size) FROM annotation GROUP BY name ORDER BY 1"
TYPES = ["INTEGER", "BIGINT", "SMALLINT", "TINYINT", "DOUBLE", "REAL"]
QUERIES = (
    [f"SELECT object_key, TRY_CAST(json_extract_scalar(text_value, '{p}') AS {t}) FROM annotation WHERE name = 'doc' ORDER BY 1"
     for t in TYPES for p in ("$.n", "$.nested.n", "$[1]")]
    + [f"SELECT object_key, CAST(json_extract_scalar(text_value, '$.n') AS {t}) FROM annotation WHERE name = 'doc' ORDER BY 1" for t in TYPES]
    + [f"SELECT object_key, CAST(json_extract_scalar(text_value, '$.n') AS {t}) FROM annotation WHERE name = 'doc' AND object_key IN ('json/00', 'json/01', 'json/02', 'json/missing', 'json/text') ORDER BY 1" for t in TYPES]
    + [f"SELECT object_key, TRY_CAST(text_value AS {t}), TRY_CAST(size AS {t}) FROM annotation WHERE name = 'raw' ORDER BY 1" for t in TYPES]
    + [f"SELECT object_key, CAST(text_value AS {t}) FROM annotation WHERE name = 'raw' ORDER BY 1" for t in TYPES]
    + ["SELECT object_key, lower(object_key), upper(object_key), lower(substr(object_key, -4)) FROM annotation ORDER BY 1",
       "SELECT object_key FROM annotation WHERE lower(substr(object_key, -4)) = '.pdf' ORDER BY 1",
       "SELECT object_key, lower(json_extract_scalar(text_value, '$.n')) FROM annotation WHERE name = 'doc' ORDER BY 1",
       "SELECT object_key, TRY_CAST(json_extract(text_value, '$.items') AS ARRAY(JSON)) IS NULL FROM annotation WHERE name = 'list' ORDER BY 1",
       "SELECT object_key, CAST(json_extract(text_value, '$.items') AS ARRAY(JSON)) FROM annotation WHERE name = 'list' ORDER BY 1",
       "SELECT object_key FROM annotation WHERE any_match(TRY_CAST(json_extract(text_value, '$.items') AS ARRAY(JSON)), x -> json_extract_scalar(x, '$.owner') = 'Bob') ORDER BY 1",
       "SELECT object_key, any_match(TRY_CAST(json_extract(text_value, '$.items') AS ARRAY(JSON)), x -> TRY_CAST(json_extract_scalar(x, '$.n') AS DOUBLE) > 2) FROM annotation WHERE name = 'list' ORDER BY 1",
       "SELECT object_key, all_match(TRY_CAST(json_extract(text_value, '$.items') AS ARRAY(JSON)), x -> json_extract_scalar(x, '$') IS NOT NULL) FROM annotation WHERE name = 'list' ORDER BY 1",
       "SELECT object_key, x FROM annotation CROSS JOIN UNNEST(TRY_CAST(json_extract(text_value, '$.items') AS ARRAY(JSON))) AS t(x) WHERE name = 'list' ORDER BY 1, 2",
       "SELECT object_key, json_extract_scalar(x, '$') FROM annotation CROSS JOIN UNNEST(TRY_CAST(json_extract(text_value, '$.items') AS ARRAY(JSON))) AS t(x) WHERE name = 'list' ORDER BY 1, 2",
       # max_by/min_by: latest per group, NULL keys ignored, all-NULL keys give NULL, numbers as numbers
       "SELECT name, max_by(object_key, sequence_number), min_by(text_value, sequence_number) FROM annotation GROUP BY name ORDER BY 1",
       "SELECT name, max_by(object_key, sequence_number), count(*) FROM annotation GROUP BY name ORDER BY 1",
       "SELECT name, min_by(object_key, sequence_number) FROM annotation GROUP BY name HAVING count(*) > 1 ORDER BY 1",
       "SELECT name, max_by(object_key, json_extract_scalar(text_value, '$.n')) FROM annotation GROUP BY name ORDER BY 1",
       "SELECT name, max_by(upper(object_key), TRY_CAST(json_extract_scalar(text_value, '$.n') AS DOUBLE)) FROM annotation GROUP BY name ORDER BY 1",
       "SELECT max_by(object_key, size), (SELECT max(size) FROM annotation) FROM annotation WHERE name = 'nothing'",
       FALLBACK_ONLY]
)  # fmt: skip


@pytest.mark.parametrize("sql", QUERIES)
def test_native_and_python_forms_agree(edge_store, sql):
    fast = outcome(edge_store, sql)
    with pytest.MonkeyPatch.context() as patch:
        python_only(patch)
        exact = outcome(edge_store, sql)
    assert fast[:2] == exact[:2], f"native: {fast[2]}\npython: {exact[2]}"
    assert (fast[2] != exact[2]) == (sql != FALLBACK_ONLY), "the native form was (not) used"


def test_native_forms_are_used_for_the_common_shapes(edge_store):
    """Guard against a silent fallback: the fast paths really are SQLite's own functions."""
    with LocalSearch(edge_store) as search:
        cast = search.translate("SELECT CAST(json_extract_scalar(text_value, '$.n') AS INTEGER) FROM annotation")
        assert "THEN CASE WHEN JSON_EXTRACT(text_value, '$.\"n\"') BETWEEN -2147483648 AND 2147483647" in cast
        lowered = search.translate("SELECT lower(object_key) FROM annotation")
        assert "ELSE LOWER(object_key) END" in lowered
        walked = search.translate(
            "SELECT 1 FROM annotation WHERE any_match(TRY_CAST(json_extract(text_value, '$.a') AS ARRAY(JSON)), x -> json_extract_scalar(x, '$.o') = 'A')"
        )
        assert "JSON_QUOTE(_each1.value)" in walked and "TRINO_JSON_EXTRACT_SCALAR(CASE" in walked  # reals only
        latest = search.translate("SELECT name, max_by(text_value, sequence_number) FROM annotation GROUP BY name")
        assert "CASE WHEN MAX(sequence_number) IS NULL THEN NULL ELSE text_value END" in latest
        two = search.translate("SELECT max_by(text_value, sequence_number), max(size) FROM annotation")
        assert "TRINO_MAX_BY(text_value, sequence_number)" in two  # two extremes: bare columns would be ambiguous


def test_strict_cast_still_fails_like_trino(edge_store):
    kind, message, _ = outcome(
        edge_store, "SELECT CAST(json_extract_scalar(text_value, '$.n') AS INTEGER) FROM annotation WHERE name = 'doc'"
    )
    assert kind == "error" and "cannot cast" in message and "to integer" in message
    kind, message, _ = outcome(edge_store, "SELECT CAST(text_value AS TINYINT) FROM annotation WHERE name = 'raw'")
    assert kind == "error" and "to tinyint" in message


AWS_ANNOTATION = '"s3tablescatalog/aws-s3"."b_team_meetings_2026"."annotation"'  # conftest's bucket


# --- indexes -----------------------------------------------------------------------------------
ISSUE_Q2 = """SELECT bucket, object_key FROM annotation_table a WHERE a.name = 'transcript'
AND NOT EXISTS (SELECT 1 FROM annotation_table b WHERE b.object_key = a.object_key AND b.name = 'meeting_minutes')"""


def _indexes(path):
    with sqlite3.connect(path) as conn:
        return {
            name
            for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'annotation'"
            )
        }


def test_transcripts_without_minutes_read_only_the_index(corpus):
    with LocalSearch(corpus) as search, search._connection() as pooled:
        statement = search.translate(ISSUE_Q2)
        plan = [row[3] for row in pooled.sqlite.execute("EXPLAIN QUERY PLAN " + statement)]
    searches = [step for step in plan if step.startswith("SEARCH annotation")]
    assert len(searches) == 2 and all("COVERING INDEX annotation_name_bucket_key" in s for s in searches), plan
    assert "(name=? AND bucket=? AND object_key=?)" in searches[1]  # one probe per transcript


def test_a_bucket_only_scan_keeps_the_object_ordered_index(corpus):
    """Full-text search walks the rows of each object together (the old plan, not the name index)."""
    with LocalSearch(corpus) as search, search._connection() as pooled:
        statement = search.translate(f"SELECT object_key FROM {AWS_ANNOTATION} WHERE text_value LIKE '%EKS%'")
        plan = [row[3] for row in pooled.sqlite.execute("EXPLAIN QUERY PLAN " + statement)]
    assert any("annotation_bucket_key (bucket=?)" in step for step in plan), plan


def test_an_older_catalogue_gets_the_new_index_when_opened(tmp_path):
    store = LocalStore(tmp_path)
    store.create_bucket(B)
    store.put_object(B, "k", b"x")
    store.put_annotation(B, "k", "transcript", "{}")
    store.close()
    with sqlite3.connect(store.catalog_path) as conn:  # as written before the index existed
        conn.execute("DROP INDEX annotation_name_bucket_key")
    assert "annotation_name_bucket_key" not in _indexes(store.catalog_path)
    reopened = LocalStore(tmp_path)
    try:
        assert "annotation_name_bucket_key" in _indexes(store.catalog_path)
        assert reopened.reindex() == 1
        with LocalSearch(reopened) as search:
            assert search.run(ISSUE_Q2).rows == [(B, "k")]
    finally:
        reopened.close()


def test_a_kept_translation_still_reads_the_live_catalogue(tmp_path):
    """Translations are kept per searcher, results never: a write is seen by the next run."""
    store = LocalStore(tmp_path)
    store.create_bucket(B)
    store.put_object(B, "a", b"x")
    store.put_annotation(B, "a", "transcript", "{}")
    try:
        with LocalSearch(store) as search:
            assert search.run(ISSUE_Q2).rows == [(B, "a")]
            assert search.translate(ISSUE_Q2) is search.translate(ISSUE_Q2)  # kept, not redone
            store.put_object(B, "b", b"x")
            store.put_annotation(B, "b", "transcript", "{}")
            store.put_annotation(B, "a", "meeting_minutes", '{"date": "2026-06-09"}')
            assert search.run(ISSUE_Q2).rows == [(B, "b")]
            assert search.run(ISSUE_Q2, bucket=B).rows == [(B, "b")]  # the bucket is part of the key
    finally:
        store.close()
