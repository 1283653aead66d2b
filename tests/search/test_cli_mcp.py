"""The CLI forms and the MCP server (spawned over stdio, driven by the mcp package's own client)."""

from __future__ import annotations

import csv
import io
import json
import os
import sys

import pytest
from typer.testing import CliRunner

from marginalia.cli import app

BUCKET = "team-meetings.2026"  # conftest.build_corpus


@pytest.fixture
def cli(corpus, monkeypatch):
    monkeypatch.setenv("MARGINALIA_STORE", f"local:{corpus.root}")
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, list(args))

    return invoke


def test_search_json_csv_and_table(cli):
    sql = "SELECT bucket, object_key FROM annotation_table WHERE name = 'summary' ORDER BY object_key"
    result = cli("search", sql, "--json")
    assert result.exit_code == 0, result.output
    assert [r["object_key"] for r in json.loads(result.stdout)["rows"]] == [
        "papers/attention.pdf",
        "reports/q2-results.pdf",
    ]
    result = cli("search", sql, "--csv", "--bucket", BUCKET)
    assert list(csv.reader(io.StringIO(result.stdout)))[1:] == [
        [BUCKET, "papers/attention.pdf"],
        [BUCKET, "reports/q2-results.pdf"],
    ]
    result = cli("search", sql)
    assert result.exit_code == 0 and "attention.pdf" in result.stdout


def test_search_refuses_writes_with_status_2_and_one_line(cli):
    result = cli("search", "SELECT 1; DROP TABLE annotation")
    assert result.exit_code == 2
    assert "one statement only" in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_find_and_missing(cli):
    result = cli("find", "--name", "meeting_minutes", "--contains", "EKS", "--where", "date>=2026-06-09",
                 "--where", "action_items[].owner=Alice", "--bucket", BUCKET, "--json")  # fmt: skip
    assert [r["object_key"] for r in json.loads(result.stdout)["rows"]] == ["meetings/2026-06-10-eks-upgrade.mp4"]
    result = cli("missing", "meeting_minutes", "--has", "transcript", "--json")
    assert [r["object_key"] for r in json.loads(result.stdout)["rows"]] == ["meetings/2026-06-15-standup.mp4"]
    result = cli("missing", "summary", "--prefix", "reports/", "--suffix", ".pdf", "--bucket", BUCKET, "--csv")
    assert [row[1] for row in csv.reader(io.StringIO(result.stdout))][1:] == [
        "reports/2025/annual.pdf",
        "reports/architecture.pdf",
    ]


def test_bad_find_input_is_status_2(cli):
    result = cli("find", "--where", "date>>2026")
    assert result.exit_code == 2 and "one operator only" in result.stderr
    result = cli("missing", "aws-reserved")
    assert result.exit_code == 2 and "annotation name" in result.stderr


def test_ask_and_reindex(cli, corpus):
    result = cli("ask", "which PDFs haven't been summarised yet?", "--bucket", BUCKET)
    assert result.exit_code == 0, result.output
    assert "reports/architecture.pdf" in result.stdout and "reports/q2-results.pdf" not in result.stdout
    import sqlite3

    with sqlite3.connect(corpus.catalog_path) as conn:
        (stored,) = conn.execute("SELECT count(*) FROM annotation_store").fetchone()
        conn.execute("DELETE FROM annotation")  # a table that lost its rows...
    assert cli("search", "SELECT count(*) AS n FROM annotation", "--json").stdout.count('"n": 0') == 1
    result = cli("reindex")  # ...is rebuilt from the stored annotations
    assert result.exit_code == 0 and f"annotation table rebuilt: {stored} rows" in result.stdout
    assert f'"n": {stored}' in cli("search", "SELECT count(*) AS n FROM annotation", "--json").stdout


def test_tables_commands_without_aws_credentials_say_so_in_one_line(cli, monkeypatch, tmp_path):
    """``tables`` talks to S3 Metadata on AWS whatever the store: with no credentials anywhere, each
    command is one line naming the bucket and what to set (exit 2), never a botocore traceback."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    # nor a credentials file, a config file or an instance role on the machine running the tests
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in (
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    import boto3

    # an earlier caller in the process left boto3's default session holding credentials (CI ran
    # this after tests that had): the command must not sign with them
    monkeypatch.setattr(
        boto3, "DEFAULT_SESSION", boto3.session.Session(aws_access_key_id="AKIAEXAMPLE", aws_secret_access_key="x")
    )
    for args in (
        ("tables", "enable", "team-bucket", "--role", "arn:aws:iam::123456789012:role/metadata"),
        ("tables", "status", "team-bucket"),
    ):
        result = cli(*args)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, (args, result.stderr[-1500:])
        assert "s3://team-bucket" in lines[0] and "no usable AWS credentials" in lines[0], lines[0]
        assert "AWS_PROFILE" in lines[0] and "Traceback" not in result.output


def test_tables_commands_refuse_a_bad_bucket_name_before_any_request(cli):
    result = cli("tables", "enable", "Not_A_Bucket")
    assert result.exit_code == 2 and "invalid bucket name" in result.stderr


async def test_mcp_server_over_stdio(corpus):
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "marginalia.search.mcp_server"],
        env={"MARGINALIA_STORE": f"local:{corpus.root}", "PATH": os.environ.get("PATH", "")},
    )
    async with Client(params) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert tools == {"search", "find", "missing", "get_annotation", "list_annotations"}

        result = await client.call_tool(
            "search", {"sql": "SELECT object_key FROM annotation_table WHERE name = 'summary' ORDER BY 1"}
        )
        assert not result.is_error
        assert [r["object_key"] for r in result.structured_content["rows"]] == [
            "papers/attention.pdf",
            "reports/q2-results.pdf",
        ]

        result = await client.call_tool(
            "find", {"name": "meeting_minutes", "where": ["action_items[].owner=Bob"], "bucket": BUCKET}
        )
        assert [r["object_key"] for r in result.structured_content["rows"]] == [
            "meetings/2026-06-10-eks-upgrade.mp4", "meetings/2026-06-12-budget.mp4",
        ]  # fmt: skip

        result = await client.call_tool("missing", {"name": "meeting_minutes", "has": "transcript"})
        assert [r["object_key"] for r in result.structured_content["rows"]] == ["meetings/2026-06-15-standup.mp4"]

        uri = f"s3://{BUCKET}/meetings/2026-06-10-eks-upgrade.mp4"
        result = await client.call_tool("get_annotation", {"uri": uri, "name": "meeting_minutes"})
        assert result.structured_content["value"]["title"] == "EKS upgrade planning"

        result = await client.call_tool("list_annotations", {"uri": uri})
        assert [a["name"] for a in result.structured_content["annotations"]] == [
            "mediainfo",
            "meeting_minutes",
            "transcript",
        ]

        result = await client.call_tool("search", {"sql": "DELETE FROM annotation"})
        assert result.is_error and "read-only" in result.content[0].text

        result = await client.call_tool("get_annotation", {"uri": uri, "name": "summary"})
        assert result.is_error and "summary" in result.content[0].text


def test_show_sql_goes_to_stderr_and_stdout_stays_rows(cli):
    sql = "SELECT object_key FROM annotation_table WHERE name = 'summary' ORDER BY object_key"
    result = cli("search", sql, "--show-sql", "--json")
    assert result.exit_code == 0, result.output
    assert "SELECT" in result.stderr and "summary" in result.stderr
    assert len(json.loads(result.stdout)["rows"]) == 2
    result = cli("find", "--name", "summary", "--show-sql", "--json")
    assert result.exit_code == 0, result.output
    assert "'summary'" in result.stderr
    assert {r["object_key"] for r in json.loads(result.stdout)["rows"]} == {
        "papers/attention.pdf",
        "reports/q2-results.pdf",
    }
