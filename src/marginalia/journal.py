"""The run journal: every model call and node retry of a thread, next to its checkpoints.

Every run gets a :class:`RunJournal` (from :func:`marginalia.tracing.callbacks_for`): a local,
always-on LangChain callback handler that records each **model call** (node, model id, token
counts, latency, error type) and each **node retry** (a task that failed and ran again under its
retry policy) as one small JSON object under ``<MARGINALIA_STATE>/usage/<thread_id>/``, written
through the thread's store when the call ends. Those objects hold counts and ids only (never
prompt text, replies, model parameters or error messages), cost one small PUT per model call,
and nothing at all for the offline engine (it makes no model calls). :func:`read_journal` reads
them back, for :mod:`marginalia.archive`. Unlike Langfuse it needs no server and no keys.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Mapping
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

logger = logging.getLogger(__name__)

#: Folder of the journal under the state location: ``<state>/usage/<thread_id>/<name>.json``.
JOURNAL_DIR = "usage"
_TOKEN_KEYS = ("input_tokens", "output_tokens", "total_tokens")


def _stamp(when: dt.datetime) -> str:
    """A UTC time that sorts as text (journal object names start with it)."""
    return when.strftime("%Y%m%dT%H%M%S.%fZ")


def _iso(when: dt.datetime) -> str:
    return when.isoformat(timespec="milliseconds")


def _error_kind(error: BaseException) -> str:
    """The error's class, and its service code or HTTP status when it has one: never its message
    (a message may quote the prompt or a request)."""
    name = type(error).__name__
    response = getattr(error, "response", None)
    code = (response.get("Error") or {}).get("Code") if isinstance(response, Mapping) else None
    status = getattr(error, "status_code", None)
    if code:
        return f"{name}: {code}"
    if isinstance(status, int):
        return f"{name}: HTTP {status}"
    return name


def _token_counts(response: Any) -> dict[str, int]:
    """Input/output/total tokens of an ``LLMResult``: the messages' ``usage_metadata`` (LangChain's
    standard), else the provider's ``llm_output`` usage (``prompt_tokens``/``completion_tokens``)."""
    counts = dict.fromkeys(_TOKEN_KEYS, 0)
    found = False
    for generations in getattr(response, "generations", None) or []:
        for generation in generations:
            usage = getattr(getattr(generation, "message", None), "usage_metadata", None)
            if usage:
                found = True
                for key in _TOKEN_KEYS:
                    counts[key] += int(usage.get(key) or 0)
    if not found:
        output = getattr(response, "llm_output", None) or {}
        usage = output.get("usage") or output.get("token_usage") or {}
        if isinstance(usage, Mapping):
            counts["input_tokens"] = int(usage.get("input_tokens") or usage.get("prompt_tokens") or 0)
            counts["output_tokens"] = int(usage.get("output_tokens") or usage.get("completion_tokens") or 0)
            counts["total_tokens"] = int(usage.get("total_tokens") or 0)
    if not counts["total_tokens"]:
        counts["total_tokens"] = counts["input_tokens"] + counts["output_tokens"]
    return counts


def _node_context() -> Any:
    """The LangGraph runtime context of the node a callback fires in (None outside a node)."""
    try:
        from langgraph.runtime import get_runtime

        return getattr(get_runtime(), "context", None)
    except (RuntimeError, KeyError, AttributeError):
        return None


def _context_field(context: Any, name: str) -> Any:
    if isinstance(context, Mapping):  # the LangGraph server passes context as JSON
        return context.get(name)
    return getattr(context, name, None)


def _model_id(metadata: Mapping, invocation_params: Any, context: Any) -> str:
    """The model's id, from LangChain's ``ls_model_name``, the call's parameters (only the id is
    read from them: they may hold credentials), or the run's engine; the provider as a last resort."""
    if isinstance(metadata.get("ls_model_name"), str) and metadata["ls_model_name"]:
        return metadata["ls_model_name"]
    if isinstance(invocation_params, Mapping):
        for key in ("model_id", "model", "model_name"):
            value = invocation_params.get(key)
            if isinstance(value, str) and value:
                return value
    engine_model = getattr(_context_field(context, "engine"), "model", None)
    if isinstance(engine_model, str) and engine_model:
        return engine_model
    return str(metadata.get("ls_provider") or "unknown")


class RunJournal(BaseCallbackHandler):
    """Records one run's model calls and node retries under ``<state>/usage/<thread_id>/``.

    Why a callback: every model call of every node goes through LangChain's callbacks with the
    node's name and step in its metadata, whichever engine method made it, so nothing in the
    engines or nodes has to report anything; and the calls are recorded as they end, so a thread
    that stops at an interrupt, or dies, keeps the record of the calls it paid for.

    * A **model call** object (``<ts>-call-<run_id>.json``) is written when the call ends or
      fails: node, step, task id, attempt, model id, provider, input/output/total tokens,
      start time, latency, and the error's class/code if it failed.
    * A **retry** object (``<ts>-retry-<task_id>-<attempt>.json``) is written when a task whose
      previous attempt failed (``on_chain_error`` of the task's root run) starts again in the
      same step: LangGraph's retry policy re-runs the same task id, so the task's checkpoint
      namespace identifies it. Interrupts (``GraphBubbleUp``) are not failures.

    Where: the store and state of the run. ``store``/``state`` may be given; otherwise they are
    taken from the node's LangGraph runtime context (the same :class:`~marginalia.context.AgentContext`
    the nodes use) or the environment, as :func:`marginalia.context.rails` does, at the first
    write. A write that fails is logged and dropped: the journal never fails a run.
    """

    #: Called on the event loop under ``graph.astream``, not through the loop's default executor:
    #: that executor runs the step's sync nodes (one task per chunk of a fan-out), so a chunk's
    #: ``on_chain_end`` queued there behind every chunk not yet started, and with it the chunk's
    #: end and its checkpoint save (issue 17). The chain callbacks only update a few dicts; a
    #: retry record (one small PUT) is the only write they make. Sync calls are inline anyway.
    run_inline = True

    def __init__(self, thread_id: str, agent: str, *, store: Any = None, state: Any = None):
        self.thread_id = thread_id
        self.agent = agent
        self._store = store
        self._state = state
        self._lock = threading.Lock()
        self._calls: dict[UUID, dict] = {}  # model calls in flight
        self._task_of: dict[UUID, str] = {}  # chain runs in flight -> their task's checkpoint ns
        self._roots: dict[UUID, dict] = {}  # task root runs in flight -> node, step, ns
        self._attempts: dict[str, int] = {}  # task ns -> attempts started
        self._failed: dict[str, dict] = {}  # task ns -> its last failed attempt, until it runs again
        self.written = 0  # objects written by this handler (for tests and logs)

    # --- where -----------------------------------------------------------------------------
    def _location(self, context: Any) -> tuple[Any, Any] | None:
        if self._store is None or self._state is None:
            from .context import resolve_store, state_location
            from .uri import parse_uri

            try:
                store = self._store or resolve_store(_context_field(context, "store"))
                state = parse_uri(str(self._state), require_key=False) if self._state else state_location(store)
            except Exception as exc:  # a journal must never fail the run
                logger.warning(
                    "thread %s: no store for the run journal (%s); model calls are not recorded",
                    self.thread_id,
                    type(exc).__name__,
                )
                return None
            with self._lock:
                self._store, self._state = self._store or store, self._state or state
        return self._store, self._state

    def _write(self, name: str, record: dict, context: Any) -> None:
        where = self._location(context)
        if where is None:
            return
        store, state = where
        try:
            from .uri import parse_uri

            target = parse_uri(str(state), require_key=False).join(JOURNAL_DIR, self.thread_id, name)
            body = json.dumps(record, separators=(",", ":"), sort_keys=True).encode("utf-8")
            store.put_object(target.bucket, target.key, body, content_type="application/json")
            with self._lock:
                self.written += 1
        except Exception as exc:  # a journal must never fail the run
            logger.warning("thread %s: run journal entry %s not written: %s", self.thread_id, name, type(exc).__name__)

    # --- retries -----------------------------------------------------------------------------
    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs):
        meta = metadata or {}
        ns = meta.get("langgraph_checkpoint_ns")
        if not ns:
            return
        with self._lock:
            inner = self._task_of.get(parent_run_id) == ns  # a runnable inside the task, not the task
            self._task_of[run_id] = ns
            if inner:
                return
            attempt = self._attempts[ns] = self._attempts.get(ns, 0) + 1
            self._roots[run_id] = {"node": meta.get("langgraph_node"), "step": meta.get("langgraph_step"), "ns": ns}
            failure = self._failed.pop(ns, None)
        if failure is None:
            return
        now = dt.datetime.now(dt.UTC)
        task_id = ns.rsplit(":", 1)[-1]
        record = {
            "kind": "retry",
            "thread_id": self.thread_id,
            "agent": self.agent,
            "node": meta.get("langgraph_node"),
            "step": meta.get("langgraph_step"),
            "task_id": task_id,
            "attempt": attempt,
            "failed_error": failure["error"],
            "failed_at": failure["at"],
            "retried_at": _iso(now),
            "waited_s": round(time.monotonic() - failure["t"], 3),
        }
        self._write(f"{_stamp(now)}-retry-{task_id}-{attempt}.json", record, _node_context())

    def on_chain_end(self, outputs, *, run_id, **kwargs):
        with self._lock:
            self._task_of.pop(run_id, None)
            self._roots.pop(run_id, None)

    def on_chain_error(self, error, *, run_id, **kwargs):
        from langgraph.errors import GraphBubbleUp

        with self._lock:
            self._task_of.pop(run_id, None)
            root = self._roots.pop(run_id, None)
            if root is not None and not isinstance(error, GraphBubbleUp):
                self._failed[root["ns"]] = {
                    "error": _error_kind(error),
                    "t": time.monotonic(),
                    "at": _iso(dt.datetime.now(dt.UTC)),
                }

    # --- model calls -------------------------------------------------------------------------
    def _begin(self, run_id: UUID, metadata: Mapping | None, invocation_params: Any) -> None:
        meta = metadata or {}
        ns = meta.get("langgraph_checkpoint_ns") or ""
        context = _node_context()
        started = dt.datetime.now(dt.UTC)
        record = {
            "record": {
                "kind": "model_call",
                "thread_id": self.thread_id,
                "agent": self.agent,
                "run_id": str(run_id),
                "node": meta.get("langgraph_node"),
                "step": meta.get("langgraph_step"),
                "task_id": ns.rsplit(":", 1)[-1] or None,
                "attempt": 1,
                "model": _model_id(meta, invocation_params, context),
                "provider": meta.get("ls_provider"),
                "started_at": _iso(started),
            },
            "stamp": _stamp(started),
            "t0": time.perf_counter(),
            "context": context,
        }
        with self._lock:
            record["record"]["attempt"] = self._attempts.get(ns, 1)  # > 1: a retry of the node
            self._calls[run_id] = record

    def on_chat_model_start(
        self, serialized, messages, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs
    ):
        self._begin(run_id, metadata, kwargs.get("invocation_params"))

    def on_llm_start(self, serialized, prompts, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs):
        self._begin(run_id, metadata, kwargs.get("invocation_params"))

    def _end(self, run_id: UUID, counts: dict[str, int], error: str | None) -> None:
        with self._lock:
            call = self._calls.pop(run_id, None)
        if call is None:
            return
        record = {**call["record"], **counts, "latency_s": round(time.perf_counter() - call["t0"], 3), "error": error}
        self._write(f"{call['stamp']}-call-{run_id}.json", record, call["context"])

    def on_llm_end(self, response, *, run_id, **kwargs):
        self._end(run_id, _token_counts(response), None)

    def on_llm_error(self, error, *, run_id, **kwargs):
        counts = (
            _token_counts(kwargs.get("response"))
            if kwargs.get("response") is not None
            else dict.fromkeys(_TOKEN_KEYS, 0)
        )
        self._end(run_id, counts, _error_kind(error))


def read_journal(store: Any, state: Any, thread_id: str) -> tuple[list[dict], list[dict]]:
    """The model calls and retries :class:`RunJournal` recorded for ``thread_id``, oldest first.

    An object that cannot be read or parsed is skipped with a warning (the rest still count).
    """
    from .errors import MarginaliaError
    from .uri import parse_uri

    prefix = parse_uri(str(state), require_key=False).join(JOURNAL_DIR, thread_id)
    calls: list[dict] = []
    retries: list[dict] = []
    try:
        infos = sorted(store.list_objects(prefix.bucket, prefix.key + "/"), key=lambda i: i.key)
    except MarginaliaError:
        return calls, retries
    for info in infos:
        try:
            data, _ = store.get_object(prefix.bucket, info.key)
            record = json.loads(data)
        except (MarginaliaError, ValueError) as exc:
            logger.warning("run journal entry s3://%s/%s skipped: %s", prefix.bucket, info.key, exc)
            continue
        kind = record.get("kind") if isinstance(record, dict) else None
        if kind == "model_call":
            calls.append(record)
        elif kind == "retry":
            retries.append(record)
    return calls, retries
