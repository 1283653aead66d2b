"""``marginalia samples DIR``: the inputs the README's CLI walk-through uses, copied out of the package."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import InvalidInput, PreconditionFailed
from .agent_cmds import sample_path
from .app import app, console, json_output, print_json

__all__ = ["SAMPLES", "samples_cmd"]

#: file written -> the sample shipped in ``marginalia/samples`` it is a copy of.
SAMPLES = {
    "standup.vtt": "standup.vtt",  # a team stand-up transcript (WebVTT, three speakers)
    "q3.pdf": "sample_report.pdf",  # a two-page Q3 platform cost report
    "outline_request.txt": "outline_request.txt",  # a request for a 10-slide deck, in words
}


@app.command("samples", rich_help_panel="Agents", json_output=True)
def samples_cmd(
    where: str = typer.Argument(".", metavar="DIR", help="where to write them (created if missing)"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace files of the same name that differ"),
) -> None:
    """Write the sample meeting transcript, report PDF and outline request the README's examples use."""
    directory = Path(where)
    if directory.exists() and not directory.is_dir():
        raise InvalidInput(f"cannot write samples into {str(directory)!r}: it is a file, not a directory")
    sources = {name: sample_path(shipped).read_bytes() for name, shipped in SAMPLES.items()}
    for name, data in sources.items():
        target = directory / name
        if target.exists() and not overwrite and target.read_bytes() != data:
            raise PreconditionFailed(f"{target} exists and differs from the sample: pass --overwrite to replace it")
    directory.mkdir(parents=True, exist_ok=True)
    for name, data in sources.items():
        (directory / name).write_bytes(data)
        if not json_output():
            console.print(f"wrote {directory / name} ({len(data):,} bytes)", highlight=False, soft_wrap=True)
    if json_output():
        print_json(
            {
                "directory": str(directory),
                "files": [{"path": str(directory / n), "bytes": len(d)} for n, d in sources.items()],
            }
        )
