"""How the CLI shows each agent's proposals and results (rich renderables).

The agents' specs name these functions as ``"marginalia.cli.views:<function>"`` hooks
(:mod:`marginalia.agents`), so the graph modules never import rich or the CLI.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.json import JSON
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table

from ..schemas import Outline
from ..tools.slides import preview_text

__all__ = ["deck_lines", "render_minutes", "render_outline", "render_summary"]


def render_minutes(proposal: dict):
    """Rich rendering of proposed minutes: summary, decisions, action items table."""
    parts: list[RenderableType] = []
    head = proposal.get("title") or "Minutes"
    meta = " · ".join(x for x in (proposal.get("date"), ", ".join(proposal.get("attendees") or [])) if x)
    parts.append(Panel(proposal.get("summary") or "", title=f"[bold]{head}[/]", subtitle=meta or None))
    if proposal.get("topics"):
        parts.append(Markdown("**Topics:** " + "; ".join(proposal["topics"])))
    if proposal.get("decisions"):
        parts.append(
            Markdown(
                "**Decisions**\n\n"
                + "\n".join(
                    f"- {d['text']}"
                    + (f" _(segments {', '.join(map(str, d.get('evidence') or []))})_" if d.get("evidence") else "")
                    for d in proposal["decisions"]
                )
            )
        )
    table = Table(title="Action items", show_lines=False, expand=True)
    for col in ("owner", "task", "due", "evidence"):
        table.add_column(col, overflow="fold")
    for item in proposal.get("action_items") or []:
        table.add_row(
            item.get("owner") or "—",
            item.get("task") or "",
            item.get("due") or "—",
            ", ".join(map(str, item.get("evidence") or [])),
        )
    parts.append(table)
    return Group(*parts)


def render_summary(proposal: dict):
    """Rich rendering of a proposed summary: title, authors, summary, key points with pages."""
    title = proposal.get("title") or "Summary"
    meta = " · ".join(
        x
        for x in (
            ", ".join(proposal.get("authors") or []),
            f"{proposal.get('page_count', 0)} page(s)",
            proposal.get("language") or "",
            "NO TEXT LAYER" if proposal.get("status") == "no_text" else "",
        )
        if x
    )
    parts: list[RenderableType] = [
        Panel(proposal.get("summary") or "(no text to summarise)", title=f"[bold]{title}[/]", subtitle=meta)
    ]
    points = proposal.get("key_points") or []
    if points:
        parts.append(
            Markdown(
                "**Key points**\n\n"
                + "\n".join(
                    f"- {k['text']}"
                    + (f" _(p. {', '.join(map(str, k.get('pages') or []))})_" if k.get("pages") else "")
                    for k in points
                )
            )
        )
    if proposal.get("keywords"):
        parts.append(Markdown("**Keywords:** " + "; ".join(proposal["keywords"])))
    entities = proposal.get("entities") or []
    if entities:
        shown = ", ".join(f"{e['text']} ({e['type']})" for e in entities[:15])
        parts.append(
            Markdown(f"**Entities:** {shown}" + (f" … and {len(entities) - 15} more" if len(entities) > 15 else ""))
        )
    return Group(*parts)


def render_outline(proposal: dict):
    """Rich rendering of a proposed outline: the deck as Markdown (title, slides, notes)."""
    try:
        return Markdown(preview_text(Outline.model_validate(proposal)))
    except ValueError:
        return JSON(json.dumps(proposal, ensure_ascii=False))


def deck_lines(result: Any) -> list[str]:
    """A ppt_outline thread's object is the deck it uploaded on approval."""
    return [
        f"  the deck:     {result.object_uri}",
        f"  download it:  marginalia get {result.object_uri} {Path(result.object_uri).name}",
    ]
