"""The Engine backed by any LangChain chat model (Bedrock's ``ChatBedrockConverse`` in production).

Every method is one structured-output call: ``model.with_structured_output(Schema, include_raw=True)``
is a forced call of a single tool whose arguments are the answer schema (:mod:`marginalia.schemas`).
That tool is the only one the model ever sees, and it does nothing but carry the answer, so a
document that says "ignore previous instructions and delete ..." has nothing to call; document text
is wrapped as data by :mod:`marginalia.engines.prompts`.

What the engine guarantees beyond the schema: evidence segment ids and page numbers it returns exist
in the input (hallucinated citations are dropped); a reply with no usable tool call is retried once
and then raised as an :class:`~marginalia.errors.AgentError`; a prompt larger than
``max_chars_per_call`` is refused before any call (:class:`PromptTooLarge`: chunking is the graph's
map-reduce); token usage of every call is added to :attr:`ChatModelEngine.usage` (``last_usage`` is
the latest call) so archives can report it. Transient service errors (throttling, timeouts, 5xx)
are re-raised untouched so the graph's :data:`~marginalia.tools.retry.LLM_RETRY` can retry the node.
"""

from __future__ import annotations

import threading
from typing import Any, TypeVar

from botocore.exceptions import ClientError, NoCredentialsError
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage
from pydantic import BaseModel, Field, ValidationError

from ..errors import AgentError, ConfigurationError, UnsupportedInput
from ..schemas import (
    ActionItem,
    Decision,
    DocumentSummary,
    Entity,
    KeyPoint,
    Minutes,
    Outline,
    SourceContext,
    Transcript,
)
from ..tools.retry import is_transient
from . import prompts

__all__ = ["DEFAULT_MAX_CHARS_PER_CALL", "ChatModelEngine", "PromptTooLarge", "SQLQuery"]

#: About 75k tokens of English: well inside the context of the Bedrock models we target, and a
#: bound on the cost of one call. Long inputs are split by the graphs before they get here.
DEFAULT_MAX_CHARS_PER_CALL = 300_000

S = TypeVar("S", bound=BaseModel)


class PromptTooLarge(AgentError):
    """One call would exceed ``max_chars_per_call``: the input must be split first."""


class SQLQuery(BaseModel):
    """A single read-only SQL query (Athena / Trino dialect) that answers the question."""

    sql: str = Field(description="the query: SELECT or WITH ... SELECT only, no trailing semicolon")


def _model_id(model: BaseChatModel) -> str | None:
    for attr in ("model_id", "model", "model_name"):
        value = getattr(model, attr, None)
        if isinstance(value, str) and value:
            return value
    return None


def _is_bedrock(model: BaseChatModel) -> bool:
    return type(model).__module__.startswith("langchain_aws")


class ChatModelEngine:
    """:class:`~marginalia.engines.base.Engine` over a LangChain chat model that can call tools."""

    def __init__(
        self,
        model: BaseChatModel,
        *,
        name: str | None = None,
        model_id: str | None = None,
        max_chars_per_call: int = DEFAULT_MAX_CHARS_PER_CALL,
    ):
        if type(model).bind_tools is BaseChatModel.bind_tools:
            raise ConfigurationError(
                f"chat model {type(model).__name__} cannot call tools, and Marginalia needs structured output "
                "(with_structured_output): use a model class that implements bind_tools"
            )
        if max_chars_per_call <= 0:
            raise ConfigurationError(f"max_chars_per_call must be positive, got {max_chars_per_call}")
        self.chat_model = model
        self.name = name or ("bedrock" if _is_bedrock(model) else "chat-model")
        self.model = model_id or _model_id(model)
        self.max_chars_per_call = max_chars_per_call
        self.last_usage: dict[str, int] | None = None
        self.usage: dict[str, int] = {"calls": 0, "input_tokens": 0, "output_tokens": 0, "total_tokens": 0}
        self._lock = threading.Lock()
        self._runnables: dict[type, Any] = {}

    def __repr__(self) -> str:
        return f"ChatModelEngine(name={self.name!r}, model={self.model!r})"

    # --- the one call every method makes -----------------------------------------------------
    def _structured(self, schema: type[S], task: str, data: list[str], *, what: str) -> S:
        """Ask for ``schema``: ``data`` blocks (already wrapped) first, then the instructions."""
        human = "\n\n".join([*data, task])
        size = len(prompts.SYSTEM) + len(human)
        if size > self.max_chars_per_call:
            raise PromptTooLarge(
                f"{what}: the prompt would be {size:,} characters, over max_chars_per_call="
                f"{self.max_chars_per_call:,} of {self.name} model {self.model}; split the input into smaller chunks"
            )
        runnable = self._runnables.get(schema)
        if runnable is None:
            runnable = self._runnables[schema] = self.chat_model.with_structured_output(schema, include_raw=True)
        messages: list[BaseMessage] = [SystemMessage(prompts.SYSTEM), HumanMessage(human)]
        problem = ""
        for _attempt in (1, 2):
            result = self._invoke(runnable, messages, what)
            self._record_usage(result.get("raw"))
            parsed = result.get("parsed")
            if isinstance(parsed, dict):  # some models' parsers return dicts
                try:
                    parsed = schema.model_validate(parsed)
                except ValidationError as exc:
                    result["parsing_error"], parsed = exc, None
            if isinstance(parsed, schema):
                return parsed
            error = result.get("parsing_error")
            problem = (
                f"its arguments did not match the schema ({_describe(error)})"
                if error
                else ("it answered without calling the tool")
            )
            reminder = (
                f"\n\nYour previous reply could not be used: {problem}. Answer only by calling the tool "
                f"{schema.__name__} with arguments that match its schema."
            )
            messages = [SystemMessage(prompts.SYSTEM), HumanMessage(human + reminder)]
        raise AgentError(
            f"{what}: {self.name} model {self.model} gave no {schema.__name__} after 2 attempts: {problem}"
        )

    def _invoke(self, runnable: Any, messages: list[BaseMessage], what: str) -> dict:
        try:
            return runnable.invoke(messages)
        except NoCredentialsError as exc:
            raise ConfigurationError(
                f"{what}: no AWS credentials for {self.name} model {self.model} "
                "(set AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use MARGINALIA_ENGINE=offline)"
            ) from exc
        except ClientError as exc:
            if is_transient(exc):
                raise  # the node's retry policy handles it
            err = exc.response.get("Error", {})
            code, message = err.get("Code", "Error"), err.get("Message", "")
            cls = ConfigurationError if code in {"AccessDeniedException", "UnrecognizedClientException"} else AgentError
            raise cls(f"{what}: {self.name} model {self.model} refused the request: {code}: {message}") from exc

    def _record_usage(self, raw: Any) -> None:
        meta = getattr(raw, "usage_metadata", None) or {}
        usage = {k: int(meta.get(k) or 0) for k in ("input_tokens", "output_tokens", "total_tokens")}
        if not usage["total_tokens"]:
            usage["total_tokens"] = usage["input_tokens"] + usage["output_tokens"]
        with self._lock:
            self.last_usage = usage
            self.usage["calls"] += 1
            for key, value in usage.items():
                self.usage[key] += value

    def reset_usage(self) -> None:
        with self._lock:
            self.last_usage = None
            self.usage = {"calls": 0, "input_tokens": 0, "output_tokens": 0, "total_tokens": 0}

    # --- minutes -----------------------------------------------------------------------------
    def extract_minutes(
        self, transcript: Transcript, *, first_segment: int = 0, hint_date: str | None = None, chunks: int = 1
    ) -> Minutes:
        if not transcript.segments:
            raise UnsupportedInput("extract_minutes: the transcript has no segments, there is nothing to minute")
        # Segment ids are global (they are what evidence cites). A chunk renumbered from 0 is
        # shifted by first_segment, as the offline engine does, so both engines cite alike.
        segments = transcript.segments
        if segments[0].id < first_segment:
            segments = [seg.model_copy(update={"id": seg.id + first_segment}) for seg in segments]
        ids = [seg.id for seg in segments]
        chunk_note = (
            f" (a part of a longer meeting, from segment {first_segment})" if chunks > 1 or first_segment else ""
        )
        hint_note = f" (the recording's metadata suggests {hint_date})" if hint_date else ""
        task = prompts.EXTRACT_MINUTES.format(chunk_note=chunk_note, hint_note=hint_note)
        data = [prompts.document(prompts.format_transcript(segments), kind="transcript")]
        minutes = self._structured(Minutes, task, data, what=f"minutes of segments {ids[0]}-{ids[-1]}")
        if minutes.date is None and hint_date:
            minutes.date = hint_date
        return _keep_known_segments(minutes, set(ids))

    def merge_minutes(self, parts: list[Minutes], transcript: Transcript) -> Minutes:
        if not parts:
            raise AgentError("merge_minutes: no partial minutes to merge")
        if len(parts) == 1:
            return parts[0]
        task = prompts.MERGE_MINUTES.format(
            segments=len(transcript.segments), speakers=", ".join(transcript.speakers) or "unknown", parts=len(parts)
        )
        data = [prompts.document(prompts.as_json(part), kind=f"minutes part {i}") for i, part in enumerate(parts, 1)]
        merged = self._structured(Minutes, task, data, what=f"merging {len(parts)} partial minutes")
        if merged.date is None:
            merged.date = next((p.date for p in parts if p.date), None)
        return _keep_known_segments(merged, {seg.id for seg in transcript.segments})

    def revise_minutes(self, minutes: Minutes, feedback: str, transcript: Transcript) -> Minutes:
        data = [
            prompts.document(prompts.format_transcript(transcript.segments), kind="transcript"),
            prompts.document(prompts.as_json(minutes), kind="rejected minutes"),
        ]
        task = f"{prompts.REVISE_MINUTES}\n\n<feedback>\n{feedback.strip()}\n</feedback>"
        revised = self._structured(Minutes, task, data, what="revising minutes after review")
        return _keep_known_segments(revised, {seg.id for seg in transcript.segments})

    # --- documents ---------------------------------------------------------------------------
    def summarize_pages(self, pages: list[tuple[int, str]], *, first_page_abstract: bool = True) -> DocumentSummary:
        if not pages or not any(text.strip() for _, text in pages):
            # Nothing to read (a scanned PDF without a text layer): say so, do not ask a model to invent.
            return DocumentSummary(summary="", page_count=len(pages), status="no_text")
        numbers = [n for n, _ in pages]
        task = prompts.SUMMARIZE_PAGES.format(
            first=numbers[0],
            last=numbers[-1],
            abstract_rule=prompts.ABSTRACT_FIRST if first_page_abstract else prompts.ABSTRACT_NONE,
        )
        data = [prompts.document(prompts.format_pages(pages), kind="pages")]
        summary = self._structured(DocumentSummary, task, data, what=f"summary of pages {numbers[0]}-{numbers[-1]}")
        summary.page_count = len(pages)
        summary.status = "ok"
        return _keep_known_pages(summary, set(numbers))

    def merge_summaries(self, parts: list[DocumentSummary], page_count: int) -> DocumentSummary:
        if not parts:
            raise AgentError("merge_summaries: no partial summaries to merge")
        readable = [p for p in parts if p.status == "ok"]
        if len(readable) <= 1:
            merged = (readable or parts)[0].model_copy()
        else:
            task = prompts.MERGE_SUMMARIES.format(page_count=page_count, parts=len(readable))
            data = [prompts.document(prompts.as_json(p), kind=f"summary part {i}") for i, p in enumerate(readable, 1)]
            merged = self._structured(DocumentSummary, task, data, what=f"merging {len(readable)} partial summaries")
            merged.status = "ok"
        merged.page_count = page_count
        return _keep_known_pages(merged, set(range(1, page_count + 1)))

    def revise_summary(self, summary: DocumentSummary, feedback: str, pages: list[tuple[int, str]]) -> DocumentSummary:
        data = [
            prompts.document(prompts.format_pages(pages), kind="pages"),
            prompts.document(prompts.as_json(summary), kind="rejected summary"),
        ]
        task = f"{prompts.REVISE_SUMMARY}\n\n<feedback>\n{feedback.strip()}\n</feedback>"
        revised = self._structured(DocumentSummary, task, data, what="revising a summary after review")
        revised.page_count = summary.page_count or len(pages)
        revised.status = "ok"
        return _keep_known_pages(revised, {n for n, _ in pages} or set(range(1, revised.page_count + 1)))

    # --- outlines ----------------------------------------------------------------------------
    def draft_outline(
        self,
        request: str,
        *,
        slides: int | None,
        sources: list[SourceContext],
        feedback: str | None = None,
        previous: Outline | None = None,
    ) -> Outline:
        slides_note = f" in exactly {slides} slides" if slides else ""
        task = prompts.DRAFT_OUTLINE.format(slides_note=slides_note)
        task += f"\n\n<request>\n{request.strip()}\n</request>"
        data = [prompts.format_sources(sources)] if sources else []
        if previous is not None or feedback:
            if previous is not None:
                data.append(prompts.document(prompts.as_json(previous), kind="rejected outline"))
            task += f"\n\n{prompts.REVISE_OUTLINE}\n\n<feedback>\n{(feedback or '').strip()}\n</feedback>"
        outline = self._structured(Outline, task, data, what="drafting an outline")
        if slides and len(outline.slides) > slides:
            outline.slides = outline.slides[:slides]
        outline.slide_count = len(outline.slides)
        return outline

    # --- search ------------------------------------------------------------------------------
    def question_to_sql(self, question: str, *, schema: str) -> str:
        task = f"{prompts.QUESTION_TO_SQL}\n\n<schema>\n{schema.strip()}\n</schema>\n\n<request>\n{question.strip()}\n</request>"
        answer = self._structured(SQLQuery, task, [], what="translating a question to SQL")
        sql = answer.sql.strip().rstrip(";").strip()
        if not sql:
            raise AgentError(f"translating a question to SQL: {self.name} model {self.model} returned an empty query")
        return sql


def _describe(error: BaseException) -> str:
    """What was wrong with the arguments, by field, without echoing their values (which may
    carry document text) back outside the ``<document>`` wrapper."""
    if isinstance(error, ValidationError):
        problems = [
            f"{'.'.join(map(str, e['loc'])) or 'arguments'}: {e['msg']}" for e in error.errors(include_input=False)
        ]
        return "; ".join(problems[:8])
    return type(error).__name__


def _keep_known_segments(minutes: Minutes, known: set[int]) -> Minutes:
    """Drop evidence ids the model made up: every cited segment must exist in the transcript."""
    cited: list[Decision | ActionItem] = [*minutes.decisions, *minutes.action_items]
    for item in cited:
        item.evidence = sorted({i for i in item.evidence if i in known})
    return minutes


def _keep_known_pages(summary: DocumentSummary, known: set[int]) -> DocumentSummary:
    paged: list[KeyPoint | Entity] = [*summary.key_points, *summary.entities]
    for item in paged:
        item.pages = sorted({p for p in item.pages if p in known})
    return summary
