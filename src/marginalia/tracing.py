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
* session, user, tags and trace name travel as run metadata (``langfuse_session_id`` ...), which
  Langfuse's own ``CallbackHandler`` reads from the root run: the run config carries
  :func:`run_metadata` (session = thread id, tags ``agent:<name>``, user ``MARGINALIA_USER``)
  under any metadata the caller set, so the caller's keys win.

Independently of Langfuse, :func:`callbacks_for` always adds the run journal
(:class:`marginalia.journal.RunJournal`: model calls and node retries, next to the checkpoints).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from pydantic import TypeAdapter

from .journal import RunJournal
from .redact import mask_data, redact, secret_values
from .settings import current

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "REDACTED",
    "callbacks_for",
    "client",
    "enabled",
    "flush",
    "mask_otel_spans",
    "mask_secrets",
    "run_metadata",
    "trace_id_for",
    "trace_metadata",
    "trace_url",
]

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 3
REDACTED = "[REDACTED]"
_ANY: TypeAdapter[Any] = TypeAdapter(Any)


# --- identity --------------------------------------------------------------------------------
@lru_cache(maxsize=1024)
def trace_id_for(thread_id: str) -> str:
    """The 32-hex trace id of ``thread_id`` (the same in every process, for every resume)."""
    from langfuse import Langfuse

    return Langfuse.create_trace_id(seed=thread_id)


def trace_url(trace_id: str, base_url: str | None = None) -> str:
    """``{LANGFUSE_BASE_URL}/trace/<id>``, or the bare id when no base URL is configured."""
    base = (
        base_url
        if base_url is not None
        else os.environ.get("LANGFUSE_BASE_URL") or os.environ.get("LANGFUSE_HOST") or ""
    ).strip()
    return f"{base.rstrip('/')}/trace/{trace_id}" if base else trace_id


def enabled(env: Mapping[str, str] | None = None) -> bool:
    """True when both Langfuse keys are set (the only case in which anything is traced)."""
    env = os.environ if env is None else env
    return bool(env.get("LANGFUSE_PUBLIC_KEY") and env.get("LANGFUSE_SECRET_KEY"))


def _jsonable(data: Any) -> Any:
    """``data`` as plain JSON values (models, dataclasses, dates, bytes: what Langfuse would export),
    so no nested object escapes masking; whatever has no JSON form becomes its ``str``."""
    if data is None or isinstance(data, (str, int, float, bool)):
        return data
    try:
        return _ANY.dump_python(data, mode="json", fallback=str)
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
        _one_export_warning()
    return _CLIENT


#: The OpenTelemetry exporter's loggers: with the server down they print a line per retry and per batch.
_EXPORT_LOGGERS = ("opentelemetry.exporter.otlp.proto.http.trace_exporter", "opentelemetry.exporter.otlp.common.http")


class _OneExportWarning(logging.Filter):
    """Turns the exporter's retry and failure messages into one warning line per process."""

    def __init__(self) -> None:
        super().__init__()
        self.said = False

    def filter(self, record: logging.LogRecord) -> bool:
        if self.said or record.levelno < logging.WARNING:
            return False
        self.said = True
        where = os.environ.get("LANGFUSE_BASE_URL") or os.environ.get("LANGFUSE_HOST") or "Langfuse"
        record.msg, record.args = (
            "warning: traces not exported: %s did not take them (at most LANGFUSE_TIMEOUT s spent); the run is not affected",
            (where,),
        )
        record.levelno, record.levelname, record.exc_info, record.exc_text = logging.WARNING, "WARNING", None, None
        return True


def _one_export_warning() -> None:
    quiet = _OneExportWarning()
    for name in _EXPORT_LOGGERS:
        logging.getLogger(name).addFilter(quiet)


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
    user = user_id or current().user
    if user:
        meta["langfuse_user_id"] = user
    return meta


def run_metadata(thread_id: str, agent: str) -> dict:
    """What a run's config metadata adds for Langfuse: :func:`trace_metadata` when tracing is on
    (Langfuse's ``CallbackHandler`` reads those keys from the root run), else nothing."""
    return trace_metadata(thread_id, agent) if enabled() else {}


def callbacks_for(thread_id: str, agent: str, *, store: Any = None, state: Any = None) -> list:
    """LangChain callbacks for a run of ``agent`` on ``thread_id``.

    Always the :class:`RunJournal` (local, cheap; ``store``/``state`` say where it writes, else
    the run's context or the environment); plus Langfuse's handler when both keys are set.
    """
    callbacks: list = [RunJournal(thread_id, agent, store=store, state=state)]
    if client() is not None:
        from langfuse.langchain import CallbackHandler

        callbacks.append(
            CallbackHandler(
                public_key=os.environ["LANGFUSE_PUBLIC_KEY"], trace_context={"trace_id": trace_id_for(thread_id)}
            )
        )
    return callbacks


#: run config metadata keys a Temporal activity sets (flat: checkpoint metadata keeps only scalars)
TEMPORAL_KEYS = {"temporal_workflow_id": "workflow_id", "temporal_run_id": "run_id", "temporal_namespace": "namespace"}


def temporal_of(metadata: dict) -> dict | None:
    """``{workflow_id, run_id, namespace}`` of the Temporal run in a config's or checkpoint's metadata."""
    found = {name: metadata[key] for key, name in TEMPORAL_KEYS.items() if metadata.get(key)}
    return found or None
