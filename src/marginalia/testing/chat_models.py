"""A scripted LangChain chat model for tests and notebooks: no network, no weights.

``langchain_core``'s fake chat models cannot ``bind_tools``, so they cannot stand in for Bedrock
behind ``with_structured_output`` (which is a forced tool call). :class:`ScriptedChatModel` can:
it is a real :class:`~langchain_core.language_models.BaseChatModel`, so LangChain's own
structured-output plumbing (tool conversion, ``PydanticToolsParser``, ``include_raw``) runs
unchanged, and it answers every call with the next scripted reply as a tool call, with
``usage_metadata``. It records every call (messages, tools offered, tool choice) so a test can
assert what the model was shown, e.g. that document text arrived inside ``<document>`` tags and
that an injected instruction did not change the tools on offer.

Example::

    model = ScriptedChatModel(replies=[Minutes(title="Budget", summary="...")])
    engine = ChatModelEngine(model)
    engine.extract_minutes(transcript)   # -> the scripted Minutes
    model.calls[0].tool_names            # -> ["Minutes"]
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import BaseModel, ConfigDict, PrivateAttr

__all__ = ["NO_TOOL_CALL", "RecordedCall", "ScriptedChatModel"]

#: A scripted reply that answers in prose instead of calling the tool (structured output -> None).
NO_TOOL_CALL = "I would rather answer in prose."

Reply = BaseModel | dict | str | AIMessage | Callable[["RecordedCall"], Any]


@dataclass
class RecordedCall:
    """One call the model received."""

    messages: list[BaseMessage]
    tools: list[dict] = field(default_factory=list)  # OpenAI-format tool specs offered
    tool_choice: Any = None

    @property
    def tool_names(self) -> list[str]:
        return [t["function"]["name"] for t in self.tools]

    @property
    def system(self) -> str:
        return "\n".join(_text(m) for m in self.messages if m.type == "system")

    @property
    def human(self) -> str:
        return "\n".join(_text(m) for m in self.messages if m.type == "human")


def _text(message: BaseMessage) -> str:
    content = message.content
    if isinstance(content, str):
        return content
    return "".join(part.get("text", "") if isinstance(part, dict) else str(part) for part in content)


def _approx_tokens(text: str) -> int:
    return max(1, len(text) // 4)


class ScriptedChatModel(BaseChatModel):
    """Answers each call with the next of ``replies``.

    A reply may be: a pydantic object (a tool call named after its class, as
    ``with_structured_output`` expects), a ``dict`` (arguments of a call to the first tool
    offered), a ``str`` (plain text, no tool call), an ``AIMessage`` (returned as is), or a
    callable taking the :class:`RecordedCall` and returning any of these (for replies that
    depend on the prompt). Running out of replies is an error, so a test notices an extra call;
    ``repeat_last=True`` keeps answering with the last reply instead (handy in notebooks).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    replies: list[Any]
    repeat_last: bool = False
    model_id: str = "scripted"
    usage: dict | None = None  # fixed usage_metadata; default: ~4 characters a token

    _calls: list[RecordedCall] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @property
    def _llm_type(self) -> str:
        return "scripted-chat-model"

    @property
    def calls(self) -> list[RecordedCall]:
        return self._calls

    def bind_tools(
        self, tools: Sequence[dict | type | Callable | Any], *, tool_choice: Any = None, **kwargs: Any
    ) -> Runnable[LanguageModelInput, AIMessage]:
        formatted = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=formatted, tool_choice=tool_choice, **kwargs)

    def _next_reply(self, call: RecordedCall) -> Any:
        with self._lock:
            index = len(self._calls)
            self._calls.append(call)
            if index >= len(self.replies):
                if not (self.repeat_last and self.replies):
                    raise AssertionError(
                        f"ScriptedChatModel got call #{index + 1} but only {len(self.replies)} replies were scripted"
                    )
                index = len(self.replies) - 1
            reply = self.replies[index]
        return reply(call) if callable(reply) and not isinstance(reply, (BaseModel, type)) else reply

    def _message_for(self, reply: Any, call: RecordedCall) -> AIMessage:
        if isinstance(reply, AIMessage):
            return reply
        prompt_tokens = sum(_approx_tokens(_text(m)) for m in call.messages)
        if isinstance(reply, str):
            content, tool_calls, out = reply, [], reply
        else:
            if isinstance(reply, BaseModel):
                name, args = type(reply).__name__, reply.model_dump(mode="json")
            elif isinstance(reply, dict):
                if not call.tools:
                    raise AssertionError("a dict reply needs a tool to call, but no tools were offered")
                name, args = call.tool_names[0], reply
            else:
                raise TypeError(f"cannot script a reply of type {type(reply).__name__}")
            tool_calls = [{"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}", "type": "tool_call"}]
            content, out = "", json.dumps(args)
        usage = self.usage or {
            "input_tokens": prompt_tokens,
            "output_tokens": _approx_tokens(out),
            "total_tokens": prompt_tokens + _approx_tokens(out),
        }
        return AIMessage(content=content, tool_calls=tool_calls, usage_metadata=usage)

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        call = RecordedCall(
            messages=list(messages), tools=list(kwargs.get("tools") or []), tool_choice=kwargs.get("tool_choice")
        )
        message = self._message_for(self._next_reply(call), call)
        return ChatResult(generations=[ChatGeneration(message=message)])
