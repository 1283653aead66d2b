"""The Engine protocol: what every agent asks of a model.

Implementations: :class:`marginalia.engines.offline.OfflineEngine` (deterministic, no weights,
no network; the default) and :class:`marginalia.engines.chat.ChatModelEngine` (any LangChain
chat model with structured output; ``bedrock:<model-id>`` builds a ``ChatBedrockConverse``).

Document text handed to an engine is DATA, never instructions: chat engines wrap it in
``<document>`` tags and tell the model so; engines have no tools that act on the world.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from ..schemas import DocumentSummary, Minutes, Outline, SourceContext, Transcript


@runtime_checkable
class Engine(Protocol):
    name: str  # "offline" | "bedrock" | "chat-model"
    model: str | None  # model id, None for offline

    def extract_minutes(
        self, transcript: Transcript, *, first_segment: int = 0, hint_date: str | None = None, chunks: int = 1
    ) -> Minutes:
        """Minutes of one transcript, or of one of ``chunks`` chunks of it (segment ids stay global).

        With ``chunks > 1`` the result is a part that :meth:`merge_minutes` reduces: an engine
        may leave out what its merge works out from the whole transcript again."""

    def merge_minutes(self, parts: list[Minutes], transcript: Transcript) -> Minutes:
        """Reduce step of map-reduce over a long transcript."""

    def revise_minutes(self, minutes: Minutes, feedback: str, transcript: Transcript) -> Minutes:
        """A new iteration after a reviewer rejected ``minutes`` with ``feedback``."""

    def summarize_pages(self, pages: list[tuple[int, str]], *, first_page_abstract: bool = True) -> DocumentSummary:
        """Summary of a chunk of pages ``[(page_number, text), ...]``."""

    def merge_summaries(self, parts: list[DocumentSummary], page_count: int) -> DocumentSummary: ...

    def revise_summary(
        self, summary: DocumentSummary, feedback: str, pages: list[tuple[int, str]]
    ) -> DocumentSummary: ...

    def draft_outline(
        self,
        request: str,
        *,
        slides: int | None,
        sources: list[SourceContext],
        feedback: str | None = None,
        previous: Outline | None = None,
    ) -> Outline: ...

    def question_to_sql(self, question: str, *, schema: str) -> str:
        """A read-only SQL query (Athena dialect) over ``annotation_table`` answering ``question``."""
