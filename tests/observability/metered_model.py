"""A scripted chat model whose replies carry distinct token counts, logged with the node that called.

The journal under test reads the node from LangChain callback metadata and the tokens from the
reply's ``usage_metadata``. This model records, independently, what it returned and which node
asked: the node from LangGraph's own config of the running call (``get_config()``), the counts
from a counter, so every call has its own numbers and a mix-up between calls shows. Used in the
test process and, by import, in the subprocess that resumes a thread.
"""

from __future__ import annotations

import itertools
import threading
import uuid

from langchain_core.messages import AIMessage
from langgraph.config import get_config

from marginalia.engines.chat import ChatModelEngine
from marginalia.schemas import Minutes
from marginalia.testing.chat_models import RecordedCall, ScriptedChatModel

MINUTES = Minutes(title="Platform stand-up", summary="EKS upgrade planned in two steps.", attendees=["Priya Raman"])


class Meter:
    """The replies' token counts, by node, in the order the model gave them."""

    def __init__(self, start: int = 0, fail_first: BaseException | None = None):
        self.issued: list[dict] = []
        self._numbers = itertools.count(start)
        self._fail_first = fail_first
        self._lock = threading.Lock()

    def __call__(self, call: RecordedCall) -> AIMessage:
        node = get_config()["metadata"]["langgraph_node"]
        with self._lock:
            if self._fail_first is not None:
                error, self._fail_first = self._fail_first, None
                self.issued.append({"node": node, "error": type(error).__name__})
                raise error
            n = next(self._numbers)
            usage = {"input_tokens": 1000 + 37 * n, "output_tokens": 40 + n, "total_tokens": 1040 + 38 * n}
            self.issued.append({"node": node, **usage})
        tool = {
            "name": call.tool_names[0],
            "args": MINUTES.model_dump(mode="json"),
            "id": f"call_{uuid.uuid4().hex[:8]}",
            "type": "tool_call",
        }
        return AIMessage(content="", tool_calls=[tool], usage_metadata=usage)


def metered_engine(start: int = 0, fail_first: BaseException | None = None) -> tuple[ChatModelEngine, Meter]:
    meter = Meter(start, fail_first)
    model = ScriptedChatModel(replies=[meter], repeat_last=True, model_id="anthropic.claude-test-v1")
    return ChatModelEngine(model), meter
