"""``marginalia threads`` with Temporal: index records merged with the runs Temporal knows.

A Temporal-run thread is in the thread index as soon as a worker first drives it; a run still
queued (no worker yet) is only in Temporal's visibility. Either way it is listed once, with the
status its workflow reports (``expired`` and ``failed`` included) and ``on_temporal`` set.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..threads import ThreadRecord
from .client import blocking
from .visibility import alist_threads

__all__ = ["TemporalThreadRecord", "with_temporal_threads"]


@dataclass
class TemporalThreadRecord(ThreadRecord):
    on_temporal: bool = True
    run_id: str | None = None


def with_temporal_threads(records: list[ThreadRecord], *, pending: bool, failed: bool) -> list[ThreadRecord]:
    found = {t.thread_id: t for t in blocking(alist_threads(pending=pending, failed=failed))}
    merged: list[ThreadRecord] = []
    for record in records:
        run = found.pop(record.thread_id, None)
        if run is None:
            merged.append(record)
            continue
        fields = {k: getattr(record, k) for k in ThreadRecord.__dataclass_fields__}
        merged.append(TemporalThreadRecord(**{**fields, "status": run.status}, run_id=run.run_id))
    for run in found.values():  # queued: no worker has driven it yet
        merged.append(
            TemporalThreadRecord(
                thread_id=run.thread_id,
                agent=run.agent,
                object_uri=run.object_uri,
                status=run.status,
                updated_at=run.started_at,
                created_at=run.started_at,
                run_id=run.run_id,
            )
        )
    if pending:
        merged = [r for r in merged if r.status == "waiting"]
    return sorted(merged, key=lambda r: r.updated_at, reverse=True)
