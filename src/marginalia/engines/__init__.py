"""Engines: what the agents ask of a model, and :func:`make_engine` to pick one.

``make_engine()`` reads ``MARGINALIA_ENGINE`` (default ``offline``: deterministic, no network).
``bedrock:<model-id>`` builds a :class:`~marginalia.engines.chat.ChatModelEngine` over
``langchain_aws.ChatBedrockConverse`` in ``AWS_REGION``/``AWS_DEFAULT_REGION``; any LangChain
chat model (e.g. from ``init_chat_model``) can be passed directly. Heavy imports (langchain-aws,
the offline NLP stack) happen only for the engine asked for.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from ..errors import ConfigurationError
from ..settings import Settings, current
from .base import Engine

if TYPE_CHECKING:
    from langchain_core.language_models import BaseChatModel

__all__ = ["Engine", "make_engine"]

_FORMS = (
    "'offline' (no model, deterministic), 'bedrock:<model-id>' (e.g. "
    "'bedrock:anthropic.claude-3-5-haiku-20241022-v1:0' or an inference profile id such as "
    "'bedrock:us.amazon.nova-lite-v1:0'), a LangChain chat model object, or an Engine object"
)


def _bedrock(model_id: str, env: Any) -> Engine:
    if not model_id:
        raise ConfigurationError(f"engine 'bedrock:' names no model id; valid forms: {_FORMS}")
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if not region:
        raise ConfigurationError(
            f"engine 'bedrock:{model_id}' needs an AWS region: set AWS_REGION (or AWS_DEFAULT_REGION), "
            "e.g. AWS_REGION=us-east-1"
        )
    from langchain_aws import ChatBedrockConverse

    from .chat import ChatModelEngine

    return ChatModelEngine(ChatBedrockConverse(model=model_id, region_name=region), name="bedrock", model_id=model_id)


def make_engine(spec: str | Engine | BaseChatModel | None = None, *, env: Any = None) -> Engine:
    """The engine named by ``spec`` (or ``MARGINALIA_ENGINE``, or ``offline``).

    ``env`` replaces ``os.environ`` for the lookups (tests, and callers holding a settings dict).
    """
    env = os.environ if env is None else env
    if spec is None:
        spec = (current() if env is os.environ else Settings.from_env(env)).engine
    if isinstance(spec, str):
        text = spec.strip()
        if text == "offline":
            from .offline import OfflineEngine

            return OfflineEngine()
        if text.startswith("bedrock:"):
            return _bedrock(text[len("bedrock:") :].strip(), env)
        raise ConfigurationError(f"engine {spec!r} is not understood; valid forms: {_FORMS}")

    from langchain_core.language_models import BaseChatModel

    if isinstance(spec, BaseChatModel):
        from .chat import ChatModelEngine

        return ChatModelEngine(spec)
    if isinstance(spec, Engine):
        return spec
    raise ConfigurationError(f"engine of type {type(spec).__name__} is not understood; valid forms: {_FORMS}")
