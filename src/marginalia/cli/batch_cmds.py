"""Batch runs over many objects: ``marginalia batch`` (registered on marginalia.cli.app.app)."""

from __future__ import annotations

import dataclasses
import functools
import threading
from collections.abc import Callable

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from .app import app, console, json_output, print_json
from .formatting import print_table
from .params import prefix_uri

_STYLE = {"done": "green", "skipped": "dim", "waiting": "yellow", "elsewhere": "cyan", "failed": "red"}


@app.command("batch", rich_help_panel="Agents", json_output=True)
def batch_command(
    prefix: str = typer.Argument(
        ..., metavar="S3_PREFIX", help="s3://bucket/prefix of the objects to run on", callback=prefix_uri
    ),
    agent: str = typer.Option("minutes", "--agent", "-a", help="minutes | summary"),
    workers: int = typer.Option(4, "--workers", "-w", help="objects run at the same time (1-64)"),
    yes: bool = typer.Option(False, "--yes", "-y", help="approve every result (else threads wait for approval)"),
    force: bool = typer.Option(False, "--force", help="run again on objects that already carry the annotation"),
    suffix: list[str] = typer.Option(None, "--suffix", help="only keys ending with this (repeatable), e.g. .pdf"),
    engine: str = typer.Option(None, "--engine", help="offline | bedrock:<model-id> (default MARGINALIA_ENGINE)"),
    on: str = typer.Option(
        "local", "--on", help="local | temporal: one Temporal workflow per object, run by `marginalia worker`s"
    ),
) -> None:
    """Run an agent over every matching object under a prefix, WORKERS at a time.

    Objects that already carry the agent's annotation are skipped (unless --force). Killed and
    run again, a batch continues where it stopped. Objects another worker is running are
    reported ``elsewhere``. Exit status 1 if any object failed. With --json: no progress bar, one
    document ``{prefix, agent, counts, rows}``.
    """
    from ..batch import SETTLED, BatchRow, batch, batch_agent
    from ..errors import InvalidInput
    from ..uri import parse_uri

    parse_uri(prefix, require_key=False)
    batch_agent(agent)
    if on not in ("local", "temporal"):
        raise InvalidInput(f"--on {on!r}: use local or temporal")
    if on == "temporal":  # imported before the progress bar starts (the temporal extra may be missing)
        from ..temporal.client import submit_batch

    def run(
        on_row: Callable[[BatchRow], None] | None = None, on_start: Callable[[int], None] | None = None
    ) -> list[BatchRow]:
        # on Temporal one workflow per object, run by `marginalia worker`s, so no --workers here
        run = submit_batch if on == "temporal" else functools.partial(batch, workers=workers)
        return run(
            prefix,
            agent=agent,
            approve=yes,
            force=force,
            suffix=suffix or None,
            engine=engine,
            on_row=on_row,
            on_start=on_start,
        )

    if json_output():
        rows = run()
        counts = {s: sum(r.status == s for r in rows) for s in _STYLE}
        print_json({"prefix": prefix, "agent": agent, "counts": counts, "rows": [dataclasses.asdict(r) for r in rows]})
        if any(r.status not in SETTLED for r in rows):
            raise typer.Exit(1)
        return
    lock = threading.Lock()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as bar:
        task = bar.add_task(f"{agent}", total=None, last="")

        def on_start(total: int) -> None:
            bar.update(task, total=total)

        def on_row(row) -> None:
            with lock:
                bar.update(task, advance=1, last=f"{row.status}: {row.uri.rsplit('/', 1)[-1]}"[:60])

        rows = run(on_row, on_start)

    table = Table("object", "status", "thread", "detail", title=f"batch {agent} on {prefix}")
    cells: list[list[str | Text]] = [
        [r.uri, Text(r.status, style=_STYLE[r.status]), r.thread_id or "—", r.detail] for r in rows
    ]
    print_table(console, table, cells, whole={0, 1, 2})  # object URIs and thread ids are copied: never folded
    counts = {s: sum(r.status == s for r in rows) for s in _STYLE}
    console.print("  ".join(f"[{_STYLE[s]}]{s}: {n}[/]" for s, n in counts.items()), highlight=False)
    if not rows:
        console.print(f"no matching objects under {prefix}")
    if any(r.status not in SETTLED for r in rows):
        raise typer.Exit(1)
