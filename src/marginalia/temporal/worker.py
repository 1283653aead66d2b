"""``marginalia worker``: a process that polls the task queue and runs agent threads.

Start as many as you like, on any machines that reach the Temporal service and the same
``MARGINALIA_STORE``/``MARGINALIA_STATE``: each takes runs from one queue, ``concurrency`` at a
time. A worker holds no state of its own — kill it at any moment; its runs are retried on
another worker from their last checkpoint.
"""

from __future__ import annotations

import asyncio
import importlib
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import ConfigurationError, InvalidInput
from .activities import ThreadActivities
from .settings import TemporalSettings
from .workflow import AgentRun

__all__ = ["AGENT_MODULES", "load_engine_factory", "register_agents", "run_worker"]

#: Importing these registers every agent a run may name.
AGENT_MODULES = ("marginalia.graph.minutes", "marginalia.graph.pdf_summary", "marginalia.graph.ppt_outline")


def register_agents() -> None:
    """Import every agent graph module (each registers its agent with the runtime)."""
    for module in AGENT_MODULES:
        importlib.import_module(module)


def load_engine_factory(path: str) -> Any:
    """``package.module:callable`` → what the callable returns (an Engine or a LangChain chat model)."""
    module, _, name = path.partition(":")
    if not module or not name:
        raise InvalidInput(f"--engine-factory {path!r}: use package.module:callable")
    try:
        factory: Callable[[], Any] = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"--engine-factory {path!r} cannot be loaded: {exc}") from None
    from ..runtime import resolve_engine

    return resolve_engine(factory())


async def run_worker(
    *,
    concurrency: int = 4,
    engine: Any = None,
    settings: TemporalSettings | None = None,
    ready: Callable[[], None] | None = None,
) -> None:
    """Poll the task queue until SIGINT/SIGTERM; at most ``concurrency`` runs at once."""
    from temporalio.worker import Worker

    if not 1 <= concurrency <= 256:
        raise InvalidInput(f"--concurrency must be between 1 and 256, got {concurrency}")
    settings = settings or TemporalSettings.from_env()
    register_agents()
    loop = asyncio.get_running_loop()
    # LangGraph runs sync nodes (and the runtime its storage calls) in the loop's default executor:
    # size it so `concurrency` runs never queue behind each other's threads.
    loop.set_default_executor(ThreadPoolExecutor(max_workers=4 * concurrency + 4, thread_name_prefix="marginalia"))
    client = await settings.connect()
    activities = ThreadActivities(engine=engine)
    worker = Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[AgentRun],
        activities=activities.all(),
        max_concurrent_activities=concurrency,
        max_concurrent_workflow_tasks=max(2, concurrency),
    )
    stop = asyncio.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    async with worker:
        if ready is not None:
            ready()
        await stop.wait()
