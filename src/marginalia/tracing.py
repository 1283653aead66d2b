"""Tracing of agent runs with Langfuse, linked to threads, checkpoints and annotations by trace id.

A thread may run in several processes (start, exit at the approval interrupt, resume days later
elsewhere). Deriving the trace id from the thread id, with Langfuse's own deterministic
``create_trace_id(seed=thread_id)``, keeps all of those runs in ONE trace without storing
anything: any process can recompute it. The same id is written into checkpoint metadata and every
annotation's ``provenance`` (by :mod:`marginalia.runtime` and :mod:`marginalia.nodes.provenance`),
so ``marginalia trace`` can go from an annotation to its trace.

Langfuse is on only when ``LANGFUSE_PUBLIC_KEY`` and ``LANGFUSE_SECRET_KEY`` are both set
(``LANGFUSE_BASE_URL`` names the server). Then :func:`callbacks_for` returns a LangChain
``CallbackHandler`` bound to the thread's trace id; otherwise it returns nothing, imports nothing
and logs nothing, so a run without keys costs nothing. With keys:

* one Langfuse client per process (:func:`client`), built here with :func:`mask_secrets` so no
  secret value leaves the process, and with a short export timeout (``LANGFUSE_TIMEOUT``,
  default :data:`DEFAULT_TIMEOUT_S` seconds): a dead server delays at most the final flush by that
  bound, and export errors never reach the graph (the SDK exports from a background thread);
* session, user, tags and trace name travel as run metadata (``langfuse_session_id`` ...); the
  handler fills defaults (session = thread id, tags ``agent:<name>``, user ``MARGINALIA_USER``)
  unless the caller's run metadata already carries them.

Independently of Langfuse, every run also gets a :class:`RunJournal`: a local, always-on
callback handler that records each **model call** (node, model id, token counts, latency, error
type) and each **node retry** (a task that failed and ran again under its retry policy) as one
small JSON object under ``<MARGINALIA_STATE>/usage/<thread_id>/``, written through the thread's
store when the call ends. Those objects hold counts and ids only (never prompt text, replies,
model parameters or error messages), cost one small PUT per model call, and nothing at all for
the offline engine (it makes no model calls). :func:`read_journal` reads them back, for
:mod:`marginalia.archive`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
import time
from collections.abc import Mapping
from functools import lru_cache
from typing import Any
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler

from .redact import mask_data, redact, secret_values

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "JOURNAL_DIR",
    "REDACTED",
    "RunJournal",
    "callbacks_for",
    "client",
    "enabled",
    "flush",
    "mask_otel_spans",
    "mask_secrets",
    "read_journal",
    "trace_id_for",
    "trace_metadata",
    "trace_url",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 3
REDACTED = "[REDACTED]"


# --- identity --------------------------------------------------------------------------------
@lru_cache(maxsize=1024)
def trace_id_for(thread_id: str) -> str:
    """The 32-hex trace id of ``thread_id`` (the same in every process, for every resume)."""
    from langfuse import Langfuse

    return Langfuse.create_trace_id(seed=thread_id)


def trace_url(trace_id: str, base_url: str | None = None) -> str:
    """``{LANGFUSE_BASE_URL}/trace/<id>``, or the bare id when no base URL is configured."""
    base = (base_url if base_url is not None else os.environ.get("LANGFUSE_BASE_URL") or os.environ.get("LANGFUSE_HOST") or "").strip()
    return f"{base.rstrip('/')}/trace/{trace_id}" if base else trace_id


def enabled(env: dict[str, str] | None = None) -> bool:
    """True when both Langfuse keys are set (the only case in which anything is traced)."""
    env = os.environ if env is None else env
    return bool(env.get("LANGFUSE_PUBLIC_KEY") and env.get("LANGFUSE_SECRET_KEY"))


def _jsonable(data: Any) -> Any:
    """What Langfuse would serialize, as plain JSON values, so no nested object escapes masking."""
    if data is None or isinstance(data, (str, int, float, bool)):
        return data
    from langfuse._utils.serializer import EventSerializer

    try:
        return json.loads(json.dumps(data, cls=EventSerializer))
    except (TypeError, ValueError):
        return str(data)


def mask_otel_spans(*, params: Any) -> Any:
    """Langfuse ``mask_otel_spans=`` hook: the last pass over every exported span attribute.

    :func:`mask_secrets` sees inputs, outputs and metadata; some text reaches spans another way
    (an interrupt's value is the span's ``status_message``, errors' messages likewise). This
    masks every string attribute of every span just before export, so nothing escapes.
    """
    from langfuse.types import MaskOtelSpansResult, OtelSpanPatch

    secrets = list(secret_values().values())
    patches = {}
    for identifier, span in params.spans.items():
        changed: dict[str, Any] = {}
        for name, value in span.attributes.items():
            if isinstance(value, str):
                masked: Any = redact(value, secrets, mask=REDACTED)
            elif isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
                masked = [redact(v, secrets, mask=REDACTED) for v in value]
                value = list(value)
            else:
                continue
            if masked != value:
                changed[name] = masked
        if changed:
            patches[identifier] = OtelSpanPatch(set_attributes=changed)
    return MaskOtelSpansResult(span_patches=patches)


def mask_secrets(*, data: Any, **_: Any) -> Any:
    """Langfuse ``mask=`` function: ``data`` with every secret replaced by ``[REDACTED]``.

    Redacts the values of secret-named environment variables wherever they appear, values of
    secret-named fields (``password``, ``api_key``, ``*_token`` ...), and secret-looking text
    (AWS key ids, Langfuse keys, bearer tokens, ``password=...``). Reads the environment at each
    call, so keys set after the client was built are covered too.
    """
    return mask_data(_jsonable(data), mask=REDACTED)


# --- client and handler ----------------------------------------------------------------------
_CLIENT: Any = None


def client():
    """The process's Langfuse client (built once, with :func:`mask_secrets`); None without keys.

    Langfuse keeps one client per public key per process and the first construction fixes its
    settings, so every Marginalia handler goes through this one. Masking runs twice: on the data
    (:func:`mask_secrets`) and on the final span attributes (:func:`mask_otel_spans`).
    """
    global _CLIENT
    if not enabled():
        return None
    if _CLIENT is None:
        from langfuse import Langfuse

        timeout = int(os.environ.get("LANGFUSE_TIMEOUT") or DEFAULT_TIMEOUT_S)
        _CLIENT = Langfuse(
            public_key=os.environ["LANGFUSE_PUBLIC_KEY"],
            secret_key=os.environ["LANGFUSE_SECRET_KEY"],
            timeout=timeout,
            mask=mask_secrets,
            mask_otel_spans=mask_otel_spans,
        )
    return _CLIENT


def flush() -> None:
    """Send buffered spans now (bounded by the client's timeout; never raises)."""
    if _CLIENT is None:
        return
    try:
        _CLIENT.flush()
    except Exception as exc:  # an export problem must never fail a run
        logger.debug("langfuse flush failed: %s", exc)


def trace_metadata(thread_id: str, agent: str, *, user_id: str | None = None, tags: list[str] | None = None) -> dict:
    """The ``langfuse_*`` run metadata of a run of ``agent`` on ``thread_id``.

    Session = the thread (every run of a thread, one session), trace name = the agent, tags
    ``agent:<name>`` plus ``tags``, user = ``user_id`` or ``MARGINALIA_USER`` when set.
    """
    meta: dict[str, Any] = {
        "langfuse_session_id": thread_id,
        "langfuse_trace_name": agent,
        "langfuse_tags": [f"agent:{agent}", *(tags or [])],
    }
    user = user_id or os.environ.get("MARGINALIA_USER")
    if user:
        meta["langfuse_user_id"] = user
    return meta


@lru_cache(maxsize=1)
def _handler_class():
    from langfuse.langchain import CallbackHandler

    class ThreadCallbackHandler(CallbackHandler):
        """Langfuse's handler with the thread's trace id and default trace attributes.

        Defaults from :func:`trace_metadata` are put under the root run's metadata; keys the
        caller set in the run config's metadata win, so session/user/tags pass through.
        """

        def __init__(self, *, public_key: str, thread_id: str, agent: str):
            super().__init__(public_key=public_key, trace_context={"trace_id": trace_id_for(thread_id)})
            self.thread_id = thread_id
            self.defaults = trace_metadata(thread_id, agent)

        def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs):
            if parent_run_id is None:
                metadata = {**self.defaults, **(metadata or {})}
            return super().on_chain_start(
                serialized, inputs, run_id=run_id, parent_run_id=parent_run_id, tags=tags, metadata=metadata, **kwargs
            )

    return ThreadCallbackHandler




# --- the run journal: model calls and retries, next to the checkpoints ------------------------
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
    taken from the node's LangGraph runtime context (the same :class:`~marginalia.runtime.AgentContext`
    the nodes use) or the environment, as :func:`marginalia.runtime.rails` does, at the first
    write. A write that fails is logged and dropped: the journal never fails a run.
    """

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
            from .runtime import resolve_store, state_location
            from .uri import parse_uri

            try:
                store = self._store or resolve_store(_context_field(context, "store"))
                state = parse_uri(str(self._state), require_key=False) if self._state else state_location(store)
            except Exception as exc:  # a journal must never fail the run
                logger.warning("thread %s: no store for the run journal (%s); model calls are not recorded",
                               self.thread_id, type(exc).__name__)
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
        now = dt.datetime.now(dt.timezone.utc)
        task_id = ns.rsplit(":", 1)[-1]
        record = {
            "kind": "retry", "thread_id": self.thread_id, "agent": self.agent, "node": meta.get("langgraph_node"),
            "step": meta.get("langgraph_step"), "task_id": task_id, "attempt": attempt,
            "failed_error": failure["error"], "failed_at": failure["at"], "retried_at": _iso(now),
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
                self._failed[root["ns"]] = {"error": _error_kind(error), "t": time.monotonic(),
                                            "at": _iso(dt.datetime.now(dt.timezone.utc))}

    # --- model calls -------------------------------------------------------------------------
    def _begin(self, run_id: UUID, metadata: Mapping | None, invocation_params: Any) -> None:
        meta = metadata or {}
        ns = meta.get("langgraph_checkpoint_ns") or ""
        context = _node_context()
        started = dt.datetime.now(dt.timezone.utc)
        record = {
            "record": {
                "kind": "model_call", "thread_id": self.thread_id, "agent": self.agent, "run_id": str(run_id),
                "node": meta.get("langgraph_node"), "step": meta.get("langgraph_step"),
                "task_id": ns.rsplit(":", 1)[-1] or None, "attempt": 1,
                "model": _model_id(meta, invocation_params, context), "provider": meta.get("ls_provider"),
                "started_at": _iso(started),
            },
            "stamp": _stamp(started), "t0": time.perf_counter(), "context": context,
        }
        with self._lock:
            record["record"]["attempt"] = self._attempts.get(ns, 1)  # > 1: a retry of the node
            self._calls[run_id] = record

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs):
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
        counts = _token_counts(kwargs.get("response")) if kwargs.get("response") is not None else dict.fromkeys(_TOKEN_KEYS, 0)
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


def callbacks_for(thread_id: str, agent: str, *, store: Any = None, state: Any = None) -> list:
    """LangChain callbacks for a run of ``agent`` on ``thread_id``.

    Always the :class:`RunJournal` (local, cheap; ``store``/``state`` say where it writes, else
    the run's context or the environment); plus Langfuse's handler when both keys are set.
    """
    callbacks: list = [RunJournal(thread_id, agent, store=store, state=state)]
    if client() is not None:
        callbacks.append(_handler_class()(public_key=os.environ["LANGFUSE_PUBLIC_KEY"], thread_id=thread_id, agent=agent))
    return callbacks
