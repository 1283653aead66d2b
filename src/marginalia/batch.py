"""Run an agent over every object under a prefix: bounded concurrency, resumable, one table out.

``batch("s3://b/meetings/", agent="minutes", workers=4, approve=True)`` lists the objects,
skips those that already carry the agent's annotation (unless ``force``), and runs the agent on
the rest in a thread pool (the stores and engines are thread-safe; the offline engine's calls
take turns, see :class:`_TakingTurns`). Each object gets one row: ``done``, ``skipped``,
``waiting`` (for approval), ``elsewhere`` (another worker holds the thread's lease: it is being
run, not broken) or ``failed`` with the reason; a failure never stops the batch.

A batch survives being killed and re-run: the thread id of an object is derived from the agent,
the object and its ETag (:func:`thread_id_for`), so a re-run finds the same threads and
:func:`prepare_continue` (the runtime's :func:`~marginalia.runtime.start_or_continue`) picks each
one up where its checkpoints left it — a crashed run goes on from its last completed node, a
thread waiting for approval is reported (not restarted), a finished thread is not run again.
The runtime runs every thread under its lease (:func:`marginalia.lease.thread_lease`), so two
batches over the same prefix never run the same object at once (the loser's row is
``elsewhere``, naming the holder; a later run picks up whatever that worker left).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Literal

from .agents import AgentSpec, BatchSpec, batch_agents
from .context import engine_turn, resolve_engine, resolve_store
from .errors import AnnotationNotFound, InvalidInput, MarginaliaError, ObjectNotFound, ThreadBusy
from .runtime import Run, RunResult, drive, start_or_continue
from .storage.base import ObjectInfo, Store
from .uri import parse_uri

__all__ = ["SETTLED", "BatchRow", "batch", "batch_agent", "prepare_continue", "run_object", "thread_id_for"]

Status = Literal["done", "skipped", "waiting", "elsewhere", "failed"]
#: Statuses of a batch that ended well: nothing is left for this batch to do or report as broken.
SETTLED: frozenset[str] = frozenset({"done", "skipped", "waiting", "elsewhere"})


# --- what a batch can run ------------------------------------------------------------------
def batch_agent(name: str) -> AgentSpec:
    """The agent ``marginalia batch --agent NAME`` runs (its spec's ``batch`` says how)."""
    agents = batch_agents()
    if name not in agents:
        raise InvalidInput(f"unknown batch agent {name!r}: use one of {', '.join(sorted(agents))}")
    return agents[name]


def thread_id_for(agent: str, info: ObjectInfo) -> str:
    """The same object version always gets the same thread (so a re-run resumes it)."""
    digest = hashlib.sha256(f"{info.bucket}\0{info.key}\0{info.etag}\0{info.version_id or ''}".encode()).hexdigest()
    return f"{agent}-b{digest[:24]}"


# --- one thread: start it, or continue it where it stopped -----------------------------------
class _TakingTurns:
    """An engine whose every call takes its turn (:func:`marginalia.context.engine_turn`) across
    the batch's worker threads; model-calling engines are used directly and run concurrently."""

    def __init__(self, engine: Any):
        self._engine = engine
        self.name = engine.name
        self.model = engine.model

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self._engine, attr)
        if not callable(target):
            return target

        def call(*args, **kwargs):
            with engine_turn(self._engine):
                return target(*args, **kwargs)

        return call


def _thread_safe(engine: Any) -> Any:
    return _TakingTurns(engine) if getattr(engine, "name", None) == "offline" else engine


def prepare_continue(
    agent: AgentSpec,
    object_uri: str,
    *,
    thread_id: str,
    store: Store,
    engine: Any,
    approve: bool,
    fresh: bool = False,
) -> Run | RunResult:
    """The run that takes thread ``thread_id`` of ``agent`` on ``object_uri`` forward (a new
    run, the continuation of a crashed one), or where it stands when waiting or finished: see
    :func:`marginalia.runtime.start_or_continue`. The returned :class:`Run` holds the thread's
    lease until :func:`~marginalia.runtime.drive` returns. ``fresh`` re-runs a finished thread.
    """
    return start_or_continue(
        agent.name,
        object_uri,
        _batch_of(agent).inputs(),
        thread_id=thread_id,
        store=store,
        engine=engine,
        approve=approve,
        fresh=fresh,
    )


# --- the batch -------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchRow:
    """One object of a batch and what became of it."""

    uri: str
    status: Status
    thread_id: str | None = None
    detail: str = ""  # the reason of a failure, why it was skipped, the annotations written
    annotations: tuple[str, ...] = field(default_factory=tuple)


def _has_annotation(store: Store, info: ObjectInfo, name: str) -> bool:
    try:
        store.get_annotation(info.bucket, info.key, name, version_id=info.version_id)
        return True
    except (AnnotationNotFound, ObjectNotFound):
        return False


def _reason(exc: BaseException) -> str:
    text = str(exc) if isinstance(exc, MarginaliaError) else f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())[:500]


def _batch_of(agent: AgentSpec) -> BatchSpec:
    if agent.batch is None:
        raise InvalidInput(f"agent {agent.name} does not run in batches")
    return agent.batch


def run_object(
    agent: AgentSpec,
    info: ObjectInfo,
    *,
    store: Store,
    engine: Any,
    approve: bool,
    force: bool = False,
) -> BatchRow:
    """Run (or continue) ``agent`` on one object (under the thread's lease); never raises for it."""
    uri = info.uri
    marker = _batch_of(agent).annotation
    if not force and _has_annotation(store, info, marker):
        return _skip(agent, info, store=store, engine=engine, marker=marker)
    thread_id = thread_id_for(agent.name, info)
    try:
        run = prepare_continue(agent, uri, thread_id=thread_id, store=store, engine=engine, approve=approve)
        if force and isinstance(run, RunResult) and run.status != "waiting":
            run = prepare_continue(
                agent, uri, thread_id=thread_id, store=store, engine=engine, approve=approve, fresh=True
            )
        result = run if isinstance(run, RunResult) else drive(run)
    except ThreadBusy as exc:  # another worker holds the thread (its lease, or it advanced the head first)
        return BatchRow(uri, "elsewhere", thread_id, _reason(exc))
    except Exception as exc:  # one object's failure is reported; the batch goes on
        return BatchRow(uri, "failed", thread_id, _reason(exc))
    if result.status == "waiting":
        return BatchRow(uri, "waiting", thread_id, f"approve: marginalia approve {thread_id}")
    if result.status == "rejected":
        return BatchRow(uri, "failed", thread_id, "rejected by a reviewer: nothing written")
    names = tuple(a.name for a in result.annotations)
    return BatchRow(uri, "done", thread_id, ", ".join(names), names)


def _left_unfinished(store: Store, thread_id: str) -> bool:
    """True when a kill left this batch's thread unfinished in the index (a status other than
    done, e.g. ``interrupted`` or ``running``) or without its trace archive."""
    from .archive import archive_uri
    from .context import state_location
    from .threads import ThreadIndex

    state = state_location(store)
    record = ThreadIndex(store, state).get(thread_id)
    if record is None:
        return False
    if record.status != "done":
        return True
    target = archive_uri(state, thread_id)
    try:
        store.head_object(target.bucket, target.key)
        return False
    except ObjectNotFound:
        return True


def _skip(agent: AgentSpec, info: ObjectInfo, *, store: Store, engine: Any, marker: str) -> BatchRow:
    """An object that already carries the agent's annotation is skipped; but when a kill left its
    thread unfinished (the annotation written, the index not updated or the archive not written),
    the thread is taken forward first: :func:`prepare_continue` finds it finished in its
    checkpoints, records it ``done`` and writes the missing archive (issue 17: a re-run
    completes what a kill left undone)."""
    thread_id = thread_id_for(agent.name, info)
    try:
        if not _left_unfinished(store, thread_id):
            return BatchRow(info.uri, "skipped", None, f"already has {marker}")
        run = prepare_continue(agent, info.uri, thread_id=thread_id, store=store, engine=engine, approve=False)
        result = run if isinstance(run, RunResult) else drive(run)
    except ThreadBusy as exc:
        return BatchRow(info.uri, "elsewhere", thread_id, _reason(exc))
    except Exception as exc:  # the object is done; only its bookkeeping could not be completed
        return BatchRow(info.uri, "skipped", thread_id, f"already has {marker}; its thread: {_reason(exc)}")
    return BatchRow(info.uri, "skipped", thread_id, f"already has {marker}; its thread completed ({result.status})")


def list_matching(store: Store, prefix_uri: str, suffixes: Sequence[str]) -> list[ObjectInfo]:
    """Objects under ``s3://bucket/prefix`` whose key ends with one of ``suffixes`` (any case)."""
    where = parse_uri(prefix_uri, require_key=False)
    wanted = tuple(s.lower() if s.startswith(".") else f".{s.lower()}" for s in suffixes)
    return [o for o in store.list_objects(where.bucket, where.key) if PurePosixPath(o.key).suffix.lower() in wanted]


def batch(
    prefix_uri: str,
    *,
    agent: str = "minutes",
    workers: int = 4,
    approve: bool = False,
    force: bool = False,
    suffix: str | Sequence[str] | None = None,
    store: Store | str | None = None,
    engine: Any = None,
    on_row: Callable[[BatchRow], None] | None = None,
    on_start: Callable[[int], None] | None = None,
) -> list[BatchRow]:
    """Run ``agent`` (a batch name: ``minutes``, ``summary`` ...; see :func:`batch_agent`) over every matching object under ``prefix_uri``.

    ``workers`` threads run objects concurrently; ``approve`` passes the approval step (else
    each thread stops ``waiting``); ``force`` re-runs objects that already carry the agent's
    annotation; ``suffix`` (``.pdf`` or a list) narrows the objects taken. Returns one
    :class:`BatchRow` per object, in key order. ``on_start(total)`` and ``on_row(row)`` (called
    from worker threads) drive a progress display.
    """
    spec = batch_agent(agent)
    if not isinstance(workers, int) or workers < 1 or workers > 64:
        raise InvalidInput(f"--workers must be between 1 and 64, got {workers!r}")
    store_obj = resolve_store(store)
    engine_obj = _thread_safe(resolve_engine(engine))
    suffixes = [suffix] if isinstance(suffix, str) else list(suffix or _batch_of(spec).suffixes())
    objects = list_matching(store_obj, prefix_uri, suffixes)
    if on_start is not None:
        on_start(len(objects))

    def one(info: ObjectInfo) -> BatchRow:
        row = run_object(spec, info, store=store_obj, engine=engine_obj, approve=approve, force=force)
        if on_row is not None:
            on_row(row)
        return row

    if workers == 1:
        return [one(o) for o in objects]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="batch") as pool:
        return list(pool.map(one, objects))
