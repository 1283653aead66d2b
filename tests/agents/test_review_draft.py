"""The approval payload says what the proposal is: who drafted it and what to check first."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import marginalia
from marginalia.nodes.review import LOW_CONFIDENCE, draft_label, review_flags
from marginalia.schemas import ActionItem, Decision, Minutes

SAMPLE = Path(str(files("marginalia") / "samples" / "standup.vtt"))  # the package's sample stand-up


def test_flags_are_found_by_walking_any_document():
    document = {
        "title": "x",
        "confidence": 0.1,  # the root itself
        "items": [
            {"task": "sure", "confidence": 0.95},
            {"task": "unsure", "confidence": LOW_CONFIDENCE - 0.01},
            {"task": "exactly at the threshold", "confidence": LOW_CONFIDENCE},
        ],
        "key_points": [{"text": "a", "pages": [1]}, {"text": "b", "thin": True}],
        "odd/key~name": {"thin": True, "confidence": 0.2},
        "not a flag": {"thin": "yes", "confidence": True},
    }
    flags = review_flags(document)
    assert [f["path"] for f in flags] == ["", "/items/1", "/key_points/1", "/odd~1key~0name"]
    assert "confidence 0.59" in flags[1]["reason"] and "thin" in flags[2]["reason"]
    assert "confidence" in flags[3]["reason"] and "thin" in flags[3]["reason"]
    assert review_flags({"a": [{"confidence": 0.9}]}) == []


def test_labels_name_the_engine():
    from marginalia.engines.chat import ChatModelEngine
    from marginalia.engines.offline import OfflineEngine
    from marginalia.testing.chat_models import ScriptedChatModel

    assert draft_label(OfflineEngine()) == "offline extractive draft"
    engine = ChatModelEngine(ScriptedChatModel(replies=[]), name="bedrock", model_id="us.amazon.nova-lite-v1:0")
    assert draft_label(engine) == "model draft (us.amazon.nova-lite-v1:0)"


def test_the_waiting_run_carries_the_draft_notice(local_env):
    from marginalia.engines.chat import ChatModelEngine
    from marginalia.testing.chat_models import ScriptedChatModel

    proposal = Minutes(
        title="Release planning",
        summary="The team chose the release date.",
        decisions=[Decision(text="Ship version two on June 3rd", evidence=[1], confidence=0.9)],
        action_items=[
            ActionItem(owner="Bob", task="Write the release notes", evidence=[1], confidence=0.9),
            ActionItem(owner=None, task="Update the website", evidence=[2], confidence=0.3),
        ],
    )
    engine = ChatModelEngine(ScriptedChatModel(replies=[proposal]), name="chat-model", model_id="scripted-1")
    waiting = marginalia.minutes(local_env.put("draft/standup.vtt", SAMPLE), engine=engine)
    assert waiting.status == "waiting"
    assert waiting.draft == {
        "engine": "chat-model",
        "label": "model draft (scripted-1)",
        "flags": [{"path": "/action_items/1", "reason": f"confidence 0.30 < {LOW_CONFIDENCE}"}],
    }
    done = marginalia.resume(waiting.thread_id, action="approve", engine=engine)
    assert done.status == "done" and done.draft is None


def test_the_cli_prints_the_label_and_the_flags(local_env):
    # a request answered without a yes: an action item the offline engine is unsure of
    unsure = b"Ana: I'll write the upgrade runbook by Friday.\nAna: Could you test the installer on Windows?\nCy: Hmm, maybe later.\n"
    local_env.put("draft/unsure.txt", unsure)
    proc = local_env.run("minutes", f"s3://{local_env.bucket}/draft/unsure.txt", check=True)
    assert "offline extractive draft" in proc.stdout
    result = marginalia.minutes(f"s3://{local_env.bucket}/draft/unsure.txt")  # same input, same draft
    assert result.draft["label"] == "offline extractive draft"
    assert [f["path"] for f in result.draft["flags"]] == ["/action_items/1"]
    for flag in result.draft["flags"]:
        assert f"{flag['path']}  {flag['reason']}" in proc.stdout
