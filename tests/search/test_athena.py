"""Athena and S3 Metadata calls, validated against botocore's service models by ``Stubber``.

Athena and S3 Metadata tables cannot run here; ``Stubber`` checks every request's parameters
and every canned response against the real service model, so a wrong shape fails the test.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import ANY, Stubber

from marginalia.errors import ConfigurationError, QueryError
from marginalia.search.athena import AthenaSearch
from marginalia.search.tables import LAG_NOTE, enable_annotation_table, table_status

TABLE = '"s3tablescatalog/aws-s3"."b_team_a"."annotation"'


@pytest.fixture
def athena():
    client = boto3.client("athena", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def _status(state, **extra):
    return {"QueryExecution": {"QueryExecutionId": "q-1", "Status": {"State": state, **extra}}}


def _page(rows, *, header=None, token=None):
    columns = [
        {"Name": "object_key", "Type": "varchar"},
        {"Name": "n", "Type": "bigint"},
        {"Name": "ok", "Type": "boolean"},
    ]
    data = ([{"Data": [{"VarCharValue": c["Name"]} for c in columns]}] if header else []) + [
        {"Data": [{"VarCharValue": v} if v is not None else {} for v in row]} for row in rows
    ]
    page = {
        "ResultSet": {
            "Rows": data,
            "ResultSetMetadata": {"ColumnInfo": [{**c, "CatalogName": "x", "Nullable": "UNKNOWN"} for c in columns]},
        }
    }
    if token:
        page["NextToken"] = token
    return page


def test_query_runs_on_the_bucket_table_with_polling_and_pagination(athena):
    client, stub = athena
    sleeps = []
    search = AthenaSearch(
        client, workgroup="wg", output_location="s3://results/prefix/", sleep=sleeps.append, page_size=2
    )
    stub.add_response(
        "start_query_execution",
        {"QueryExecutionId": "q-1"},
        {
            "QueryString": f"SELECT object_key, COUNT(*) AS n, TRUE AS ok FROM {TABLE} AS annotation_table GROUP BY object_key",
            "WorkGroup": "wg",
            "ResultConfiguration": {"OutputLocation": "s3://results/prefix/"},
        },
    )
    stub.add_response("get_query_execution", _status("QUEUED"), {"QueryExecutionId": "q-1"})
    stub.add_response("get_query_execution", _status("RUNNING"), {"QueryExecutionId": "q-1"})
    stub.add_response("get_query_execution", _status("SUCCEEDED"), {"QueryExecutionId": "q-1"})
    stub.add_response(
        "get_query_results",
        _page([("a.pdf", "3", "true")], header=True, token="t2"),
        {"QueryExecutionId": "q-1", "MaxResults": 2},
    )
    stub.add_response(
        "get_query_results",
        _page([("b.pdf", "1", "false"), ("c.pdf", None, "true")]),
        {"QueryExecutionId": "q-1", "MaxResults": 2, "NextToken": "t2"},
    )

    result = search.run(
        "SELECT object_key, count(*) AS n, TRUE AS ok FROM annotation_table GROUP BY object_key", bucket="team-a"
    )

    assert result.columns == ["object_key", "n", "ok"]
    assert result.rows == [("a.pdf", 3, True), ("b.pdf", 1, False), ("c.pdf", None, True)]  # typed; header row dropped
    assert sleeps == [0.5, 1.0]  # backoff between polls
    assert result.notes == [LAG_NOTE] and "hour" in LAG_NOTE


def test_failed_query_is_a_clear_error(athena):
    client, stub = athena
    search = AthenaSearch(client, output_location="s3://results/", sleep=lambda s: None)
    stub.add_response(
        "start_query_execution", {"QueryExecutionId": "q-1"}, {"QueryString": ANY, "ResultConfiguration": ANY}
    )
    stub.add_response(
        "get_query_execution",
        _status(
            "FAILED",
            StateChangeReason="TABLE_NOT_FOUND",
            AthenaError={"ErrorCategory": 2, "ErrorMessage": "line 1:15: Table 'b_team_a.annotation' does not exist"},
        ),
        {"QueryExecutionId": "q-1"},
    )
    with pytest.raises(QueryError, match="failed: line 1:15: Table 'b_team_a.annotation' does not exist"):
        search.run("SELECT * FROM annotation", bucket="team-a")


def test_rejected_request_is_a_clear_error(athena):
    client, stub = athena
    search = AthenaSearch(client, workgroup="wg")
    stub.add_client_error(
        "start_query_execution",
        "InvalidRequestException",
        "line 1:8: mismatched input",
        expected_params={"QueryString": ANY, "WorkGroup": "wg"},
    )
    with pytest.raises(QueryError, match="InvalidRequestException: line 1:8: mismatched input"):
        search.run("SELECT * FROM annotation", bucket="team-a")


def test_slow_query_is_stopped_after_the_timeout(athena):
    client, stub = athena
    search = AthenaSearch(client, workgroup="wg", timeout=0.0, sleep=lambda s: None)
    stub.add_response("start_query_execution", {"QueryExecutionId": "q-1"}, {"QueryString": ANY, "WorkGroup": "wg"})
    stub.add_response("get_query_execution", _status("RUNNING"), {"QueryExecutionId": "q-1"})
    stub.add_response("stop_query_execution", {}, {"QueryExecutionId": "q-1"})
    with pytest.raises(QueryError, match="did not finish"):
        search.run("SELECT 1 FROM annotation", bucket="team-a")


def test_write_queries_never_reach_athena(athena):
    client, _ = athena
    with pytest.raises(QueryError):
        AthenaSearch(client, workgroup="wg").run("DROP TABLE annotation", bucket="team-a")  # no stubbed call: none made


def test_settings_come_from_the_environment(monkeypatch, athena):
    client, _ = athena
    monkeypatch.delenv("MARGINALIA_ATHENA_WORKGROUP", raising=False)
    monkeypatch.delenv("MARGINALIA_ATHENA_OUTPUT", raising=False)
    with pytest.raises(ConfigurationError, match="MARGINALIA_ATHENA_OUTPUT"):
        AthenaSearch(client)
    monkeypatch.setenv("MARGINALIA_ATHENA_WORKGROUP", "analysts")
    assert AthenaSearch(client).workgroup == "analysts"


# --- S3 Metadata configuration ------------------------------------------------------------------
@pytest.fixture
def s3():
    client = boto3.client("s3", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


ROLE = "arn:aws:iam::123456789012:role/s3-metadata-annotations"


def _config(annotation_state="ENABLED", status="BACKFILLING"):
    result = {
        "DestinationResult": {"TableBucketType": "aws", "TableNamespace": "b_team_a"},
        "JournalTableConfigurationResult": {
            "TableStatus": "ACTIVE",
            "TableName": "journal",
            "RecordExpiration": {"Expiration": "DISABLED"},
        },
    }
    if annotation_state:
        result["AnnotationTableConfigurationResult"] = {
            "ConfigurationState": annotation_state,
            "TableStatus": status,
            "TableName": "annotation",
            "Role": ROLE,
        }
    return {"GetBucketMetadataConfigurationResult": {"MetadataConfigurationResult": result}}


def test_enable_creates_the_metadata_configuration(s3):
    client, stub = s3
    stub.add_client_error(
        "get_bucket_metadata_configuration",
        "MetadataConfigurationNotFound",
        "none",
        404,
        expected_params={"Bucket": "team-a"},
    )
    stub.add_response(
        "create_bucket_metadata_configuration",
        {},
        {
            "Bucket": "team-a",
            "MetadataConfiguration": {
                "JournalTableConfiguration": {"RecordExpiration": {"Expiration": "DISABLED"}},
                "AnnotationTableConfiguration": {"ConfigurationState": "ENABLED", "Role": ROLE},
                "InventoryTableConfiguration": {"ConfigurationState": "ENABLED"},
            },
        },
    )
    stub.add_response("get_bucket_metadata_configuration", _config(), {"Bucket": "team-a"})
    status = enable_annotation_table(client, "team-a", role=ROLE, inventory=True)
    assert (status.annotation_state, status.annotation_status) == ("ENABLED", "BACKFILLING")
    assert status.as_dict()["athena_name"] == TABLE


def test_enable_updates_an_existing_configuration(s3):
    client, stub = s3
    stub.add_response("get_bucket_metadata_configuration", _config(annotation_state=None), {"Bucket": "team-a"})
    stub.add_response(
        "update_bucket_metadata_annotation_table_configuration",
        {},
        {"Bucket": "team-a", "AnnotationTableConfiguration": {"ConfigurationState": "ENABLED", "Role": ROLE,
                                                               "EncryptionConfiguration": {"SseAlgorithm": "aws:kms", "KmsKeyArn": "arn:aws:kms:us-east-1:1:key/k"}}},
    )  # fmt: skip
    stub.add_response("get_bucket_metadata_configuration", _config(status="CREATING"), {"Bucket": "team-a"})
    status = enable_annotation_table(client, "team-a", role=ROLE, kms_key_arn="arn:aws:kms:us-east-1:1:key/k")
    assert status.annotation_status == "CREATING"


def test_enable_is_idempotent_and_needs_a_role_the_first_time(s3):
    client, stub = s3
    stub.add_response("get_bucket_metadata_configuration", _config(status="ACTIVE"), {"Bucket": "team-a"})
    assert enable_annotation_table(client, "team-a").annotation_status == "ACTIVE"  # nothing else sent
    stub.add_client_error(
        "get_bucket_metadata_configuration",
        "MetadataConfigurationNotFound",
        "none",
        404,
        expected_params={"Bucket": "team-a"},
    )
    with pytest.raises(ConfigurationError, match="--role"):
        enable_annotation_table(client, "team-a")


def test_status_of_a_bucket_without_metadata(s3):
    client, stub = s3
    stub.add_client_error(
        "get_bucket_metadata_configuration",
        "MetadataConfigurationNotFound",
        "none",
        404,
        expected_params={"Bucket": "team-a"},
    )
    assert table_status(client, "team-a").configured is False


def test_athena_failing_is_a_remote_failure_not_a_bad_query(athena):
    from marginalia.errors import BackendError

    client, stub = athena
    stub.add_client_error("start_query_execution", service_error_code="InternalServerException", http_status_code=500)
    with pytest.raises(BackendError, match="InternalServerException"):
        AthenaSearch(client, workgroup="wg").run("SELECT 1 FROM annotation", bucket="team-a")
