"""A thread's records: its id, its index record (rebuilt from checkpoint metadata when the
index lost it), the run config every checkpoint and trace carries, and where it stands."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from .. import tracing
from ..agents import AgentSpec
from ..context import engine_spec_of
from ..engines.base import Engine
from ..errors import ThreadNotFound
from ..threads import ThreadIndex, ThreadRecord

__all__ = ["Position", "find_thread", "new_record", "new_thread_id", "position", "thread_config"]


def thread_config(record: ThreadRecord) -> dict:
    """The run config of a thread: its id, and the metadata every checkpoint and trace carries."""
    return {
        "configurable": {"thread_id": record.thread_id},
        "metadata": {
            **tracing.run_metadata(record.thread_id, record.agent),  # langfuse_* keys, when tracing is on
            "trace_id": record.trace_id,
            "agent": record.agent,
            "graph_module": record.graph_module,
            "object_uri": record.object_uri,
            "engine": record.engine,
        },
        "callbacks": tracing.callbacks_for(record.thread_id, record.agent),
        "run_name": record.agent,
        "tags": [f"agent:{record.agent}"],
    }


def new_thread_id(agent: str) -> str:
    return f"{agent}-{uuid.uuid4().hex[:16]}"


def new_record(
    spec: AgentSpec, thread_id: str, object_uri: str, engine: Engine | str | None, engine_obj: Engine
) -> ThreadRecord:
    return ThreadRecord(
        thread_id=thread_id,
        agent=spec.name,
        object_uri=object_uri,
        status="running",
        trace_id=tracing.trace_id_for(thread_id),
        graph_module=spec.module,
        engine=engine if isinstance(engine, str) else engine_spec_of(engine_obj),
    )


def find_thread(index: ThreadIndex, saver: Any, thread_id: str) -> ThreadRecord:
    """The thread's index record, rebuilt from checkpoint metadata if the index lost it."""
    record = index.get(thread_id)
    if record is not None:
        return record
    found = saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    meta = (found.metadata or {}) if found else {}
    if not meta.get("agent"):
        raise ThreadNotFound(f"no thread {thread_id!r} in {index.bucket}/{index.prefix} (see `marginalia threads`)")
    return index.put(
        ThreadRecord(
            thread_id=thread_id,
            agent=meta["agent"],
            # a thread the API server ran before it kept records has its object in its state only
            object_uri=meta.get("object_uri") or str(_state_values(found).get("object_uri") or ""),
            status="waiting",
            trace_id=meta.get("trace_id") or tracing.trace_id_for(thread_id),
            graph_module=meta.get("graph_module"),
            engine=meta.get("engine"),
        )
    )


def _state_values(found: Any) -> dict:
    values = (found.checkpoint or {}).get("channel_values") if found is not None else None
    return values if isinstance(values, dict) else {}


Position = Literal["new", "waiting", "unfinished", "finished"]


def position(graph: Any, saver: Any, config: dict) -> tuple[Position, Any]:
    """Where a thread stands, from its latest checkpoint, and that checkpoint's snapshot.

    ``new`` (no checkpoint), ``waiting`` (at an approval interrupt), ``unfinished`` (stopped
    mid-graph: its process died or a node failed; input ``None`` continues it) or ``finished``.
    ``get_state().next`` alone misses one unfinished case: a node that fans out with ``Send``
    completed and its writes were saved, but the process died before the next checkpoint; the
    snapshot shows no next node, yet continuing applies the writes and runs the sends.
    """
    snapshot = graph.get_state(config)
    if snapshot is None or not snapshot.metadata:
        return "new", snapshot
    if snapshot.interrupts:
        return "waiting", snapshot
    if snapshot.next:
        return "unfinished", snapshot
    found = saver.get_tuple({"configurable": {**config["configurable"], "checkpoint_ns": ""}})
    return ("unfinished" if found and found.pending_writes else "finished"), snapshot
