"""The typer application every command module registers on, and its error handling."""

from __future__ import annotations

import sys

import typer
from rich.console import Console
from rich.text import Text

from ..errors import MarginaliaError
from ..redact import redact

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


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        console.print(f"marginalia {version('marginalia')}", highlight=False)
        raise typer.Exit()


@app.callback()
def _main(
    _version: bool = typer.Option(
        False, "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Agents whose results live on the files they describe, as S3 Annotations."""


def error_line(message: object) -> None:
    """One ``error:`` line on stderr, secrets masked (an error may quote a URL or a header).

    The message is plain text, never rich markup: a key such as ``logs/[bold]/x`` prints as is."""
    err_console.print(Text.assemble(("error:", "bold red"), " ", redact(str(message))), highlight=False, soft_wrap=True)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear line on stderr and exit (status 2 for bad input)."""
    error_line(message)
    raise typer.Exit(code)


def run() -> None:
    try:
        app()
    except MarginaliaError as exc:
        error_line(exc)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
