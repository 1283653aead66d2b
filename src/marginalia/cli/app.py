"""The typer application every command module registers on, and its error handling.

Exit statuses (documented in the README's "Exit codes"): 0 success, 2 bad input (including a
usage error), 3 not found, 4 conflict or busy, 5 remote failure, 130 interrupted. Which error
gets which status is decided in one place, :func:`marginalia.errors.exit_status`.
"""

from __future__ import annotations

import functools
import inspect
import json
import sys
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import typer
from rich.console import Console
from rich.text import Text
from typer.core import TyperArgument, TyperCommand, TyperOption

from ..errors import NOT_FOUND, BucketNotFound, MarginaliaError, exit_status
from ..redact import printable, redact


class Command(TyperCommand):
    """Every ``marginalia`` command: its help shows a flag as a flag (``--review``, not
    ``--review <bool>``, which the parser would refuse) and arguments in the usual upper case
    (``URI``, ``[FILE]``) rather than typer's ``{uri}``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperOption):
                _as_flag(param)
            elif isinstance(param, TyperArgument) and param.name:
                param.metavar = param.metavar or param.name.upper()
                # typer has no hook for an argument's usage name: this instance's method is replaced
                param._usage_display_name = _usage_name(param)  # type: ignore[method-assign]

    def invoke(self, ctx: Any) -> Any:
        if _subcommand(ctx) not in STORE_OPTIONAL:
            require_store()
        return super().invoke(ctx)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if isinstance(option, TyperOption):
            _as_flag(option)
        return option


#: Commands that may run where the local store does not exist yet: ``mb`` and ``demo`` create it,
#: ``worker`` writes what its runs produce, ``samples`` and ``mcp`` need none to start, and
#: ``threads`` lists nothing there, ``tables`` talks to AWS only. Every other command reads, or writes into, a store that exists:
#: it is refused (not found, naming the store) instead of creating an empty store where it ran.
STORE_OPTIONAL = frozenset({"mb", "demo", "worker", "samples", "mcp", "threads", "tables enable", "tables status"})


def _subcommand(ctx: Any) -> str:
    """The command's name under ``marginalia`` (``ls``, ``tables enable``), however the program was called."""
    names = []
    while ctx.parent is not None:
        names.append(ctx.info_name)
        ctx = ctx.parent
    return " ".join(reversed(names))


def missing_store() -> str | None:
    """The local store's directory when ``MARGINALIA_STORE`` (or the default) names one that does
    not exist; None when it exists or the store is not local."""
    from pathlib import Path

    spec = store_spec()
    if not spec.startswith("local:"):
        return None
    root = Path(spec[len("local:") :] or ".marginalia").expanduser()
    return None if root.exists() else str(root)


def require_store() -> None:
    """BucketNotFound (exit status 3) naming the store, when the local store does not exist."""
    root = missing_store()
    if root is not None:
        raise BucketNotFound(
            f"the local store {root} does not exist: nothing was stored there yet "
            f"(`marginalia mb BUCKET` creates it; MARGINALIA_STORE names another store)"
        )


def _as_flag(option: TyperOption) -> None:
    if option.is_flag or option.count:
        # typer prints a flag's type (BOOLEAN) and has no setting against it: replaced on this instance
        option.display_type_rich = _no_type  # type: ignore[method-assign]


def _no_type(ctx: Any) -> None:
    return None


def _usage_name(param: TyperArgument):
    def name() -> str:
        shown = str(param.metavar)
        if not param.required and not shown.startswith("["):
            shown = f"[{shown}]"
        elif param.required and " " in shown:  # a choice: ``{THREAD | show}``
            shown = f"{{{shown}}}"
        return shown + ("..." if param.nargs != 1 else "")

    return name


_JSON_OUTPUT: ContextVar[bool] = ContextVar("json_output", default=False)
JSON_HELP = "print one JSON document on stdout and nothing else (for scripts)"


def json_output() -> bool:
    """True inside a command run with ``--json``: print nothing but :func:`print_json`'s document."""
    return _JSON_OUTPUT.get()


def print_json(value: Any) -> None:
    """The ``--json`` document on stdout (dataclasses, tuples and dates as JSON)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2, default=str) + "\n")
    sys.stdout.flush()


def with_json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` with a ``--json`` flag: while it runs, :func:`json_output` is true, and the
    command prints its result with :func:`print_json` and no progress, tables or hints; anything
    it still prints on :data:`console` goes to stderr, so stdout holds the one document."""
    signature = inspect.signature(command, eval_str=True)
    flag = inspect.Parameter(
        "json_output_",
        inspect.Parameter.KEYWORD_ONLY,
        default=typer.Option(False, "--json", help=JSON_HELP),
        annotation=bool,
    )

    @functools.wraps(command)
    def wrapper(*args: Any, json_output_: bool = False, **kwargs: Any) -> Any:
        token = _JSON_OUTPUT.set(bool(json_output_))
        if json_output_:  # whatever a command still prints for people goes to stderr, never into the document
            console.file = sys.stderr
        try:
            return command(*args, **kwargs)
        finally:
            _JSON_OUTPUT.reset(token)
            console.file = None  # type: ignore[assignment]  # back to the current sys.stdout

    # typeshed's function type lacks __signature__, the attribute inspect.signature (and so typer) reads
    wrapper.__signature__ = signature.replace(parameters=[*signature.parameters.values(), flag])  # type: ignore[attr-defined]
    return wrapper


class Typer(typer.Typer):
    """typer.Typer whose commands are :class:`Command` unless they ask for another class, and
    take ``--json`` when registered with ``json_output=True`` (:func:`with_json_option`)."""

    def command(self, *args: Any, cls: type[TyperCommand] | None = None, json_output: bool = False, **kwargs: Any):
        register = super().command(*args, cls=cls or Command, **kwargs)
        if not json_output:
            return register
        return lambda command: register(with_json_option(command))


app = Typer(
    name="marginalia",
    help="Agents whose results live on the files they describe, as S3 Annotations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
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
    err_console.print(
        Text.assemble(("error:", "bold red"), " ", redact(printable(str(message)))), highlight=False, soft_wrap=True
    )


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print one clear line on stderr and exit (status 2 for bad input)."""
    error_line(message)
    raise typer.Exit(code)


def store_spec() -> str:
    """The store this process uses (``MARGINALIA_STORE`` or the per-user default), as messages name it."""
    from ..settings import current

    try:
        return current().store
    except MarginaliaError:  # a bad MARGINALIA_* value: the error being reported names it
        return "(not configured)"


def refuse(exc: MarginaliaError) -> int:
    """Print ``exc`` as one ``error:`` line (a "not found" names the store it looked in) and
    return the exit status its kind gets (:func:`marginalia.errors.exit_status`)."""
    status, where = exit_status(exc), store_spec()
    named = where.removeprefix("local:") in str(exc)  # the local store's messages name it already
    error_line(f"{exc} (looked in the store {where})" if status == NOT_FOUND and not named else exc)
    return status


def run() -> None:
    try:
        app()
    except MarginaliaError as exc:
        sys.exit(refuse(exc))
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
