"""The model engine of benchmarks/temporal.py: a chat model that waits like a network call.

``sleepy_minutes()`` is a :class:`~marginalia.testing.chat_models.ScriptedChatModel` whose every
call sleeps ``MARGINALIA_BENCH_MODEL_MS`` (default 200) ms and answers with the same minutes
(deterministic), wrapped as an engine. Workers load it with
``marginalia worker --engine-factory temporal_model:sleepy_minutes`` (benchmarks/ on PYTHONPATH);
the local baseline gets the very same object.
"""

from __future__ import annotations

import os
import time


def sleepy_minutes():
    from marginalia.engines.chat import ChatModelEngine
    from marginalia.testing.chat_models import ScriptedChatModel

    delay = float(os.environ.get("MARGINALIA_BENCH_MODEL_MS") or 200) / 1000

    def reply(call):
        time.sleep(delay)
        return {
            "title": "Release sync",
            "attendees": ["Ana", "Ben"],
            "topics": ["release"],
            "decisions": [{"text": "Ship the release on Friday.", "evidence": [0]}],
            "action_items": [{"owner": "Ben", "task": "Write the release notes", "due": None, "evidence": [1]}],
            "summary": "Ana and Ben agreed to ship on Friday; Ben writes the release notes.",
        }

    return ChatModelEngine(ScriptedChatModel(replies=[reply], repeat_last=True, model_id="sleepy-200ms"))
