"""An MCP server (stdio) that lets an assistant search and read annotations.

Tools: ``search`` (one read-only SQL query, Athena dialect), ``find`` and ``missing`` (the friendly
forms), ``get_annotation`` and ``list_annotations`` (direct reads through the store, never the
lagging table: spec R18.3). The store and search backend follow ``MARGINALIA_STORE``.
Every failure the caller can fix comes back as a tool error with one clear message.

Run with ``marginalia mcp`` or ``python -m marginalia.search.mcp_server``.
"""

from __future__ import annotations

import functools
from typing import Any

from ..errors import MarginaliaError
from ..extras import requires
from ..uri import parse_uri

with requires("mcp", "marginalia mcp (the MCP server)"):
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

ROW_LIMIT = 500
INSTRUCTIONS = (
    "Search S3 Annotations written by Marginalia's agents. The table annotation_table has one row per "
    "annotation: bucket, object_key, object_version_id, name, last_modified_date, size, text_value (the payload; "
    "JSON for meeting_minutes, summary, transcript). Use json_extract_scalar(text_value, '$.field') in SQL."
)


def _tool_errors(func):
    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except MarginaliaError as exc:
            raise ToolError(str(exc)) from None

    return wrapper


def build_server(store=None) -> MCPServer:
    """The MCP server over ``store`` (default: the one ``MARGINALIA_STORE`` names)."""
    from ..config import open_store
    from . import friendly, open_search

    state: dict[str, Any] = {}

    def the_store():
        if "store" not in state:
            state["store"] = store if store is not None else open_store()
        return state["store"]

    def backend():
        if "backend" not in state:
            state["backend"] = open_search(the_store())
        return state["backend"]

    def rows(result) -> dict[str, Any]:
        return {
            "columns": result.columns,
            "rows": result.as_dicts(),
            "truncated": result.truncated,
            "notes": result.notes,
        }

    server = MCPServer("marginalia", instructions=INSTRUCTIONS)

    @server.tool(description="Run one read-only SQL query (Athena/Trino dialect) over annotation_table or journal.")
    @_tool_errors
    def search(sql: str, bucket: str | None = None, limit: int = 100) -> dict[str, Any]:
        return rows(backend().run(sql, bucket=bucket, limit=max(1, min(limit, ROW_LIMIT))))

    @server.tool(
        description="Find annotations by name, text and JSON field conditions like 'date>=2026-06-09' or 'action_items[].owner=Alice'."
    )
    @_tool_errors
    def find(
        name: str | None = None,
        contains: str | None = None,
        where: list[str] | None = None,
        bucket: str | None = None,
        prefix: str | None = None,
        suffix: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        query = friendly.find_sql(name, contains=contains, where=where or [], prefix=prefix, suffix=suffix)
        return rows(backend().run(query, bucket=bucket, limit=max(1, min(limit, ROW_LIMIT))))

    @server.tool(description="Objects without annotation `name`; with `has`, only objects that have that annotation.")
    @_tool_errors
    def missing(
        name: str, has: str | None = None, bucket: str | None = None, prefix: str | None = None,
        suffix: str | None = None, limit: int = 100,
    ) -> dict[str, Any]:  # fmt: skip
        query = friendly.missing_sql(name, has=has, prefix=prefix, suffix=suffix)
        return rows(backend().run(query, bucket=bucket, limit=max(1, min(limit, ROW_LIMIT))))

    @server.tool(description="Read one annotation of an object (s3://bucket/key) by name; JSON payloads are parsed.")
    @_tool_errors
    def get_annotation(uri: str, name: str, version_id: str | None = None) -> dict[str, Any]:
        target = parse_uri(uri)
        annotation = the_store().get_annotation(target.bucket, target.key, name, version_id=version_id)
        text = annotation.text()
        try:
            import json

            value: Any = json.loads(text)
        except ValueError:
            value = text
        return {
            "uri": str(target), "name": annotation.name, "etag": annotation.info.etag, "size": annotation.info.size,
            "last_modified": annotation.info.last_modified.isoformat(), "version_id": annotation.info.version_id,
            "value": value,
        }  # fmt: skip

    @server.tool(description="List the annotations of an object (s3://bucket/key): names, sizes, dates.")
    @_tool_errors
    def list_annotations(uri: str, prefix: str | None = None, version_id: str | None = None) -> dict[str, Any]:
        target = parse_uri(uri)
        entries = the_store().list_annotations(target.bucket, target.key, prefix=prefix, version_id=version_id)
        return {
            "uri": str(target),
            "annotations": [
                {"name": a.name, "size": a.size, "etag": a.etag, "last_modified": a.last_modified.isoformat()}
                for a in entries
            ],
        }

    return server


def main() -> None:
    build_server().run("stdio")


if __name__ == "__main__":
    main()
