"""Operations commands: ``trace`` (annotation or thread -> Langfuse trace and checkpoints) and ``archive``.

* ``marginalia trace s3://bucket/key`` reads the ``provenance`` of the object's annotations and,
  for each thread that wrote them, prints the trace URL and the thread's checkpoints;
  ``marginalia trace THREAD`` does the same for one thread.
* ``marginalia archive THREAD`` writes the thread's self-contained archive
  (:mod:`marginalia.archive`); ``marginalia archive show s3://.../<thread>.json`` tells the whole
  story from that one object.
"""

from __future__ import annotations

import dataclasses
import json

import typer
from rich.table import Table

from ..errors import InvalidInput
from .app import app, console, json_output, print_json
from .formatting import clock_times

__all__ = ["archive_cmd", "trace_cmd"]


def _state():
    from ..config import open_store
    from ..runtime import open_checkpointer, state_location

    store = open_store()
    state = state_location(store)
    return store, state, open_checkpointer(store, state)


def _threads_of_object(store, uri: str) -> list[tuple[str, str | None, list[str]]]:
    """(thread_id, trace_id, annotation names) for each thread whose provenance is on ``uri``."""
    from ..tools import large_annotations
    from ..uri import parse_uri

    where = parse_uri(uri)
    found: dict[str, tuple[str | None, list[str]]] = {}
    for info in store.list_annotations(where.bucket, where.key):
        if ".part-" in info.name:
            continue
        try:
            doc = large_annotations.get_json(store, where.bucket, where.key, info.name)
        except ValueError:  # not JSON: a plain-text annotation has no provenance
            continue
        prov = doc.get("provenance") if isinstance(doc, dict) else None
        if isinstance(prov, dict) and prov.get("thread_id"):
            trace_id, names = found.setdefault(prov["thread_id"], (prov.get("trace_id"), []))
            names.append(info.name)
    if not found:
        raise InvalidInput(f"no annotation on {uri} carries provenance with a thread id (is it annotated by an agent?)")
    return [(t, tr, names) for t, (tr, names) in found.items()]


def _print_thread(store, state, saver, thread_id: str, trace_id: str | None, names: list[str] | None = None):
    """The thread's trace and checkpoints: printed, or (with ``--json``) returned as a dict."""
    from .. import tracing
    from ..archive import thread_record, thread_steps
    from ..threads import ThreadIndex

    record = thread_record(store, saver, ThreadIndex(store, state), thread_id)  # ThreadNotFound if unknown
    trace_id = trace_id or record.trace_id or tracing.trace_id_for(thread_id)
    if json_output():
        steps, _ = thread_steps(saver, record)
        return {
            "thread_id": thread_id,
            "agent": record.agent,
            "status": record.status,
            "object_uri": record.object_uri,
            "annotations": sorted(names or []),
            "trace_id": trace_id,
            "trace_url": tracing.trace_url(trace_id),
            "checkpoints": [s.as_json() for s in steps],
        }
    console.print(f"[bold]thread[/] [cyan]{thread_id}[/]  ({record.agent}, {record.status})", highlight=False)
    if names:
        console.print(f"  annotations: {', '.join(sorted(names))}", highlight=False)
    console.print(f"  trace: {tracing.trace_url(trace_id)}", highlight=False, soft_wrap=True)
    steps, _ = thread_steps(saver, record)
    table = Table(title=f"checkpoints of {thread_id}", expand=False)
    table.add_column("step", no_wrap=True)
    for col in ("node(s)", "next"):
        table.add_column(col, overflow="fold")
    table.add_column("time (UTC)", no_wrap=True)
    table.add_column("seconds", no_wrap=True, justify="right")
    for s, at in zip(steps, clock_times(s.at for s in steps), strict=False):
        waiting = any(t.get("interrupts") for t in s.tasks)
        step = str(s.step) if s.source == "loop" else f"{s.step} {s.source}"  # input, update, fork
        table.add_row(
            step,
            ", ".join(s.ran) or "—",
            ", ".join(s.next) + (" (interrupt)" if waiting else ""),
            at,
            "" if s.seconds is None else f"{s.seconds:.3f}",
        )
    console.print(table)
    return None


@app.command("trace", rich_help_panel="Operations", json_output=True)
def trace_cmd(
    target: str = typer.Argument(..., help="s3://bucket/key of an annotated object, or a thread id"),
) -> None:
    """The Langfuse trace (URL, or id without LANGFUSE_BASE_URL) and checkpoints behind a result."""
    from ..threads import validate_thread_id

    store, state, saver = _state()
    if target.startswith("s3://"):
        shown = [
            _print_thread(store, state, saver, t, trace, names) for t, trace, names in _threads_of_object(store, target)
        ]
    else:
        shown = [_print_thread(store, state, saver, validate_thread_id(target), None)]
    if json_output():
        print_json(shown)


@app.command("archive", rich_help_panel="Operations", json_output=True)
def archive_cmd(
    target: str = typer.Argument(..., metavar="THREAD | show", help="a thread id to archive, or `show`"),
    uri: str | None = typer.Argument(None, metavar="[URI]", help="with `show`: s3://.../archives/<thread>.json"),
) -> None:
    """Write a thread's self-contained archive, or `archive show URI` to read one back (--json: all of it)."""
    if target == "show":
        if not uri:
            raise InvalidInput("usage: marginalia archive show s3://<state bucket>/<prefix>/archives/<thread_id>.json")
        _show(uri, json_output())
        return
    if uri:
        raise InvalidInput(f"unexpected argument {uri!r}: `marginalia archive THREAD` takes one thread id")
    from ..archive import archive_thread
    from ..threads import validate_thread_id

    store, state, saver = _state()
    result = archive_thread(store, saver, validate_thread_id(target), state=state)
    if json_output():
        print_json(dataclasses.asdict(result))
        return
    split = [a for a in result.attachments if a["split"]]
    console.print(
        f"archived thread [cyan]{result.thread_id}[/] ({result.steps} checkpoints) to [bold]{result.uri}[/]",
        highlight=False,
    )
    for a in result.attachments:
        console.print(
            f"  + {a['name']}" + (f"  (split into {a['parts']} parts + index)" if a["split"] else ""), highlight=False
        )
    if result.omitted:
        console.print(f"  [yellow]left out (annotation limit):[/] {', '.join(result.omitted)}")
    console.print(
        f"read it with: marginalia archive show {result.uri}" + (f"  ({len(split)} split)" if split else ""),
        highlight=False,
        soft_wrap=True,
    )


def _show(uri: str, as_json: bool) -> None:
    from rich.panel import Panel

    from ..archive import read_archive
    from ..config import open_store

    story = read_archive(open_store(), uri)
    if as_json:
        print_json(story)
        return
    head = (
        f"agent {story['agent']} · status {story['status']} · object {story['object_uri']}\n"
        f"trace {story['trace_url']}\nstarted {story['created_at']} · last update {story['updated_at']} · "
        f"archived {story['archived_at']}"
    )
    console.print(Panel(head, title=f"[bold]thread {story['thread_id']}[/]"), highlight=False)
    table = Table(title="steps", expand=False)
    for col in ("step", "ran", "then"):
        table.add_column(col, overflow="fold")
    table.add_column("at (UTC)", no_wrap=True)
    table.add_column("seconds", no_wrap=True, justify="right")
    for s, at in zip(story["steps"], clock_times(s["at"] for s in story["steps"]), strict=False):
        waiting = any(t.get("interrupts") for t in s["tasks"])
        table.add_row(
            str(s["step"]),
            ", ".join(s["ran"]) or s["source"],
            ", ".join(s["next"]) + (" ⏸ interrupt" if waiting else ""),
            at,
            "" if s["seconds"] is None else f"{s['seconds']:.3f}",
        )
    console.print(table)
    nodes = Table(title="node timings", expand=False)
    for col in ("node", "runs", "seconds", "waited for review (s)", "errors"):
        nodes.add_column(col)
    nodes.add_column("retries")
    for name, t in story["nodes"].items():
        nodes.add_row(
            name,
            str(t["runs"]),
            f"{t['seconds']:.3f}",
            f"{t['waited_s']:.3f}",
            str(t["errors"]),
            str(t.get("retries", 0)),
        )
    console.print(nodes)
    _print_model_calls(story.get("model_calls") or {}, story.get("retries") or [])
    for d in story["decisions"]:
        who = f" by {d['reviewer']}" if d.get("reviewer") else ""
        note = f": {d['feedback']}" if d.get("feedback") else (" (edited)" if d.get("approved") else "")
        console.print(f"decision {d.get('n')}: [bold]{d.get('action')}[/]{who} at {d.get('at')}{note}", highlight=False)
    for e in story["errors"]:
        console.print(f"[red]error[/] in {e['node']} at step {e['step']}: {e['error']}", highlight=False)
    for a in story["annotations_written"]:
        console.print(f"wrote {a.get('name')} on {a.get('uri')}", highlight=False)
    for item in story["attachments"]:
        doc = story["attached"].get(item["name"])
        if doc is None:
            continue
        size = len(json.dumps(doc, ensure_ascii=False, default=str).encode("utf-8"))
        origin = f"{item['annotation']} of {item['uri']}" if item.get("annotation") else (item.get("uri") or "")
        split = f", stored in {item['parts']} parts" if item.get("split") else ""
        console.print(f"attached [bold]{item['name']}[/]: {origin} ({size:,} bytes{split})", highlight=False)
    console.print("(the attachments' content: --json)")
    if story["missing_attachments"]:
        console.print(f"[yellow]missing attachments:[/] {', '.join(story['missing_attachments'])}")


def _print_model_calls(usage: dict, retries: list[dict]) -> None:
    """The archive's model calls with their tokens, totals per node and model, and node retries."""
    calls = usage.get("calls") or []
    if not calls:
        console.print("model calls: none (the offline engine calls no model)")
    else:
        table = Table(title=f"model calls ({len(calls)})", expand=False)
        for col in ("#", "step", "node", "attempt", "model", "input", "output", "total", "seconds", "error"):
            table.add_column(
                col,
                overflow="fold",
                justify="right" if col in ("#", "step", "input", "output", "total", "seconds") else "left",
            )
        for n, c in enumerate(calls, 1):
            table.add_row(
                str(n),
                str(c.get("step", "")),
                str(c.get("node") or "?"),
                str(c.get("attempt", 1)),
                str(c.get("model")),
                f"{c.get('input_tokens', 0):,}",
                f"{c.get('output_tokens', 0):,}",
                f"{c.get('total_tokens', 0):,}",
                f"{c.get('latency_s') or 0:.3f}",
                c.get("error") or "",
            )
        console.print(table)
        totals = Table(title="model call totals", expand=False)
        for col in ("by", "name", "calls", "input", "output", "total", "seconds", "errors"):
            totals.add_column(col, justify="left" if col in ("by", "name") else "right")
        rows = [("node", name, t) for name, t in (usage.get("by_node") or {}).items()]
        rows += [("model", name, t) for name, t in (usage.get("by_model") or {}).items()]
        rows.append(("all", "total", usage.get("totals") or {}))
        for by, name, t in rows:
            totals.add_row(
                by,
                name,
                str(t.get("calls", 0)),
                f"{t.get('input_tokens', 0):,}",
                f"{t.get('output_tokens', 0):,}",
                f"{t.get('total_tokens', 0):,}",
                f"{t.get('latency_s', 0):.3f}",
                str(t.get("errors", 0)),
            )
        console.print(totals)
    for r in retries:
        console.print(
            f"retry: {r.get('node')} at step {r.get('step')}, attempt {r.get('attempt')} after "
            f"{r.get('failed_error')} (waited {r.get('waited_s')} s)",
            highlight=False,
        )
