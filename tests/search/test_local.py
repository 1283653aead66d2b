"""Every query of the issue and of spec §18 on a real local store, with the right rows."""

from __future__ import annotations

import json
import sqlite3

import pytest

from marginalia.errors import QueryError

BUCKET, OTHER = "team-meetings.2026", "archive-bucket"  # the buckets of conftest.build_corpus

ISSUE_Q1 = """SELECT bucket, object_key, text_value
FROM annotation_table
WHERE name = 'meeting_minutes'
AND text_value LIKE '%EKS%'
AND json_extract_scalar(text_value, '$.date') >= '2026-06-09'"""

ISSUE_Q2 = """SELECT bucket, object_key
FROM annotation_table a
WHERE a.name = 'transcript'
AND NOT EXISTS (
  SELECT 1 FROM annotation_table b
  WHERE b.object_key = a.object_key AND b.name = 'meeting_minutes'
)"""

NS = "b_team_meetings_2026"
AWS = f'"s3tablescatalog/aws-s3"."{NS}"'


def keys(result):
    return sorted((r["bucket"], r["object_key"]) for r in result.as_dicts())


def test_issue_query_minutes_about_eks_since_june_9(searcher):
    result = searcher.run(ISSUE_Q1)
    assert keys(result) == [(OTHER, "2026/eks-retro.mp4"), (BUCKET, "meetings/2026-06-10-eks-upgrade.mp4")]
    # the plain-text 'meeting_minutes' on notes.txt mentions EKS but has no date: NULL, not an error
    assert all(json.loads(r["text_value"])["date"] >= "2026-06-09" for r in result.as_dicts())


def test_issue_query_scoped_to_a_bucket(searcher):
    assert keys(searcher.run(ISSUE_Q1, bucket=BUCKET)) == [(BUCKET, "meetings/2026-06-10-eks-upgrade.mp4")]


def test_issue_query_transcripts_without_minutes(searcher):
    assert keys(searcher.run(ISSUE_Q2)) == [(BUCKET, "meetings/2026-06-15-standup.mp4")]


def test_like_is_case_sensitive_as_on_athena(searcher):
    assert searcher.run(ISSUE_Q1.replace("%EKS%", "%eks%")).rows == []


def test_q1_numeric_predicate_on_a_json_field(searcher):
    sql = f"SELECT DISTINCT bucket, object_key FROM {AWS}.\"annotation\" WHERE name = 'mediainfo' AND CAST(json_extract_scalar(text_value, '$.audio_tracks') AS INTEGER) > 8"
    assert keys(searcher.run(sql)) == [(BUCKET, "meetings/2026-06-10-eks-upgrade.mp4")]


def test_q2_full_text(searcher):
    result = searcher.run(
        f"SELECT object_key, name, text_value FROM {AWS}.\"annotation\" WHERE text_value LIKE '%plain text%'"
    )
    assert [(r[0], r[1]) for r in result.rows] == [("reports/notes.txt", "note")]


def test_q3_filter_on_json_field(searcher):
    sql = (
        f"SELECT object_key, json_extract_scalar(text_value, '$.status') AS status FROM {AWS}.\"annotation\" "
        "WHERE name = 'pipeline_status' AND json_extract_scalar(text_value, '$.status') = 'FAILED'"
    )
    assert searcher.run(sql).rows == [("reports/q2-results.pdf", "FAILED")]


def test_q4_journal_annotation_events_of_the_last_day(searcher, corpus):
    sql = (
        f'SELECT bucket, key, version_id, record_timestamp, annotation.name FROM {AWS}."journal" '
        "WHERE record_timestamp >= (current_date - interval '1' day) AND annotation.name IS NOT NULL "
        "AND record_type IN ('CREATE_ANNOTATION', 'DELETE_ANNOTATION')"
    )
    result = searcher.run(sql)
    assert result.columns == ["bucket", "key", "version_id", "record_timestamp", "name"]
    with sqlite3.connect(corpus.catalog_path) as conn:
        expected = conn.execute(
            "SELECT count(*) FROM journal WHERE bucket = ? AND record_type = 'CREATE_ANNOTATION'", (BUCKET,)
        ).fetchone()[0]
    assert len(result.rows) == expected > 10
    assert {r[4] for r in result.rows} >= {"transcript", "meeting_minutes", "summary", "note"}
    assert {r[0] for r in result.rows} == {BUCKET}
    # nothing is older than a day ago, and a window in the past finds nothing
    assert searcher.run(sql.replace("current_date - interval '1' day", "current_date + interval '1' day")).rows == []


def test_q5_latest_value_per_annotation(searcher, corpus):
    corpus.put_json_annotation(BUCKET, "papers/attention.pdf", "pipeline_status", {"status": "DONE"})
    try:
        sql = f'SELECT object_key, name, max_by(text_value, sequence_number) AS latest FROM {AWS}."annotation" GROUP BY object_key, name'
        latest = {(r[0], r[1]): r[2] for r in searcher.run(sql).rows}
        assert json.loads(latest[("papers/attention.pdf", "pipeline_status")]) == {"status": "DONE"}  # read-your-writes
        assert len(latest) == 15  # 4 transcripts, 4 minutes, 2 summaries, 2 mediainfo, 2 statuses, 1 note
    finally:
        corpus.put_json_annotation(BUCKET, "papers/attention.pdf", "pipeline_status", {"status": "OK"})


def test_q6_distribution_of_names(searcher):
    rows = searcher.run(f'SELECT name, count(*) AS n FROM {AWS}."annotation" GROUP BY name ORDER BY n DESC, name').rows
    assert rows == [
        ("meeting_minutes", 4),
        ("transcript", 4),
        ("mediainfo", 2),
        ("pipeline_status", 2),
        ("summary", 2),
        ("note", 1),
    ]


def test_unnest_action_items(searcher):
    sql = (
        "SELECT a.object_key, json_extract_scalar(item, '$.task') AS task FROM annotation_table a "
        "CROSS JOIN UNNEST(TRY_CAST(json_extract(a.text_value, '$.action_items') AS ARRAY(JSON))) AS t(item) "
        "WHERE a.name = 'meeting_minutes' AND json_extract_scalar(item, '$.owner') = 'Bob' ORDER BY 1"
    )
    assert searcher.run(sql).rows == [
        ("meetings/2026-06-10-eks-upgrade.mp4", "Drain the old node groups"),
        ("meetings/2026-06-12-budget.mp4", "Send the cost report"),
    ]


def test_deleted_annotations_disappear(searcher, corpus):
    corpus.put_annotation(BUCKET, "reports/architecture.pdf", "summary", '{"summary": "tmp"}')
    q = "SELECT object_key FROM annotation WHERE name = 'summary' AND object_key = 'reports/architecture.pdf'"
    assert searcher.run(q).rows == [("reports/architecture.pdf",)]
    corpus.delete_annotation(BUCKET, "reports/architecture.pdf", "summary")
    assert searcher.run(q).rows == []


def test_limit_truncates_and_says_so(searcher):
    result = searcher.run("SELECT object_key FROM annotation ORDER BY object_key", limit=3)
    assert len(result.rows) == 3 and result.truncated


def test_failed_cast_is_a_clear_error(searcher):
    with pytest.raises(QueryError, match="cannot cast 'aac' to integer"):
        searcher.run(
            "SELECT CAST(json_extract_scalar(text_value, '$.codec') AS INTEGER) FROM annotation WHERE name = 'mediainfo'"
        )


def test_unknown_column_is_a_clear_error(searcher):
    with pytest.raises(QueryError, match="no such column: nope"):
        searcher.run("SELECT nope FROM annotation")


def test_the_connection_itself_refuses_writes(searcher):
    """Second line of defence: even SQL that slipped past the parser could not write."""
    with searcher._connection() as pooled:
        conn = pooled.sqlite
        for statement in ("DELETE FROM annotation", "PRAGMA query_only = OFF", "ATTACH DATABASE ':memory:' AS x",
                          "SELECT load_extension('x')", "CREATE TABLE x (a)"):  # fmt: skip
            with pytest.raises(sqlite3.DatabaseError):
                conn.execute(statement)
        assert conn.execute("SELECT count(*) FROM annotation").fetchone()[0] > 0


def test_timeout_stops_a_runaway_query(corpus):
    from marginalia.search.local import LocalSearch

    with LocalSearch(corpus, timeout=0.2) as slow:
        with pytest.raises(QueryError, match="longer than 0.2 s"):
            slow.run("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) SELECT count(*) FROM n")


@pytest.mark.parametrize(
    "path", ["$.date", "$.audio_tracks", "$.action_items[0].owner", "$.attendees", "$.status", "$.summary", "$.n"]
)
def test_native_json_scalar_agrees_with_trino_function(searcher, corpus, path):
    """The fast C translation gives what the exact Python implementation gives, row by row."""
    from marginalia.search.functions import json_extract_scalar

    got = searcher.run(
        f"SELECT sequence_number, json_extract_scalar(text_value, '{path}') FROM annotation ORDER BY 1"
    ).rows
    with sqlite3.connect(corpus.catalog_path) as conn:
        expected = [
            (seq, json_extract_scalar(text, path))
            for seq, text in conn.execute("SELECT sequence_number, text_value FROM annotation ORDER BY 1")
        ]
    assert got == expected
    assert any(v is not None for _, v in got) == (path not in ("$.attendees", "$.n"))
