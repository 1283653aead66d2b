"""The agent registry: one :class:`AgentSpec` per agent, declared in the agent's own module.

Everything that differs between agents is in its spec — the graph builder, the input check run
before anything is written, the annotations it writes, what ``batch`` runs it on, its demo step,
how the CLI shows its proposal and results, and what its trace archive attaches. The run driver
(:mod:`marginalia.runtime`), ``batch``, ``demo``, the archive and the LangGraph Studio factories
(:mod:`marginalia.studio`) read the registry instead of naming agents.

Adding an agent = one module that builds its graph and calls :func:`register_agent`, plus its
module name in :data:`BUILTIN_AGENT_MODULES` (or, for an agent outside the package, an import of
that module before use). Presentation hooks (``render``, ``result_lines``, ``demo``, ``cli``) are
``"module:attribute"`` strings so an agent module never imports the CLI layer above it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import ConfigurationError

if TYPE_CHECKING:
    from .storage.base import Store

__all__ = [
    "BUILTIN_AGENT_MODULES",
    "AgentSpec",
    "BatchSpec",
    "InputCheck",
    "agent_names",
    "all_agents",
    "batch_agents",
    "get_agent",
    "load_builtin_agents",
    "load_hook",
    "register_agent",
    "unregister_agent",
]

#: Modules whose import registers the agents that ship with Marginalia (in CLI/demo order).
BUILTIN_AGENT_MODULES: tuple[str, ...] = (
    "marginalia.graph.minutes",
    "marginalia.graph.pdf_summary",
    "marginalia.graph.ppt_outline",
)

#: ``check(store, info, object_uri=..., inputs=..., thread_id=...)`` refuses bad input before
#: anything is written (``info`` is the object's head when the graph reads the object, else None);
#: raise a :class:`~marginalia.errors.MarginaliaError` to refuse.
InputCheck = Callable[..., None]


@dataclass(frozen=True)
class BatchSpec:
    """How ``marginalia batch`` runs an agent over a prefix."""

    name: str  # the batch's name for it (``--agent``)
    annotation: str  # present on an object = already done
    suffixes: Callable[[], tuple[str, ...]]  # objects it takes when --suffix is not given
    inputs: Callable[[], dict]  # the agent's own part of the initial state


@dataclass(frozen=True)
class AgentSpec:
    """An agent as the rest of Marginalia knows it.

    ``build(checkpointer=None)`` returns the compiled graph. ``document`` is the pydantic model of
    the document a reviewer approves (edits are validated against it). ``module`` is imported to
    register the agent again in a process that only knows a thread id.
    """

    name: str
    build: Callable[..., Any]
    document: type
    module: str
    description: str = ""
    #: annotation names the agent writes on its object when a thread is approved
    annotations: tuple[str, ...] = ()
    check_input: InputCheck | None = None
    batch: BatchSpec | None = None
    #: ``attachments(store, record, values)`` -> extra context for the thread's trace archive, by
    #: attachment name (see :mod:`marginalia.archive`)
    attachments: Callable[[Store, Any, dict], dict[str, Any]] | None = None
    #: ``"module:function"``: ``function(proposal) -> rich renderable`` for the CLI (JSON otherwise)
    render: str | None = None
    #: ``"module:function"``: ``function(result) -> list[str]`` printed under a finished thread
    result_lines: str | None = None
    #: ``"module:attribute"``: the agent's step of ``marginalia demo`` (a ``DemoStep``)
    demo: str | None = None
    #: module whose import adds the agent's own CLI command (``minutes``, ``summarize`` ...)
    cli: str | None = None
    studio: bool = True  # exported to ``langgraph dev`` through :mod:`marginalia.studio`


_AGENTS: dict[str, AgentSpec] = {}


def register_agent(name: str, build: Callable[..., Any], *, document: type, **declared: Any) -> AgentSpec:
    """Register ``build`` as agent ``name`` (call it at import of the agent's module)."""
    spec = AgentSpec(name=name, build=build, document=document, module=build.__module__, **declared)
    _AGENTS[name] = spec
    return spec


def unregister_agent(name: str) -> None:
    """Forget agent ``name`` (tests that register a throwaway agent)."""
    _AGENTS.pop(name, None)


def load_builtin_agents(modules: Iterable[str] = BUILTIN_AGENT_MODULES) -> None:
    for module in modules:
        importlib.import_module(module)


def all_agents() -> list[AgentSpec]:
    """Every agent: the built-in ones (imported on first call) and any registered since."""
    load_builtin_agents()
    return list(_AGENTS.values())


def agent_names() -> list[str]:
    return sorted(_AGENTS)


def get_agent(name: str, module: str | None = None) -> AgentSpec:
    """The registered agent ``name``, importing ``module`` (or the built-in agents) first when needed."""
    if name not in _AGENTS and module:
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    if name not in _AGENTS:
        load_builtin_agents()
    if name not in _AGENTS:
        raise ConfigurationError(f"no agent named {name!r} is registered (known: {', '.join(agent_names()) or 'none'})")
    return _AGENTS[name]


def load_hook(ref: str) -> Any:
    """The object a ``"module:attribute"`` hook names."""
    module, _, attribute = ref.partition(":")
    return getattr(importlib.import_module(module), attribute)


def batch_agents() -> dict[str, AgentSpec]:
    """Agents ``marginalia batch`` can run, by their batch name."""
    return {spec.batch.name: spec for spec in all_agents() if spec.batch is not None}
