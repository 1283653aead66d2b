"""``marginalia worker``: run agent threads for Temporal (registered on marginalia.cli.app.app)."""

from __future__ import annotations

import typer

from .app import app, console


@app.command("worker", rich_help_panel="Agents")
def worker_cmd(
    concurrency: int = typer.Option(4, "--concurrency", "-c", help="runs this worker drives at once (1-256)"),
    engine_factory: str | None = typer.Option(
        None,
        "--engine-factory",
        help="package.module:callable returning the Engine or LangChain chat model every run of this worker uses",
    ),
) -> None:
    """Poll Temporal (MARGINALIA_TEMPORAL) and run agent threads until stopped (Ctrl-C / SIGTERM).

    Runs started with --on temporal (or on="temporal") go to any worker; a worker may die at any
    moment: its runs continue on another from their last checkpoint."""
    import asyncio

    from ..temporal.settings import TemporalSettings
    from ..temporal.worker import load_engine_factory, run_worker

    settings = TemporalSettings.from_env()
    engine = load_engine_factory(engine_factory) if engine_factory else None

    def ready() -> None:
        console.print(f"worker polling {settings.describe()}, concurrency {concurrency}", highlight=False)

    asyncio.run(run_worker(concurrency=concurrency, engine=engine, settings=settings, ready=ready))
