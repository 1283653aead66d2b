"""``marginalia store check|repair|gc``: the health of a local store (its catalogue and blobs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import InvalidInput, StoreUnusable
from .app import app, console

store_app = typer.Typer(help="Check, rebuild or clean a local store (its catalogue and blobs).", no_args_is_help=True)
app.add_typer(store_app, name="store", rich_help_panel="Storage")

Root = Annotated[
    Path | None, typer.Argument(help="the local store's directory (default: the one MARGINALIA_STORE names)")
]


def _root(root: Path | None) -> Path:
    if root is not None:
        return root
    from ..config import Settings

    spec = Settings.from_env().store
    if not spec.startswith("local:"):
        raise InvalidInput(f"store commands work on a local store; MARGINALIA_STORE is {spec!r}: name the directory")
    return Path(spec[len("local:") :] or ".marginalia")


def _say(message: str) -> None:
    console.print(message, highlight=False, soft_wrap=True, markup=False)


@store_app.command("check")
def check_cmd(root: Root = None) -> None:
    """Integrity of the catalogue, and blobs missing or named by nothing. Exit 0 when healthy."""
    from ..storage.repair import check

    report = check(_root(root))
    _say(f"catalogue: {report.catalogue}")
    _say(f"blobs: {report.blobs:,}  versions: {report.versions:,}  annotations: {report.annotations:,}")
    if report.orphan_blobs:
        _say(f"{len(report.orphan_blobs):,} blob(s) named by no version: `marginalia store gc` removes them")
    if report.unnamed_blobs:
        _say(f"{len(report.unnamed_blobs):,} blob(s) without metadata beside them (written before it was kept)")
    if report.problems:
        raise StoreUnusable(
            f"the local store {str(report.root)!r} has problems ({'; '.join(report.problems)}): "
            f"rebuild its catalogue with `marginalia store repair {report.root}`"
        )


@store_app.command("repair")
def repair_cmd(root: Root = None) -> None:
    """Rebuild a lost or damaged catalogue from the metadata beside each blob (the old one is kept aside)."""
    from ..storage.repair import repair

    report = repair(_root(root))
    if report.catalogue != "rebuilt":
        _say(f"catalogue: {report.catalogue}; nothing to repair")
        return
    _say(f"rebuilt the catalogue: {report.versions:,} object version(s), {report.annotations:,} annotation(s)")
    if report.moved_aside:
        _say(f"the old catalogue is kept as {report.moved_aside}")
    if report.unnamed_blobs:
        _say(f"{len(report.unnamed_blobs):,} blob(s) had no metadata and stay unnamed under blobs/")
    _say("not recoverable from blobs: delete markers and the journal (it restarts empty)")


@store_app.command("gc")
def gc_cmd(
    root: Root = None,
    older_than: Annotated[float, typer.Option("--older-than", help="only blobs older than this many seconds")] = 3600.0,
) -> None:
    """Remove blobs no object version names (crash leftovers), older than --older-than seconds."""
    from ..storage.local import LocalStore

    store = LocalStore(_root(root))
    try:
        removed = store.gc(older_than=older_than)
    finally:
        store.close()
    _say(f"removed {removed:,} orphan blob(s)")
