"""Search commands: search, find, missing, ask, reindex, tables enable/status, mcp.

All of them run one read-only Athena-dialect query on the backend ``MARGINALIA_STORE`` selects
(local SQLite catalogue or Athena); see :mod:`marginalia.search`.
"""

from __future__ import annotations

import contextlib
import json
import sys

import typer
from rich.table import Table

from ..errors import InvalidInput, MarginaliaError
from .app import app, console, err_console, refuse
from .formatting import print_table

tables_app = typer.Typer(
    help="S3 Metadata tables on AWS: turn the annotation table on, see its status.", no_args_is_help=True
)
app.add_typer(tables_app, name="tables", rich_help_panel="Search")

CELL_WIDTH = 80


@contextlib.contextmanager
def _clean_errors():
    """A refusal ends as one line on stderr with its exit status (2 bad query, 3 not found,
    5 Athena failed), also when the app is invoked without :func:`~marginalia.cli.app.run`."""
    try:
        yield
    except MarginaliaError as exc:
        raise typer.Exit(refuse(exc)) from None


def _backend():
    from ..search import open_search

    return open_search()


def _cell(value) -> str:
    text = "" if value is None else str(value)
    text = " ".join(text.split())
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


#: Result columns people copy into other commands: never folded or cut at any terminal width.
WHOLE_COLUMNS = frozenset({"bucket", "object_key", "key", "name", "thread_id", "object_uri", "uri"})


def _copied(column: str, cells: list[str]) -> bool:
    """A column of keys, names or URIs (by its name, or every value an ``s3://`` URI)."""
    values = [c for c in cells if c]
    return column.lower() in WHOLE_COLUMNS or bool(values) and all(v.startswith("s3://") for v in values)


def _aside(text: str) -> None:
    """Secondary output (the SQL run, notes) dimmed on stderr, so stdout stays only the rows."""
    err_console.print(text, style="dim", highlight=False)


def _show(result, *, as_json: bool, as_csv: bool) -> None:
    if as_json and as_csv:
        raise InvalidInput("choose one of --json and --csv")
    if as_json:
        sys.stdout.write(result.to_json() + "\n")
    elif as_csv:
        sys.stdout.write(result.to_csv())
    else:
        table = Table(*result.columns, show_lines=False, header_style="bold")
        cells = [[" ".join(("" if v is None else str(v)).split()) for v in row] for row in result.rows]
        whole = {i for i, column in enumerate(result.columns) if _copied(column, [row[i] for row in cells])}
        rows = [[v if i in whole else _cell(v) for i, v in enumerate(row)] for row in cells]
        print_table(console, table, rows, whole=whole)
        count = f"{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}"
        err_console.print(
            f"{count}{' (more not shown: raise --limit)' if result.truncated else ''} · {result.engine}", style="dim"
        )
    for note in result.notes:
        _aside(f"note: {note}")


OUTPUT_JSON = typer.Option(False, "--json", help="print rows as JSON")
OUTPUT_CSV = typer.Option(False, "--csv", help="print rows as CSV")
LIMIT = typer.Option(1000, "--limit", min=1, help="at most this many rows")
BUCKET = typer.Option(None, "--bucket", "-b", help="the bucket to search (required on AWS)")


@app.command("search", rich_help_panel="Search")
def search_cmd(
    sql: str = typer.Argument(..., help="one read-only SELECT in Athena's SQL over annotation_table / journal"),
    bucket: str | None = BUCKET,
    as_json: bool = OUTPUT_JSON,
    as_csv: bool = OUTPUT_CSV,
    limit: int = LIMIT,
    show_sql: bool = typer.Option(False, "--show-sql", help="print the statement the engine runs, then the rows"),
) -> None:
    """Search annotations with SQL (Athena dialect), e.g. SELECT object_key FROM annotation_table WHERE name = 'summary'."""
    with _clean_errors():
        backend = _backend()
        if show_sql:
            _aside(backend.translate(sql, bucket=bucket))
        _show(backend.run(sql, bucket=bucket, limit=limit), as_json=as_json, as_csv=as_csv)


@app.command("find", rich_help_panel="Search")
def find_cmd(
    name: str | None = typer.Option(None, "--name", "-n", help="annotation name, e.g. meeting_minutes"),
    contains: str | None = typer.Option(None, "--contains", "-c", help="text anywhere in the payload (any case)"),
    where: list[str] = typer.Option(
        [], "--where", "-w", help="'field op value', op one of = != >= <= > < ~; 'items[].owner=Alice'"
    ),
    bucket: str | None = BUCKET,
    prefix: str | None = typer.Option(None, "--prefix", help="only keys starting with this"),
    suffix: str | None = typer.Option(None, "--suffix", help="only keys ending with this (any case), e.g. .pdf"),
    as_json: bool = OUTPUT_JSON,
    as_csv: bool = OUTPUT_CSV,
    limit: int = LIMIT,
    show_sql: bool = typer.Option(False, "--show-sql", help="print the SQL the filters compile to"),
) -> None:
    """Find annotations by name, text and JSON fields, without writing SQL."""
    from ..search import friendly

    with _clean_errors():
        query = friendly.find_sql(name, contains=contains, where=where, prefix=prefix, suffix=suffix)
        if show_sql:
            _aside(query)
        _show(_backend().run(query, bucket=bucket, limit=limit), as_json=as_json, as_csv=as_csv)


@app.command("missing", rich_help_panel="Search")
def missing_cmd(
    name: str = typer.Argument(..., help="the annotation that is missing, e.g. summary"),
    has: str | None = typer.Option(None, "--has", help="only objects that have this annotation, e.g. transcript"),
    bucket: str | None = BUCKET,
    prefix: str | None = typer.Option(None, "--prefix", help="only keys starting with this"),
    suffix: str | None = typer.Option(None, "--suffix", help="only keys ending with this (any case), e.g. .pdf"),
    as_json: bool = OUTPUT_JSON,
    as_csv: bool = OUTPUT_CSV,
    limit: int = LIMIT,
) -> None:
    """List objects without an annotation (e.g. PDFs not summarised, recordings without minutes)."""
    from ..search import friendly

    with _clean_errors():
        query = friendly.missing_sql(name, has=has, prefix=prefix, suffix=suffix)
        _show(_backend().run(query, bucket=bucket, limit=limit), as_json=as_json, as_csv=as_csv)


@app.command("ask", rich_help_panel="Search")
def ask_cmd(
    question: str = typer.Argument(..., help="e.g. 'which PDFs haven't been summarised yet?'"),
    bucket: str | None = BUCKET,
    as_json: bool = OUTPUT_JSON,
) -> None:
    """Ask in plain words: the question becomes a read-only query (offline templates by default)."""
    from ..graph.search import build_search_graph

    with _clean_errors():
        state = build_search_graph().invoke({"question": question, "bucket": bucket})
        if state.get("error"):
            raise InvalidInput(state["error"])
        if as_json:
            sys.stdout.write(
                json.dumps({k: state.get(k) for k in ("question", "sql", "answer", "matches")}, indent=2, default=str)
                + "\n"
            )
            return
        _aside(state["sql"])
        console.print(state["answer"], highlight=False)


@app.command("reindex", rich_help_panel="Search")
def reindex_cmd() -> None:
    """Rebuild the local annotation table from the stored annotations (local store only)."""
    from ..config import Settings, open_store
    from ..storage.local import LocalStore

    with _clean_errors():
        settings = Settings.from_env()
        if not settings.is_local:
            raise InvalidInput(
                "reindex works on the local store only: on AWS, S3 Metadata maintains the annotation table"
            )
        store = open_store(settings.store)
        assert isinstance(store, LocalStore)  # settings.is_local
        count = store.reindex()
        console.print(f"annotation table rebuilt: {count} row{'s' if count != 1 else ''}")


def _s3_client():
    import boto3

    # a new session, not boto3's default one: that keeps the credentials it first resolved for
    # the life of the process, so a command would sign with whatever an earlier caller had
    return boto3.session.Session().client("s3")


@tables_app.command("enable")
def tables_enable_cmd(
    bucket: str = typer.Argument(..., help="the general purpose bucket"),
    role: str | None = typer.Option(
        None, "--role", help="IAM role ARN S3 Metadata uses to read annotations (first time)"
    ),
    kms_key: str | None = typer.Option(None, "--kms-key", help="KMS key ARN to encrypt the annotation table"),
    inventory: bool = typer.Option(
        False, "--inventory", help="also enable the inventory table (needed by `missing` without --has)"
    ),
    journal_days: int | None = typer.Option(
        None, "--journal-days", help="keep journal records this many days (default: forever)"
    ),
) -> None:
    """Turn on S3 Metadata's annotation table for BUCKET (AWS; starts a backfill that is charged)."""
    from ..search.tables import LAG_NOTE, enable_annotation_table

    with _clean_errors():
        status = enable_annotation_table(
            _s3_client(),
            bucket,
            role=role,
            kms_key_arn=kms_key,
            inventory=inventory,
            journal_expiration_days=journal_days,
        )
        console.print_json(json.dumps(status.as_dict()))
        _aside(f"note: {LAG_NOTE}")


@tables_app.command("status")
def tables_status_cmd(bucket: str = typer.Argument(..., help="the general purpose bucket")) -> None:
    """Show the metadata configuration of BUCKET: annotation table state, backfill status, Athena name."""
    from ..search.tables import table_status

    with _clean_errors():
        console.print_json(json.dumps(table_status(_s3_client(), bucket).as_dict()))


@app.command("mcp", rich_help_panel="Search")
def mcp_cmd() -> None:
    """Serve search over MCP on stdio (tools: search, find, missing, get_annotation, list_annotations)."""
    from ..search.mcp_server import main

    main()
