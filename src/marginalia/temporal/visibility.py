"""Temporal-run threads, found through search attributes (what ``marginalia threads`` adds).

The same questions can be asked of Temporal directly, e.g.
``temporal workflow list --query "MarginaliaAgent='minutes' AND ExecutionStatus='Failed'"``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..threads import Status, as_status
from . import search_attributes as attrs
from .settings import TemporalSettings

__all__ = ["TemporalThread", "alist_threads", "query_for"]


@dataclass(frozen=True)
class TemporalThread:
    thread_id: str  # = workflow id
    run_id: str
    agent: str
    object_uri: str
    status: Status  # MarginaliaStatus: running | waiting | done | rejected | expired | failed
    execution_status: str  # Temporal's: Running | Completed | Failed | Terminated ...
    started_at: str


def query_for(*, pending: bool = False, failed: bool = False) -> str:
    query = f"{attrs.AGENT.name} IS NOT NULL"
    if pending:
        query += f" AND {attrs.STATUS.name}='waiting' AND ExecutionStatus='Running'"
    if failed:
        query += f" AND ({attrs.STATUS.name}='failed' OR ExecutionStatus IN ('Failed','Terminated','TimedOut'))"
    return query


async def alist_threads(*, pending: bool = False, failed: bool = False, limit: int = 1000) -> list[TemporalThread]:
    """Marginalia runs known to the configured Temporal service, newest first."""
    client = await TemporalSettings.from_env().connect()
    found: list[TemporalThread] = []
    async for wf in client.list_workflows(query_for(pending=pending, failed=failed), limit=limit):
        sa = wf.typed_search_attributes
        bucket, key = sa.get(attrs.BUCKET), sa.get(attrs.OBJECT_KEY)
        status = wf.status.name.title() if wf.status is not None else "Unknown"
        marginalia_status = as_status(sa.get(attrs.STATUS), default="running")
        if status in ("Failed", "Terminated", "Timed_Out", "Canceled"):
            marginalia_status = "failed"
        found.append(
            TemporalThread(
                thread_id=wf.id,
                run_id=wf.run_id,
                agent=sa.get(attrs.AGENT) or "?",
                object_uri=f"s3://{bucket}/{key}" if bucket else "",
                status=marginalia_status,
                execution_status=status,
                started_at=wf.start_time.isoformat(timespec="seconds"),
            )
        )
    return found
