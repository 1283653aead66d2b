"""Parsing, read-only enforcement and translation of the one query language (no database needed)."""

from __future__ import annotations

import pytest

from marginalia.errors import QueryError
from marginalia.search import sql
from marginalia.search.tables import athena_table, namespace

ISSUE_Q1 = """SELECT bucket, object_key, text_value
FROM annotation_table
WHERE name = 'meeting_minutes'
AND text_value LIKE '%EKS%'
AND json_extract_scalar(text_value, '$.date') >= '2026-06-09'"""


def test_namespace_mangles_dashes_and_dots():
    assert namespace("my-media-bucket") == "b_my_media_bucket"
    assert namespace("team-meetings.2026") == "b_team_meetings_2026"
    assert athena_table("a.b-c") == '"s3tablescatalog/aws-s3"."b_a_b_c"."annotation"'


@pytest.mark.parametrize(
    "name", ["annotation_table", "annotation", '"s3tablescatalog/aws-s3"."b_my_bucket"."annotation"']
)
def test_every_spelling_means_the_annotation_table(name):
    query = sql.parse(f"SELECT object_key FROM {name} WHERE name = 'summary'")
    assert [t.kind for t in query.tables] == ["annotation"]
    assert sql.to_athena(query, bucket="my-bucket").count('"s3tablescatalog/aws-s3"."b_my_bucket"."annotation"') == 1


def test_journal_spellings():
    assert sql.parse("SELECT key FROM journal").tables[0].kind == "journal"
    use = sql.parse('SELECT key FROM "s3tablescatalog/aws-s3"."b_x_y"."journal"').tables[0]
    assert (use.kind, use.namespace) == ("journal", "b_x_y")


@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM annotation",
        "DROP TABLE annotation",
        "INSERT INTO annotation (name) VALUES ('x')",
        "UPDATE annotation SET name = 'x'",
        "CREATE TABLE t AS SELECT * FROM annotation",
        "SELECT 1; DROP TABLE annotation",
        "SELECT * FROM annotation; DELETE FROM annotation",
        "WITH d AS (DELETE FROM annotation RETURNING *) SELECT * FROM d",
        "PRAGMA writable_schema = ON",
        "PRAGMA table_info(annotation)",
        "ATTACH DATABASE '/tmp/x.db' AS x",
        "SELECT load_extension('/tmp/evil.so')",
        "SELECT * FROM annotation WHERE name = load_extension('x')",
        "SELECT readfile('/etc/passwd')",
        "SELECT * INTO copy_table FROM annotation",
        "SELECT sqlite_version()",
        "SELECT * FROM sqlite_master",
        "SELECT * FROM object_version",
        "SELECT * FROM main.annotation",
        "VACUUM",
        "",
        "   ",
    ],
)
def test_anything_but_one_read_only_select_is_refused(statement):
    with pytest.raises(QueryError):
        sql.parse(statement)


def test_refusal_message_names_what_is_wrong():
    with pytest.raises(QueryError, match="one statement only"):
        sql.parse("SELECT 1; DROP TABLE annotation")
    with pytest.raises(QueryError, match="unknown table"):
        sql.parse("SELECT * FROM sqlite_master")
    with pytest.raises(QueryError, match="load_extension"):
        sql.parse("SELECT load_extension('x')")


def test_ctes_and_unions_are_read_only_queries():
    query = sql.parse(
        "WITH m AS (SELECT object_key FROM annotation_table WHERE name = 'meeting_minutes') "
        "SELECT object_key FROM m UNION SELECT object_key FROM annotation WHERE name = 'summary'"
    )
    assert [t.kind for t in query.tables] == ["annotation", "annotation"]


def test_athena_needs_a_bucket_for_unqualified_tables():
    with pytest.raises(QueryError, match="which bucket"):
        sql.to_athena(sql.parse("SELECT * FROM annotation_table"))


def test_bucket_must_agree_with_the_name_in_the_query():
    query = sql.parse('SELECT * FROM "s3tablescatalog/aws-s3"."b_one"."annotation"')
    with pytest.raises(QueryError, match="b_one"):
        sql.to_athena(query, bucket="two")


def test_athena_rewrite_keeps_the_rest_of_the_query():
    out = sql.to_athena(sql.parse(ISSUE_Q1), bucket="team-a")
    assert '"s3tablescatalog/aws-s3"."b_team_a"."annotation" AS annotation_table' in out
    assert "JSON_EXTRACT_SCALAR(text_value, '$.date') >= '2026-06-09'" in out
    assert "LIKE '%EKS%'" in out


def test_sqlite_translation_uses_trino_semantics_functions():
    out = sql.to_sqlite(sql.parse(ISSUE_Q1))
    # guarded by json_valid: SQLite's own json_extract / ->> raise on plain-text payloads
    assert """CASE WHEN JSON_VALID(text_value) THEN CASE JSON_TYPE(text_value, '$."date"')""" in out
    assert "->>" not in out
    out = sql.to_sqlite(
        sql.parse(
            "SELECT max_by(text_value, sequence_number), regexp_like(object_key, 'a+'), TRY_CAST(size AS INTEGER) FROM annotation"
        )
    )
    # max_by natively (SQLite's bare column of the one max()), the Python aggregate when that is ambiguous
    assert "CASE WHEN MAX(sequence_number) IS NULL THEN NULL ELSE text_value END" in out
    assert "TRINO_REGEXP_LIKE" in out and "TRINO_CAST(size, 'INTEGER', 0)" in out
    assert "TRINO_MAX_BY" in sql.to_sqlite(
        sql.parse("SELECT max_by(text_value, sequence_number), max(size) FROM annotation")
    )


def test_sqlite_scopes_to_the_bucket():
    out = sql.to_sqlite(sql.parse("SELECT * FROM annotation_table"), bucket="team-a")
    assert "bucket = 'team-a'" in out
    out = sql.to_sqlite(sql.parse('SELECT * FROM "s3tablescatalog/aws-s3"."b_team_a"."annotation"'))
    assert "bucket IN (SELECT bucket.name FROM bucket WHERE" in out and "'b_team_a'" in out


def test_journal_struct_field_becomes_json_on_sqlite():
    out = sql.to_sqlite(sql.parse("SELECT annotation.name FROM journal WHERE annotation.name IS NOT NULL"))
    assert """JSON_EXTRACT(annotation, '$."name"') AS name""" in out
    out = sql.to_sqlite(sql.parse("SELECT j.annotation.name FROM journal j"))
    assert """JSON_EXTRACT(j.annotation, '$."name"')""" in out


def test_interval_arithmetic_and_lambdas_translate():
    out = sql.to_sqlite(sql.parse("SELECT * FROM journal WHERE record_timestamp >= (current_date - interval '1' day)"))
    assert "TRINO_ADD_INTERVAL(CURRENT_DATE" in out and "'DAY'" in out
    out = sql.to_sqlite(sql.parse(
        "SELECT object_key FROM annotation WHERE any_match(CAST(json_extract(text_value, '$.a') AS ARRAY(JSON)), x -> json_extract_scalar(x, '$.o') = 'A')"
    ))  # fmt: skip
    # an array field is walked natively; anything else keeps the exact Python cast (and its error)
    assert (
        "JSON_EACH(CASE WHEN JSON_VALID(text_value)" in out
        and "TRINO_CAST_JSON_ARRAY(TRINO_JSON_EXTRACT(text_value, '$.a'), 1)" in out
    )
    assert "TRINO_JSON_ELEMENT(_each1.type, _each1.value)" in out


def test_bad_json_path_is_a_query_error():
    from marginalia.search.functions import parse_json_path

    assert parse_json_path('$.a["b c"][0].d') == ("a", "b c", "0", "d")
    with pytest.raises(QueryError, match="JSON path"):
        parse_json_path("a.b")
    with pytest.raises(QueryError, match="JSON path"):
        parse_json_path("$.a[")
