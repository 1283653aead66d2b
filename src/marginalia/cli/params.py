"""Parameter checks every command shares, run by the parser — before a command imports LangGraph.

``marginalia summarize foo.pdf`` used to import the whole agent stack (1-10 s) only to say the URI
was wrong; these callbacks refuse it at once, and a local path gets the command that uploads it.
"""

from __future__ import annotations

import shlex
from pathlib import PurePath

from ..errors import InvalidURI
from ..uri import parse_uri

__all__ = ["object_uri", "object_uris", "prefix_uri"]


def object_uri(value: str) -> str:
    """Typer callback: ``value`` must be ``s3://bucket/key``; a local path is told to ``put`` it first."""
    if value is not None and "://" not in value:
        name = PurePath(value).name or "KEY"
        raise InvalidURI(
            f"{value!r} is not an s3:// URI; to use a local file, put it first: "
            f"marginalia put {shlex.quote(value)} s3://BUCKET/{shlex.quote(name)}"
        )
    if value is not None:
        parse_uri(value)
    return value


def object_uris(values: list[str]) -> list[str]:
    """:func:`object_uri` for a repeatable option."""
    return [object_uri(v) for v in values or []]


def prefix_uri(value: str) -> str:
    """Typer callback: ``value`` must be ``s3://bucket`` or ``s3://bucket/prefix``."""
    if value is not None and "://" not in value:
        raise InvalidURI(f"{value!r} is not an s3:// URI: give s3://BUCKET or s3://BUCKET/PREFIX")
    if value is not None:
        parse_uri(value, require_key=False)
    return value
