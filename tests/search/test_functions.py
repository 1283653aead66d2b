"""The Trino functions registered in SQLite behave like Athena's (spec R18.1)."""

from __future__ import annotations

import sqlite3

import pytest

from marginalia.search import functions as f


@pytest.mark.parametrize(
    "document, path, expected",
    [
        ('{"date": "2026-06-09"}', "$.date", "2026-06-09"),
        ('{"n": 8}', "$.n", "8"),
        ('{"n": 1.50}', "$.n", "1.50"),  # numbers as written
        ('{"ok": true}', "$.ok", "true"),
        ('{"a": {"b": [10, 20]}}', "$.a.b[1]", "20"),
        ('{"x y": "v"}', '$["x y"]', "v"),
        ('{"a": {"b": 1}}', "$.a", None),  # object: not a scalar
        ('{"a": [1]}', "$.a", None),  # array: not a scalar
        ('{"a": null}', "$.a", None),
        ('{"a": 1}', "$.missing", None),
        ("plain text, not JSON", "$.date", None),  # a text annotation in the same table
        ("", "$.a", None),
        (None, "$.a", None),
        ('"just a string"', "$", "just a string"),
    ],
)
def test_json_extract_scalar_matches_trino(document, path, expected):
    assert f.json_extract_scalar(document, path) == expected


def test_json_extract_returns_json_text():
    assert f.json_extract('{"a": {"b": [1, "x"]}}', "$.a.b") == '[1,"x"]'
    assert f.json_extract('{"a": null}', "$.a") == "null"
    assert f.json_extract("not json", "$.a") is None
    assert f.json_array_length("[1,2,3]") == 3
    assert f.json_array_length('{"a":1}') is None


def test_casts_fail_like_trino_and_try_cast_gives_null():
    assert f.trino_cast("8", "INTEGER", 1) == 8
    assert f.trino_cast("8.5", "DOUBLE", 1) == 8.5
    assert f.trino_cast("x", "INTEGER", 0) is None
    with pytest.raises(f.TrinoFunctionError, match="cannot cast 'x' to integer"):
        f.trino_cast("x", "INTEGER", 1)
    assert f.trino_cast("2026-06-09T10:00:00Z", "TIMESTAMP", 1) == "2026-06-09 10:00:00.000000"
    assert f.trino_cast("2026-06-09 10:00:00", "DATE", 1) == "2026-06-09"


def test_interval_arithmetic_keeps_dates_and_timestamps():
    assert f.add_interval("2026-03-01", -1, "DAY") == "2026-02-28"
    assert f.add_interval("2026-01-31", 1, "MONTH") == "2026-02-28"
    assert f.add_interval("2026-06-09 10:00:00.000000", -2, "HOUR") == "2026-06-09 08:00:00.000000"


def test_registered_functions_run_in_sqlite_with_max_by():
    conn = sqlite3.connect(":memory:")
    f.register(conn)
    conn.execute("CREATE TABLE t (k TEXT, seq TEXT, v TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?, ?)", [("a", "002", "new"), ("a", "001", "old"), ("b", "001", "only")])
    rows = conn.execute("SELECT k, trino_max_by(v, seq), trino_min_by(v, seq) FROM t GROUP BY k ORDER BY k").fetchall()
    assert rows == [("a", "new", "old"), ("b", "only", "only")]
    assert conn.execute("SELECT trino_regexp_like('EKS-1.31', '\\d+\\.\\d+')").fetchone() == (1,)
    assert conn.execute("SELECT trino_lower('ÉKS')").fetchone() == ("éks",)  # SQLite's lower() is ASCII-only
