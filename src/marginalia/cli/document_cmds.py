"""Document agent commands: ``summarize`` and ``outline``, and their steps of ``marginalia demo``.

Nothing heavy is imported at module level (every ``marginalia`` command imports this module).
Both reuse the agent CLI's presentation (:func:`~marginalia.cli.agent_cmds.run_agent` for live
progress, :func:`~marginalia.cli.agent_cmds.show_result` for the proposal and next steps), so
``marginalia approve/reject THREAD`` answer their reviews like any other agent's.
"""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import InvalidInput
from .agent_cmds import DEMO_BUCKET, DemoStep, on_option, run_agent, sample_path, show_result
from .app import app
from .params import object_uri, object_uris

__all__ = ["outline_cmd", "read_request", "summarize_cmd"]


@app.command("summarize", rich_help_panel="Agents", json_output=True)
def summarize_cmd(
    uri: str = typer.Argument(..., help="s3://bucket/key of a PDF", callback=object_uri),
    engine: str | None = typer.Option(
        None, "--engine", "-e", help="offline | bedrock:<model-id> (default MARGINALIA_ENGINE)"
    ),
    review: bool = typer.Option(False, "--review", help="stop for approval before writing the summary"),
    password: str | None = typer.Option(
        None,
        "--password",
        help="password of an encrypted PDF, never stored (or set MARGINALIA_PDF_PASSWORD, which a resumed review reads too)",
    ),
    allow_no_text: bool = typer.Option(
        False,
        "--allow-no-text",
        help='a scanned PDF (no text layer) gets a summary with status "no_text" instead of an error',
    ),
    chunk_pages: int | None = typer.Option(None, "--chunk-pages", min=1, help="pages per map step (default 12)"),
    thread: str | None = typer.Option(None, "--thread", help="thread id to use (default: a new one)"),
    on: str = on_option(),
) -> None:
    """Summary of a PDF (title, authors, key points with pages, entities, keywords) as its `summary` annotation."""
    from ..api_documents import summarize

    show_result(
        run_agent(
            summarize,
            uri=uri,
            engine=engine,
            review=review,
            password=password,
            allow_no_text=allow_no_text,
            chunk_pages=chunk_pages,
            thread_id=thread,
            on=on,
        )
    )


def read_request(request: str) -> str:
    """``@FILE`` reads the request from a UTF-8 file; anything else is the request itself."""
    if not request.startswith("@"):
        return request
    path = Path(request[1:]).expanduser()
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidInput(f"request file {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"request file {path} cannot be read as UTF-8 text: {exc}") from None


@app.command("outline", rich_help_panel="Agents", json_output=True)
def outline_cmd(
    request: str = typer.Argument(..., help="what the presentation is for, in words (or @FILE to read it from a file)"),
    out: str = typer.Option(
        ..., "--out", "-o", help="s3://bucket/key.pptx where the deck goes on approval", callback=object_uri
    ),
    slides: int | None = typer.Option(None, "--slides", "-n", help="number of content slides (1-60)"),
    source: list[str] = typer.Option(
        [], "--source", "-s", help="s3:// object to ground the deck in (repeatable)", callback=object_uris
    ),
    engine: str | None = typer.Option(
        None, "--engine", "-e", help="offline | bedrock:<model-id> (default MARGINALIA_ENGINE)"
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="approve the proposed outline at once"),
    overwrite: bool = typer.Option(False, "--overwrite", help="replace --out if it already exists"),
    password: str | None = typer.Option(
        None, "--password", help="password of encrypted PDF sources (or MARGINALIA_PDF_PASSWORD)"
    ),
    thread: str | None = typer.Option(None, "--thread", help="thread id to use (default: a new one)"),
    on: str = on_option(),
) -> None:
    """Slide outline for a request, grounded in sources' annotations; on approval a .pptx is uploaded and annotated."""
    from ..api_documents import outline

    show_result(
        run_agent(
            outline,
            request=read_request(request),
            out=out,
            slides=slides,
            sources=source,
            engine=engine,
            approve=yes,
            overwrite=overwrite,
            password=password,
            thread_id=thread,
            on=on,
        )
    )


# --- demo ------------------------------------------------------------------------------------------
DEMO_PDF_KEY = "reports/sample_report.pdf"
DEMO_DECK_KEY = "decks/sample_review.pptx"


def _demo_summarize(store) -> list[str]:
    from ..api_documents import summarize

    store.put_object(DEMO_BUCKET, DEMO_PDF_KEY, sample_path("sample_report.pdf"), content_type="application/pdf")
    result = run_agent(summarize, uri=f"s3://{DEMO_BUCKET}/{DEMO_PDF_KEY}", engine="offline", store=store)
    show_result(result)
    return [result.object_uri]


def _demo_outline(store) -> list[str]:
    from ..api_documents import outline

    request = sample_path("outline_request.txt").read_text(encoding="utf-8")
    result = run_agent(
        outline,
        request=request,
        out=f"s3://{DEMO_BUCKET}/{DEMO_DECK_KEY}",
        sources=[f"s3://{DEMO_BUCKET}/{DEMO_PDF_KEY}"],
        engine="offline",
        approve=True,
        overwrite=True,
        store=store,
    )
    show_result(result)
    return [result.object_uri]


SUMMARIZE_DEMO = DemoStep("summarize", "summary of a sample PDF report (no review)", _demo_summarize)
OUTLINE_DEMO = DemoStep(
    "outline",
    "a 10-slide deck from a sample request, grounded in the report's summary annotation (approved with --yes)",
    _demo_outline,
)
