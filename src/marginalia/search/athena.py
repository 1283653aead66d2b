"""Run search queries on Athena against S3 Metadata's annotation table.

The query is checked read-only and its table names are rewritten to the bucket's
``"s3tablescatalog/aws-s3"."b_<bucket>"."annotation"`` (:func:`marginalia.search.sql.to_athena`),
then: StartQueryExecution, GetQueryExecution polled with backoff until the query ends, and
GetQueryResults paginated, each value typed from the result metadata. Workgroup and result location
come from ``MARGINALIA_ATHENA_WORKGROUP`` / ``MARGINALIA_ATHENA_OUTPUT``.

AWS's table lags writes by up to an hour (spec R17.10): every result carries that note.
"""

from __future__ import annotations

import decimal
import time
from collections.abc import Callable
from typing import Any

from ..errors import BackendError, ConfigurationError, QueryError
from ..settings import current
from . import sql as sqlmod
from .result import SearchResult
from .tables import LAG_NOTE

#: Athena error codes that say the service failed or refused the load, not that the query is wrong.
_SERVICE_FAILURES = frozenset({"InternalServerException", "ThrottlingException", "TooManyRequestsException"})

_INTEGERS = {"tinyint", "smallint", "integer", "int", "bigint"}
_FLOATS = {"double", "float", "real"}


def convert(value: str | None, athena_type: str) -> Any:
    """One Athena result cell (always text on the wire) as the Python value of its column type."""
    if value is None:
        return None
    kind = athena_type.lower().split("(", 1)[0]
    try:
        if kind in _INTEGERS:
            return int(value)
        if kind in _FLOATS:
            return float(value)
        if kind == "decimal":
            return decimal.Decimal(value)
        if kind == "boolean":
            return value.lower() == "true"
    except (ValueError, decimal.InvalidOperation):
        return value
    return value


class AthenaSearch:
    """Search through Athena (``client`` is a boto3 Athena client; one is made if not given)."""

    engine = "athena"

    def __init__(
        self,
        client=None,
        *,
        workgroup: str | None = None,
        output_location: str | None = None,
        poll_interval: float = 0.5,
        max_poll_interval: float = 5.0,
        timeout: float = 600.0,
        sleep: Callable[[float], None] = time.sleep,
        page_size: int = 1000,
    ):
        settings = current()
        self.workgroup = workgroup if workgroup is not None else settings.athena_workgroup
        self.output_location = output_location if output_location is not None else settings.athena_output
        if self.workgroup is None and self.output_location is None:
            raise ConfigurationError(
                "Athena needs somewhere to write results: set MARGINALIA_ATHENA_OUTPUT=s3://bucket/prefix/ "
                "or MARGINALIA_ATHENA_WORKGROUP to a workgroup that has an output location"
            )
        if client is None:
            import boto3

            client = boto3.client("athena")
        self.client = client
        self.poll_interval = poll_interval
        self.max_poll_interval = max_poll_interval
        self.timeout = timeout
        self.sleep = sleep
        self.page_size = page_size

    def translate(self, query: str | sqlmod.Query, *, bucket: str | None = None) -> str:
        parsed = sqlmod.parse(query) if isinstance(query, str) else query
        return sqlmod.to_athena(parsed, bucket=bucket)

    def run(self, query: str | sqlmod.Query, *, bucket: str | None = None, limit: int | None = None) -> SearchResult:
        statement = self.translate(query, bucket=bucket)
        execution_id = self._start(statement)
        self._wait(execution_id)
        columns, rows, truncated = self._results(execution_id, limit)
        return SearchResult(
            columns=columns, rows=rows, engine=self.engine, sql=statement, truncated=truncated, notes=[LAG_NOTE]
        )

    # --- the three steps ---------------------------------------------------------------------------
    def _call(self, operation: str, **kwargs):
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, operation)(**kwargs)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "error"))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            message = f"Athena {code}: {error.get('Message', exc)}"
            if status >= 500 or code in _SERVICE_FAILURES:  # Athena failed, not the query: a remote failure
                raise BackendError(message, code=code, status=status) from None
            raise QueryError(message) from None
        except BotoCoreError as exc:
            raise BackendError(f"Athena could not be reached: {exc}") from None

    def _start(self, statement: str) -> str:
        request: dict[str, Any] = {"QueryString": statement}
        if self.workgroup:
            request["WorkGroup"] = self.workgroup
        if self.output_location:
            request["ResultConfiguration"] = {"OutputLocation": self.output_location}
        return self._call("start_query_execution", **request)["QueryExecutionId"]

    def _wait(self, execution_id: str) -> None:
        deadline = time.monotonic() + self.timeout
        interval = self.poll_interval
        while True:
            status = self._call("get_query_execution", QueryExecutionId=execution_id)["QueryExecution"]["Status"]
            state = status["State"]
            if state == "SUCCEEDED":
                return
            if state in ("FAILED", "CANCELLED"):
                reason = (
                    status.get("AthenaError", {}).get("ErrorMessage")
                    or status.get("StateChangeReason")
                    or "no reason given"
                )
                raise QueryError(f"Athena query {execution_id} {state.lower()}: {reason}")
            if time.monotonic() + interval > deadline:
                self._call("stop_query_execution", QueryExecutionId=execution_id)
                raise QueryError(
                    f"Athena query {execution_id} did not finish within {self.timeout:g} s and was stopped"
                )
            self.sleep(interval)
            interval = min(interval * 2, self.max_poll_interval)

    def _results(self, execution_id: str, limit: int | None) -> tuple[list[str], list[tuple], bool]:
        columns: list[str] = []
        types: list[str] = []
        rows: list[tuple] = []
        token = None
        first = True
        while True:
            request: dict[str, Any] = {"QueryExecutionId": execution_id, "MaxResults": self.page_size}
            if token:
                request["NextToken"] = token
            page = self._call("get_query_results", **request)
            result_set = page["ResultSet"]
            if first:
                info = result_set.get("ResultSetMetadata", {}).get("ColumnInfo", [])
                columns = [c["Name"] for c in info]
                types = [c.get("Type", "varchar") for c in info]
            data = result_set.get("Rows", [])
            if first and data and [d.get("VarCharValue") for d in data[0].get("Data", [])] == columns:
                data = data[1:]  # a SELECT's first row repeats the column names
            first = False
            for row in data:
                cells = row.get("Data", [])
                rows.append(tuple(convert(cell.get("VarCharValue"), t) for cell, t in zip(cells, types, strict=False)))
                if limit is not None and len(rows) > limit:
                    return columns, rows[:limit], True
            token = page.get("NextToken")
            if not token:
                return columns, rows, False
