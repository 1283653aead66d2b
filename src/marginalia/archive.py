"""Self-contained trace archives: a thread's whole story in ONE object, readable without the sources.

At the end of a thread (or on ``marginalia archive THREAD``), :func:`archive_thread` writes
``<MARGINALIA_STATE>/archives/<thread_id>.json``:

* the **body** is the execution trace rebuilt from the checkpointer's history (every checkpoint,
  its pending writes and metadata) and the thread index: steps with the nodes that ran, their
  time and duration, errors, interrupts and the human decisions that answered them (reviewer,
  action, feedback, edits), the annotations written, the trace id and its URL; and, from the run
  journal (:class:`marginalia.journal.RunJournal`, ``<state>/usage/<thread_id>/``), every model
  call with its node, model and token counts (with totals per node and per model) and every node
  retry (which task failed with what error class, and when it ran again);
* the **context offloaded during the run** is attached to that object as annotations, never
  stored at other paths: the annotations of the thread's object (the transcript, the results), the
  source annotations an agent read (e.g. the summaries an outline was grounded on), a PDF's page
  texts and the prompt templates when a model was used (what the thread's agent declares in its
  spec's ``attachments``, :mod:`marginalia.agents`). Each attachment goes through
  :func:`marginalia.tools.large_annotations.put_json`, so one above 1 MiB is split into parts with
  an index; the body's ``attachments`` list says which were split and into how many parts, and
  which were left out when the 1,000-annotations-per-version limit would have been passed.

:func:`read_archive` (``marginalia archive show``) rebuilds the full story from that one object,
even after the sources were moved or deleted. Writing the object replaces an earlier archive of
the thread: a new object version starts with no annotations, so no stale attachment survives.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import journal, tracing
from .agents import AgentSpec, get_agent
from .context import state_location
from .errors import AnnotationNotFound, InvalidInput, MarginaliaError, ObjectNotFound, ThreadNotFound
from .storage.base import Store
from .storage.rules import MAX_ANNOTATIONS_PER_VERSION, MAX_PAYLOAD_BYTES
from .threads import Status, ThreadIndex, ThreadRecord, utcnow, validate_thread_id
from .tools import large_annotations
from .uri import S3URI, parse_uri

__all__ = [
    "ARCHIVE_FORMAT",
    "ArchiveResult",
    "Step",
    "archive_run",
    "archive_thread",
    "archive_uri",
    "model_usage",
    "read_archive",
    "thread_record",
    "thread_steps",
]

ARCHIVE_FORMAT = "marginalia.archive/v1"
ARCHIVE_DIR = "archives"
_BIG_VALUE_KEYS = ("partials",)  # reducer scratch: summarised elsewhere, not worth keeping twice


def archive_uri(state: S3URI, thread_id: str) -> S3URI:
    """``<state>/archives/<thread_id>.json``."""
    return state.join(ARCHIVE_DIR, f"{validate_thread_id(thread_id)}.json")


# --- history -----------------------------------------------------------------------------------
@dataclass
class Step:
    """One checkpoint of a thread and what ran from it until the next one."""

    step: int
    checkpoint_id: str
    at: str
    source: str  # input | loop | update | fork
    ran: list[str]  # nodes whose writes produced this checkpoint
    next: list[str]  # nodes scheduled from it
    tasks: list[dict] = field(default_factory=list)  # nodes run from it: name, error, interrupts
    seconds: float | None = None  # until the next checkpoint (None for the last)

    def as_json(self) -> dict:
        return {
            "step": self.step,
            "checkpoint_id": self.checkpoint_id,
            "at": self.at,
            "source": self.source,
            "ran": self.ran,
            "next": self.next,
            "tasks": self.tasks,
            "seconds": self.seconds,
        }


def thread_record(store: Store, saver: Any, index: ThreadIndex, thread_id: str) -> ThreadRecord:
    """The index record of ``thread_id``, or one rebuilt from checkpoint metadata; ThreadNotFound if neither."""
    record = index.get(thread_id)
    if record is not None:
        return record
    found = saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    meta = (found.metadata or {}) if found else {}
    if found is None:
        raise ThreadNotFound(
            f"no thread {thread_id!r} in {index.bucket}/{index.prefix} nor in the checkpointer at {saver!r}"
        )
    values = found.checkpoint.get("channel_values") or {}  # a thread run by the API server has no index record
    status: Status
    if found.pending_writes and any(w[1] == "__interrupt__" for w in found.pending_writes):
        status = "waiting"
    else:
        status = "rejected" if values.get("decision") == "discard" else "done"  # reject loops to a revision
    return ThreadRecord(
        thread_id=thread_id,
        agent=meta.get("agent") or "unknown",
        object_uri=meta.get("object_uri") or str(values.get("object_uri") or ""),
        status=status,
        trace_id=meta.get("trace_id"),
        graph_module=meta.get("graph_module"),
        engine=meta.get("engine"),
    )


def _spec_for(record: ThreadRecord) -> AgentSpec | None:
    """The thread's agent as registered here; None for an agent this process cannot import."""
    try:
        return get_agent(record.agent, record.graph_module)
    except MarginaliaError:
        return None


def _graph_for(record: ThreadRecord, saver: Any):
    """The agent's graph on ``saver`` (to name the tasks of each checkpoint); None if unknown here."""
    spec = _spec_for(record)
    return spec.build(checkpointer=saver) if spec is not None else None


def _seconds(a: str, b: str) -> float | None:
    try:
        return round((dt.datetime.fromisoformat(b) - dt.datetime.fromisoformat(a)).total_seconds(), 3)
    except (TypeError, ValueError):
        return None


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=_default))


def _default(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if hasattr(value, "_asdict"):
        return value._asdict()
    if hasattr(value, "__dict__"):
        return {k: v for k, v in vars(value).items() if not k.startswith("_")}
    return str(value)


def thread_steps(saver: Any, record: ThreadRecord) -> tuple[list[Step], dict]:
    """The thread's checkpoints, oldest first, as :class:`Step` s; and the latest state values.

    Task names, errors and interrupts come from the graph's view of each checkpoint (its pending
    writes); without the agent's graph (a thread of an agent this process cannot import) the
    steps still have their time, source and the nodes that wrote them (from checkpoint metadata).
    """
    config = {"configurable": {"thread_id": record.thread_id, "checkpoint_ns": ""}}
    graph = _graph_for(record, saver)
    steps: list[Step] = []
    values: dict = {}
    if graph is not None:
        snapshots = list(graph.get_state_history(config))[::-1]
        for snap in snapshots:
            meta = snap.metadata or {}
            steps.append(
                Step(
                    step=int(meta.get("step", -1)),
                    checkpoint_id=snap.config["configurable"]["checkpoint_id"],
                    at=snap.created_at or "",
                    source=str(meta.get("source", "")),
                    ran=[],
                    next=list(snap.next),
                    tasks=[
                        {
                            "node": t.name,
                            "error": t.error if t.error is None else str(t.error),
                            "interrupts": [_jsonable(i.value) for i in t.interrupts],
                        }
                        for t in snap.tasks
                    ],
                )
            )
        values = dict(snapshots[-1].values) if snapshots else {}
    else:
        tuples = list(saver.list(config))[::-1]
        for tup in tuples:
            meta = tup.metadata or {}
            steps.append(
                Step(
                    step=int(meta.get("step", -1)),
                    checkpoint_id=tup.checkpoint["id"],
                    at=tup.checkpoint.get("ts", ""),
                    source=str(meta.get("source", "")),
                    ran=[],
                    next=[],
                    tasks=[{"node": None, "writes": sorted({w[1] for w in tup.pending_writes or []})}],
                )
            )
        values = dict(tuples[-1].checkpoint.get("channel_values") or {}) if tuples else {}
    for before, after in zip(steps, steps[1:], strict=False):
        before.seconds = _seconds(before.at, after.at)
        after.ran = [t["node"] for t in before.tasks if t.get("node") and not t.get("interrupts")] or [
            t["node"] for t in before.tasks if t.get("node")
        ]
    return steps, values


def _node_timings(steps: list[Step]) -> dict[str, dict]:
    """Per node: runs and seconds (a step's time split evenly over the nodes that ran in it in parallel).

    A step stopped by an interrupt is human waiting time, reported under ``waited_s``, not as
    the node's run time.
    """
    out: dict[str, dict] = {}
    for s in steps:
        if s.seconds is None or not s.tasks:
            continue
        interrupted = any(t.get("interrupts") for t in s.tasks)
        share = s.seconds / len(s.tasks)
        for t in s.tasks:
            node = t.get("node") or "?"
            entry = out.setdefault(node, {"runs": 0, "seconds": 0.0, "waited_s": 0.0, "errors": 0})
            entry["runs"] += 1
            entry["errors"] += 1 if t.get("error") else 0
            if interrupted:
                entry["waited_s"] = round(entry["waited_s"] + share, 3)
            else:
                entry["seconds"] = round(entry["seconds"] + share, 3)
    return out


# --- offloaded context -------------------------------------------------------------------------
def _annotations_of(store: Store, uri: str, *, only: Iterable[str] | None = None) -> dict[str, Any]:
    """The annotations of ``uri`` as JSON (split ones reassembled; parts not listed twice)."""
    where = parse_uri(uri)
    try:
        infos = list(store.list_annotations(where.bucket, where.key))
    except (ObjectNotFound, MarginaliaError):
        return {}
    wanted = set(only) if only is not None else None
    out: dict[str, Any] = {}
    for info in infos:
        if ".part-" in info.name or (wanted is not None and info.name not in wanted):
            continue
        try:
            out[info.name] = large_annotations.get_json(store, where.bucket, where.key, info.name)
        except (ValueError, MarginaliaError):
            try:
                out[info.name] = store.get_annotation(where.bucket, where.key, info.name).text()
            except MarginaliaError:
                continue
    return out


def _attachments(store: Store, record: ThreadRecord, values: dict) -> dict[str, Any]:
    """Every piece of context the thread used, by annotation name on the archive object."""
    found: dict[str, Any] = {}
    if record.object_uri:
        for name, doc in _annotations_of(store, record.object_uri).items():
            found[f"object.{name}"] = {"uri": record.object_uri, "annotation": name, "document": doc}
    for i, src in enumerate(values.get("sources") or []):  # e.g. the outline's grounding sources
        uri = src.get("uri")
        if not uri:
            continue
        for name, doc in _annotations_of(store, uri).items():
            found[f"source-{i + 1}.{name}"] = {"uri": uri, "annotation": name, "document": doc}
    spec = _spec_for(record)
    if spec is not None and spec.attachments is not None:  # what the agent itself read (pages, prompts ...)
        found.update(spec.attachments(store, record, values))
    return found


def _parts_needed(doc: Any) -> int:
    size = len(json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8"))
    return 1 if size <= MAX_PAYLOAD_BYTES else 1 + -(-size // MAX_PAYLOAD_BYTES)


# --- archive ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArchiveResult:
    uri: str
    thread_id: str
    steps: int
    attachments: tuple[dict, ...]
    omitted: tuple[str, ...]


def _totals(calls: list[dict]) -> dict:
    out = {"calls": len(calls), "input_tokens": 0, "output_tokens": 0, "total_tokens": 0, "errors": 0, "latency_s": 0.0}
    for call in calls:
        for key in ("input_tokens", "output_tokens", "total_tokens"):
            out[key] += int(call.get(key) or 0)
        out["errors"] += 1 if call.get("error") else 0
        out["latency_s"] = round(out["latency_s"] + float(call.get("latency_s") or 0.0), 3)
    return out


def model_usage(calls: list[dict]) -> dict:
    """The journal's model calls, with totals overall, per node and per model."""

    def grouped(field: str) -> dict[str, dict]:
        groups: dict[str, list[dict]] = {}
        for call in calls:
            groups.setdefault(str(call.get(field) or "?"), []).append(call)
        return {name: _totals(group) for name, group in groups.items()}

    return {"calls": calls, "totals": _totals(calls), "by_node": grouped("node"), "by_model": grouped("model")}


def _story(record: ThreadRecord, steps: list[Step], values: dict, calls: list[dict], retries: list[dict]) -> dict:
    trace_id = record.trace_id or tracing.trace_id_for(record.thread_id)
    interrupts = [
        {"step": s.step, "node": t["node"], "value": i}
        for s in steps
        for t in s.tasks
        for i in t.get("interrupts") or []
    ]
    errors = [
        {"step": s.step, "node": t["node"], "error": t["error"]} for s in steps for t in s.tasks if t.get("error")
    ]
    final = {k: v for k, v in values.items() if k not in _BIG_VALUE_KEYS}
    nodes = _node_timings(steps)
    for retry in retries:
        entry = nodes.setdefault(
            str(retry.get("node") or "?"), {"runs": 0, "seconds": 0.0, "waited_s": 0.0, "errors": 0}
        )
        entry["retries"] = entry.get("retries", 0) + 1
    return {
        "format": ARCHIVE_FORMAT,
        "thread_id": record.thread_id,
        "agent": record.agent,
        "object_uri": record.object_uri,
        "status": record.status,
        "error": record.error,
        "engine": record.engine,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "archived_at": utcnow(),
        "trace_id": trace_id,
        "trace_url": tracing.trace_url(trace_id),
        "steps": [s.as_json() for s in steps],
        "nodes": nodes,
        "interrupts": interrupts,
        "decisions": values.get("iterations") or [],
        "errors": errors,
        "model_calls": model_usage(calls),
        "retries": retries,
        "annotations_written": values.get("annotations") or [],
        "final_state": _jsonable(final),
        "notes": [
            "node seconds: time between consecutive checkpoints, split evenly over the nodes that ran in "
            "parallel in that step; time spent waiting for a reviewer is under waited_s",
            "model calls and retries come from the run journal (<state>/usage/<thread_id>/, one object per "
            "call, written when the call ended): counts and ids only, no prompt text; a call cut off by a crash "
            "is missing, and a node re-run after a crash shows its calls again (their tokens were spent twice)",
            "a node that failed after all its retries shows its error under errors",
        ],
    }


def archive_thread(
    store: Store, saver: Any, thread_id: str, *, state: S3URI | str | None = None, index: ThreadIndex | None = None
) -> ArchiveResult:
    """Write the archive of ``thread_id`` (see the module docstring); returns where and what.

    ``state`` is the state location (default: the saver's, i.e. ``MARGINALIA_STATE``); the
    archive goes to ``<state>/archives/<thread_id>.json`` with its attachments as annotations.
    Nothing is written when the thread is unknown.
    """
    validate_thread_id(thread_id)
    if state is None:
        state = state_location(store)
    state = parse_uri(str(state), require_key=False)
    index = index or ThreadIndex(store, state)
    record = thread_record(store, saver, index, thread_id)
    steps, values = thread_steps(saver, record)
    if not steps:
        raise InvalidInput(f"thread {thread_id} has no checkpoints in {saver!r}: nothing to archive")
    calls, retries = journal.read_journal(store, state, thread_id)
    story = _story(record, steps, values, calls, retries)
    latest = saver.get_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    ran_by = tracing.temporal_of(latest.metadata or {}) if latest is not None else None
    if ran_by:
        story["temporal"] = ran_by  # the workflow (id, run id) that ran the thread
    found = _attachments(store, record, values)

    budget = MAX_ANNOTATIONS_PER_VERSION
    manifest, omitted, keep = [], [], {}
    for name, doc in found.items():
        need = _parts_needed(doc)
        if need > budget:
            omitted.append(name)
            continue
        budget -= need
        keep[name] = doc
        manifest.append(
            {
                "name": name,
                "uri": doc.get("uri"),
                "annotation": doc.get("annotation"),
                "parts": need - 1 if need > 1 else 1,
                "split": need > 1,
            }
        )
    story["attachments"] = manifest
    story["omitted_attachments"] = [
        {"name": n, "reason": f"the archive object's {MAX_ANNOTATIONS_PER_VERSION} annotations were used up"}
        for n in omitted
    ]

    target = archive_uri(state, thread_id)
    body = json.dumps(story, ensure_ascii=False, indent=1, default=str).encode("utf-8")
    info = store.put_object(
        target.bucket,
        target.key,
        body,
        content_type="application/json",
        metadata={"marginalia-thread": thread_id, "marginalia-trace": story["trace_id"]},
    )
    for item in manifest:  # every write conditioned on the version just written: never on a newer archive
        infos = large_annotations.put_json(
            store,
            target.bucket,
            target.key,
            item["name"],
            keep[item["name"]],
            if_match=info.etag,
            version_id=info.version_id,
        )
        item["parts"] = max(1, len(infos) - 1)
    return ArchiveResult(
        uri=str(target), thread_id=thread_id, steps=len(steps), attachments=tuple(manifest), omitted=tuple(omitted)
    )


def read_archive(store: Store, uri: str) -> dict:
    """The archive at ``uri`` with its attachments (reassembled) under ``attached``; says what is missing."""
    where = parse_uri(uri)
    try:
        data, _ = store.get_object(where.bucket, where.key)
    except ObjectNotFound:
        raise ObjectNotFound(f"no archive at {uri}: run `marginalia archive THREAD` first", uri=uri) from None
    try:
        story = json.loads(data)
    except ValueError:
        story = None
    if not isinstance(story, dict) or story.get("format") != ARCHIVE_FORMAT:
        raise InvalidInput(f"{uri} is not a Marginalia archive (no {ARCHIVE_FORMAT!r} body)")
    attached, missing = {}, []
    for item in story.get("attachments") or []:
        try:
            attached[item["name"]] = large_annotations.get_json(store, where.bucket, where.key, item["name"])
        except AnnotationNotFound:
            missing.append(item["name"])
    story["attached"] = attached
    story["missing_attachments"] = missing
    return story


def archive_run(run: Any, result: Any) -> ArchiveResult | None:
    """Archive the thread of a finished :class:`marginalia.runtime.Run` (the end-of-thread hook).

    Call it after ``run.finish()``: it archives when ``result.status`` is ``done`` or
    ``rejected`` (a thread waiting for a reviewer is not finished) and returns None otherwise.
    The run's results are already written, so a failure to archive is logged, never raised:
    ``marginalia archive THREAD`` can write it later.
    """
    import logging

    if getattr(result, "status", None) not in ("done", "rejected"):
        return None
    index = run.index
    try:
        return archive_thread(
            run.context.store, run.graph.checkpointer, run.record.thread_id, state=index.state, index=index
        )
    except MarginaliaError as exc:
        logging.getLogger(__name__).warning("thread %s finished but was not archived: %s", run.record.thread_id, exc)
        return None
