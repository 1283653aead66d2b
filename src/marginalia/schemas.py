"""Pydantic schemas of what the agents write as annotations, shared by every engine.

These are the contract between engines (offline, Bedrock, any LangChain chat model), the
graphs, search, and users' SQL (``json_extract_scalar(text_value, '$.date')``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Provenance(BaseModel):
    thread_id: str
    trace_id: str | None = None
    engine: str  # "offline" | "bedrock" | "chat-model"
    model: str | None = None
    created_at: str  # ISO-8601 UTC
    source_etag: str | None = None
    agent: str | None = None  # "minutes" | "pdf_summary" | "ppt_outline"
    marginalia_version: str | None = None
    #: on Temporal: workflow_id, run_id, namespace, task_queue (absent on the local path)
    temporal: dict | None = Field(default=None, exclude_if=lambda v: v is None)


# --- transcripts -----------------------------------------------------------------------------
class Segment(BaseModel):
    id: int = Field(description="0-based index of the segment in the transcript")
    speaker: str | None = None
    start: float | None = Field(default=None, description="seconds from the start")
    end: float | None = None
    text: str


class Transcript(BaseModel):
    language: str | None = None
    speakers: list[str] = Field(default_factory=list)
    segments: list[Segment]
    source_format: str | None = None  # "vtt" | "srt" | "transcribe-json" | "speaker-lines" | "qmsum-json" | ...


# --- minutes ---------------------------------------------------------------------------------
class ActionItem(BaseModel):
    owner: str | None = Field(default=None, description="person responsible, as named in the meeting")
    task: str
    due: str | None = Field(default=None, description="ISO date or the phrase used, e.g. 'next week'")
    evidence: list[int] = Field(default_factory=list, description="ids of the transcript segments it came from")
    confidence: float | None = Field(
        default=None, ge=0, le=1, description="how sure the engine is (0-1); low ones are flagged at review"
    )


class Decision(BaseModel):
    text: str
    evidence: list[int] = Field(default_factory=list)
    confidence: float | None = Field(default=None, ge=0, le=1, description="how sure the engine is (0-1)")


class MeetingSection(BaseModel):
    """One topic of the meeting, in the order discussed."""

    title: str
    summary: str = Field(default="", description="1-3 sentences: what was said on it")
    evidence: list[int] = Field(default_factory=list, description="ids of the transcript segments summarised")


class Minutes(BaseModel):
    date: str | None = Field(default=None, description="ISO date of the meeting when known")
    title: str
    attendees: list[str] = Field(default_factory=list)
    topics: list[str] = Field(default_factory=list)
    decisions: list[Decision] = Field(default_factory=list)
    action_items: list[ActionItem] = Field(default_factory=list)
    summary: str
    sections: list[MeetingSection] = Field(default_factory=list, description="the topics in order, each summarised")


# --- documents -------------------------------------------------------------------------------
class KeyPoint(BaseModel):
    text: str
    pages: list[int] = Field(default_factory=list, description="1-based page numbers")
    section: str | None = Field(default=None, description="heading of the section it is from, when known")


EntityType = Literal["PERSON", "ORG", "ACRONYM", "DATE", "MONEY", "EMAIL", "URL", "PLACE", "OTHER"]


class Entity(BaseModel):
    text: str
    type: EntityType = "OTHER"
    pages: list[int] = Field(default_factory=list)


class Section(BaseModel):
    """A top-level section of a document as its layout shows it (heading and the pages it spans)."""

    title: str
    pages: list[int] = Field(default_factory=list, description="1-based page numbers")


class DocumentSummary(BaseModel):
    title: str | None = None
    authors: list[str] = Field(default_factory=list)
    abstract: str | None = None
    summary: str
    key_points: list[KeyPoint] = Field(default_factory=list)
    entities: list[Entity] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    sections: list[Section] = Field(default_factory=list)
    page_count: int = 0
    language: str | None = None
    status: Literal["ok", "no_text"] = "ok"


# --- outlines --------------------------------------------------------------------------------
class Slide(BaseModel):
    title: str
    bullets: list[str] = Field(default_factory=list)
    notes: str = ""
    thin: bool = Field(default=False, description="the sources had too little on this slide's subject")


class Outline(BaseModel):
    title: str
    slides: list[Slide]
    topics: list[str] = Field(default_factory=list)
    slide_count: int = 0


class SourceSection(BaseModel):
    """A section of a source, in order, with the key sentences the source has on it."""

    title: str
    points: list[str] = Field(default_factory=list)


class SourceContext(BaseModel):
    """What an outline is grounded in: a source object and what its annotations say."""

    uri: str
    kind: Literal["summary", "meeting_minutes", "text"]
    title: str | None = None
    summary: str | None = None
    key_points: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    sections: list[SourceSection] = Field(default_factory=list)


# --- human review ----------------------------------------------------------------------------
class Review(BaseModel):
    """What a person answers at an approval interrupt."""

    action: Literal["approve", "edit", "reject"]
    edited: dict | None = None  # a replacement document (edit), or
    patch: list[dict] | None = None  # an RFC 6902 JSON Patch (edit)
    feedback: str | None = None  # reject: what to change
    reviewer: str | None = None
