"""What a node works with: the run's context (store, engine, AWS clients) and where state lives.

This module sits below the nodes and knows nothing of graphs or runs:

* :class:`AgentContext` is LangGraph's runtime context of every agent graph
  (``context_schema=AgentContext``). Its fields are spec strings (``local:./dir``, ``s3``,
  ``offline``, ``bedrock:<model-id>``) so LangGraph Studio can describe and fill it as a form
  (``graph.get_context_jsonschema()``); a Python caller may put live objects there instead (a
  :class:`~marginalia.storage.base.Store`, an engine, boto3 clients) — those are accepted but left
  out of the JSON schema. Context is never checkpointed: a resumed run gets a fresh one.
* :func:`rails` resolves a node's context into a :class:`Rails` (live store, engine, clients),
  falling back to the environment (``MARGINALIA_STORE``/``MARGINALIA_ENGINE``) when no context was
  given, as under ``langgraph dev``.
* :func:`state_location` is ``MARGINALIA_STATE`` (checkpoints, thread index, journal, archives).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

from pydantic import ConfigDict
from pydantic.json_schema import SkipJsonSchema

from .config import open_store
from .engines.base import Engine
from .settings import DEFAULT_LOCAL_STATE, current
from .storage.base import Store
from .uri import S3URI, parse_uri

__all__ = [
    "AgentContext",
    "Rails",
    "engine_spec_of",
    "engine_turn",
    "rails",
    "rebuildable_engine",
    "resolve_engine",
    "resolve_store",
    "state_location",
]


@dataclass
class AgentContext:
    """LangGraph runtime context of every agent graph (``context_schema=AgentContext``).

    Each field is a spec string, or None for the environment's default, so the context can come
    from the LangGraph server (JSON) or not at all; Python callers may pass live objects, which
    the JSON schema leaves out (``SkipJsonSchema``).
    """

    __pydantic_config__ = ConfigDict(arbitrary_types_allowed=True)

    #: ``local:<dir>`` or ``s3`` (default ``MARGINALIA_STORE``).
    store: str | SkipJsonSchema[Store] | None = None
    #: ``offline`` or ``bedrock:<model-id>`` (default ``MARGINALIA_ENGINE``).
    engine: str | SkipJsonSchema[Engine] | SkipJsonSchema[Any] | None = None
    #: boto3 clients by service name (e.g. ``{"transcribe": client}``) for nodes that call AWS
    #: services other than S3; None means clients from the environment.
    clients: SkipJsonSchema[dict[str, Any] | None] = None


@dataclass(frozen=True)
class Rails:
    """What a node works with, resolved from the context and the environment."""

    store: Store
    engine: Engine
    clients: Mapping[str, Any] = field(default_factory=dict)


_DEFAULTS: dict[tuple[str, str], Any] = {}
_DEFAULTS_LOCK = threading.Lock()


def _default(kind: str, spec: str, factory: Callable[[str], Any]) -> Any:
    """One store/engine per spec and process (a node runs many times; opening is not free)."""
    key = (kind, spec)
    with _DEFAULTS_LOCK:
        if key not in _DEFAULTS:
            _DEFAULTS[key] = factory(spec)
        return _DEFAULTS[key]


def _make_engine(spec: Any) -> Engine:
    from .engines import make_engine  # the engines package pulls in the offline text stack: on demand

    return make_engine(spec)


def resolve_store(store: Store | str | None) -> Store:
    """A Store from a Store, a spec string or None (``MARGINALIA_STORE``)."""
    if isinstance(store, Store):
        return store
    spec = store or current().store
    return _default("store", spec, open_store)


def resolve_engine(engine: Any) -> Engine:
    """An Engine from an Engine, a LangChain chat model, a spec string or None (environment)."""
    if engine is None or isinstance(engine, str):
        spec = engine or current().engine
        return _default("engine", spec, _make_engine)
    return _make_engine(engine)


def rails(runtime: Any) -> Rails:
    """The store and engine for a node, from ``runtime.context`` or the environment."""
    ctx = getattr(runtime, "context", None)
    if isinstance(ctx, Mapping):  # the LangGraph server passes context as JSON
        ctx = AgentContext(**{k: ctx.get(k) for k in ("store", "engine")})
    ctx = ctx or AgentContext()
    return Rails(store=resolve_store(ctx.store), engine=resolve_engine(ctx.engine), clients=ctx.clients or {})


_CPU_ENGINE_LOCK = threading.RLock()  # re-entrant: a batch worker's turn covers the node's own


def engine_turn(engine: Engine) -> AbstractContextManager:
    """Hold this around an engine call made from parallel threads (``Send`` branches, batch workers).

    Model-calling engines run concurrently (they wait on the network). The offline engine
    computes in Python: under the GIL parallel calls gain nothing on CPU and only hold several
    large texts in memory at once, so its calls take turns, process-wide. (Its text stack is
    thread-safe — per-thread segmenters and summarizers — so this is about cost, not
    correctness; it also makes the order of the calls predictable, which notebook 05 relies on
    to count the chunks read before a kill.)
    """
    return _CPU_ENGINE_LOCK if getattr(engine, "name", None) == "offline" else nullcontext()


def engine_spec_of(engine: Engine | str | None) -> str:
    """The spec that rebuilds ``engine`` in another process (``offline``, ``bedrock:<id>``...)."""
    if engine is None:
        return current().engine
    if isinstance(engine, str):
        return engine
    if engine.name == "offline":
        return "offline"
    return f"{engine.name}:{engine.model}" if engine.model else engine.name


def rebuildable_engine(spec: str | None) -> bool:
    """Whether ``spec`` rebuilds its engine in another process (a chat model object does not)."""
    return bool(spec) and (spec == "offline" or str(spec).startswith("bedrock:"))


def state_location(store: Store) -> S3URI:
    """``MARGINALIA_STATE``; on the local store its bucket is created on first use."""
    settings = current()
    if settings.state:
        state = parse_uri(settings.state, require_key=False)
    elif store.kind == "local":
        state = parse_uri(DEFAULT_LOCAL_STATE, require_key=False)
    else:
        state = settings.state_uri()  # raises the ConfigurationError that says what to set
    if store.kind == "local":
        store.create_bucket(state.bucket, exist_ok=True)
    return state
