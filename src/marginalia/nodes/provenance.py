"""The ``provenance`` block every annotation payload carries (``schemas.Provenance``).

It says which thread, trace, engine and model made a result, from which version of the object
(its ETag) and when, so a reader of an annotation can trace it back and a re-run can tell
whether it is stale.
"""

from __future__ import annotations

from ..engines.base import Engine
from ..schemas import Provenance
from ..threads import utcnow
from ..tracing import temporal_of, trace_id_for
from ..version import __version__


def provenance(
    *, config: dict, engine: Engine, agent: str, source_etag: str | None, created_at: str | None = None
) -> dict:
    """Provenance as a JSON-ready dict; ``created_at`` fixed by the caller keeps retries identical."""
    thread_id = (config.get("configurable") or {}).get("thread_id") or "unknown"
    metadata = config.get("metadata") or {}
    trace_id = metadata.get("trace_id") or trace_id_for(thread_id)
    return Provenance(
        thread_id=thread_id,
        trace_id=trace_id,
        engine=engine.name,
        model=engine.model,
        created_at=created_at or utcnow(),
        source_etag=source_etag,
        agent=agent,
        marginalia_version=__version__,
        temporal=temporal_of(metadata),  # the workflow that ran it, when Temporal did
    ).model_dump(mode="json")
