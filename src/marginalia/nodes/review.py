"""Human approval, the same for every agent: interrupt with a proposal, apply the answer.

The review node stops the graph with ``interrupt()`` carrying the proposed document; the
process may exit there. The answer (a :class:`~marginalia.schemas.Review`) resumes it:

* ``approve`` — the proposal is what gets written;
* ``edit`` — a replacement document (``edited``) or an RFC 6902 patch (``patch``, applied with
  ``jsonpatch``); either is validated against the agent's document schema;
* ``reject`` with ``feedback`` — the agent's revise node makes a new proposal and the graph
  comes back here; without feedback the thread ends as rejected, nothing written.

Every round is appended to ``iterations`` in state, so the history of a document is kept.

"Say what it is": the interrupt payload also carries ``draft`` = ``{engine, label, flags}``
(:func:`draft_notice`): who wrote the proposal ("offline extractive draft", or "model draft
(<model>)") and what a reviewer should check first. Flags are found generically, for any agent,
by walking the proposal: every object whose ``confidence`` is below :data:`LOW_CONFIDENCE`, and
every object marked ``"thin": true`` (little source material behind it), each named by its JSON
pointer (RFC 6901), e.g. ``{"path": "/action_items/3", "reason": "confidence 0.40 < 0.6"}``.
"""

from __future__ import annotations

import copy
import operator
from typing import Annotated, Any, Literal

import jsonpatch
from langgraph.types import interrupt
from pydantic import BaseModel, ValidationError
from typing_extensions import TypedDict  # pydantic (Studio's schemas) refuses typing.TypedDict before 3.12

from ..context import rails
from ..errors import InvalidInput
from ..schemas import Review
from ..threads import utcnow

Decision = Literal["approve", "reject", "discard"]

#: An object of a proposal whose ``confidence`` is below this is flagged for the reviewer.
LOW_CONFIDENCE = 0.6


class ReviewState(TypedDict, total=False):
    """The state keys the review loop reads and writes (agents' states extend this)."""

    object_uri: str
    auto_approve: bool
    proposal: dict  # the document awaiting approval
    approved: dict  # the document approved (after an edit, the edited one)
    approved_at: str  # fixed at approval: provenance.created_at, so retried writes are identical
    decision: Decision
    feedback: str | None
    iterations: Annotated[list[dict], operator.add]
    annotations: list[dict]  # WrittenAnnotation fields, set by the annotate node


def apply_review(document: dict, review: Review, schema: type[BaseModel]) -> dict:
    """The document ``review`` approves, validated against ``schema``.

    Raises :class:`~marginalia.errors.InvalidInput` naming what is wrong with an edit, so the
    API can refuse it before resuming (the thread keeps waiting).
    """
    if review.action == "approve":
        candidate = document
    elif review.action == "edit":
        if review.edited is not None and review.patch is None:
            candidate = review.edited
        elif review.patch is not None and review.edited is None:
            candidate = apply_patch(document, review.patch)
        else:
            raise InvalidInput("an edit needs exactly one of: an edited document, or a JSON Patch (RFC 6902)")
    else:
        raise InvalidInput(f"a {review.action!r} review does not approve a document")
    try:
        return schema.model_validate(candidate).model_dump(mode="json")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ())) or "document"
        raise InvalidInput(
            f"the edited document is not a valid {schema.__name__}: {where}: {first.get('msg')}"
        ) from None


_PATCH_ERRORS = (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError)


def apply_patch(document: dict, patch: list) -> Any:
    """``patch`` (RFC 6902) applied to a copy of ``document``; InvalidInput in one short line naming
    the operation that fails and why — never the document (jsonpatch's messages quote whole
    values: a failed ``test`` on a summary printed ~2,000 characters)."""
    candidate: Any = copy.deepcopy(document)
    for number, operation in enumerate(patch if isinstance(patch, list) else [patch], start=1):
        try:
            candidate = jsonpatch.apply_patch(candidate, [operation])
        except _PATCH_ERRORS as exc:
            if isinstance(operation, dict):
                what = f"{operation.get('op', '?')} {operation.get('path', '?')}"
            else:
                what = type(operation).__name__
            reason = _short_reason(exc)
            raise InvalidInput(
                f"the JSON Patch does not apply to the proposal: operation {number} ({what}): {reason}"
            ) from None
    return candidate


def _short_reason(exc: BaseException) -> str:
    if isinstance(exc, jsonpatch.JsonPatchTestFailed):
        return "the value there is not the one the test expects"
    reason = str(exc).split(" in {", 1)[0].split(" in [", 1)[0]  # jsonpointer quotes the container
    return reason if len(reason) <= 120 else reason[:117] + "..."


def _pointer_token(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def review_flags(document: Any, threshold: float = LOW_CONFIDENCE) -> list[dict]:
    """``[{path, reason}]``: the objects in ``document`` a reviewer should check first.

    An object is flagged when its ``confidence`` is a number below ``threshold`` or when it says
    ``"thin": true``; ``path`` is its JSON pointer. Depth-first, in document order.
    """
    flags: list[dict] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            reasons = []
            confidence = node.get("confidence")
            if isinstance(confidence, int | float) and not isinstance(confidence, bool) and confidence < threshold:
                reasons.append(f"confidence {confidence:.2f} < {threshold}")
            if node.get("thin") is True:
                reasons.append("thin: little in the source backs it")
            if reasons:
                flags.append({"path": path, "reason": "; ".join(reasons)})
            for key, value in node.items():
                walk(value, f"{path}/{_pointer_token(key)}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}/{i}")

    walk(document, "")
    return flags


def draft_label(engine: Any) -> str:
    """``offline extractive draft`` for the offline engine, else ``model draft (<model>)``."""
    name = getattr(engine, "name", None) or "unknown"
    if name == "offline":
        return "offline extractive draft"
    return f"model draft ({getattr(engine, 'model', None) or name})"


def draft_notice(proposal: dict, engine: Any) -> dict:
    """What the approval payload says about the proposal: ``{engine, label, flags}``."""
    return {
        "engine": getattr(engine, "name", None) or "unknown",
        "label": draft_label(engine),
        "flags": review_flags(proposal),
    }


def make_review_node(*, agent: str, document: type[BaseModel]):
    """A review node for ``agent`` whose proposals are ``document`` instances (as dicts)."""

    def review(state: dict, runtime) -> dict:
        proposal = state["proposal"]
        n = len(state.get("iterations") or []) + 1
        if state.get("auto_approve"):
            answer = Review(action="approve", reviewer="auto (--yes)")
        else:
            answer = Review.model_validate(
                interrupt(
                    {
                        "agent": agent,
                        "object_uri": state.get("object_uri"),
                        "iteration": n,
                        "proposal": proposal,
                        "draft": draft_notice(proposal, rails(runtime).engine),
                        "actions": ["approve", "edit", "reject"],
                    }
                )
            )
        at = utcnow()
        record: dict[str, Any] = {"n": n, "proposal": proposal, "action": answer.action, "at": at}
        if answer.reviewer:
            record["reviewer"] = answer.reviewer
        if answer.action == "reject":
            record["feedback"] = answer.feedback
            decision: Decision = "reject" if answer.feedback else "discard"
            return {"iterations": [record], "decision": decision, "feedback": answer.feedback}
        approved = apply_review(proposal, answer, document)
        if answer.action == "edit":
            record["approved"] = approved
        return {
            "iterations": [record],
            "decision": "approve",
            "approved": approved,
            "approved_at": at,
            "feedback": None,
        }

    review.__name__ = f"review_{agent}"
    return review


def route_after_review(state: dict) -> str:
    """``annotate`` after approval, ``revise`` after a reject with feedback, else the end."""
    return {"approve": "annotate", "reject": "revise"}.get(state.get("decision") or "", "__end__")
