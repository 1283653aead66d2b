"""The typer application every command module registers on, and its error handling."""

from __future__ import annotations

import sys

import typer
from rich.console import Console

from ..errors import MarginaliaError

app = typer.Typer(
    name="marginalia",
    help="Agents whose results live on the files they describe, as S3 Annotations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
console = Console()
err_console = Console(stderr=True)


def fail(message: str, code: int = 2) -> "typer.Exit":
    """Print one clear line on stderr and exit (status 2 for bad input)."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def run() -> None:
    try:
        app()
    except MarginaliaError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
