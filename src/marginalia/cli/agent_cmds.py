"""Agent commands: ``minutes``, ``approve``, ``reject``, ``resume``, ``threads`` and ``demo``.

``approve``/``reject``/``resume``/``threads`` work for every registered agent (the thread index
says which graph a thread belongs to). What differs per agent comes from its spec
(:mod:`marginalia.agents`): how a proposal is rendered (``render``), the lines under a finished
thread (``result_lines``) and its step of ``marginalia demo`` (``demo``, a :class:`DemoStep`).
Agents reuse :func:`run_agent` (progress, proposal rendering, next steps) for their own command.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import shutil
import sys
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer
from rich.table import Table

from ..errors import InvalidInput, MarginaliaError
from ..progress import JOIN_NODES, PROGRESS
from .app import app, console, error_line, json_output, missing_store, print_json, require_store, store_spec
from .formatting import print_table
from .params import object_uri

__all__ = ["DemoStep", "demo_steps", "run_agent", "show_result"]


# --- shared presentation -----------------------------------------------------------------------
class Progress:
    """Live progress of a run: one line per step (``stream_mode="updates"``), and a bar fed by the
    nodes' progress events (``stream_mode="custom"``, :mod:`marginalia.progress`): chunks done /
    total, pages done / total. A fan-out's tasks (one step each) show in the bar, not as lines."""

    def __init__(self, status: Any):  # a rich Status: its line shows the bar
        self.status = status
        self.last_node: str | None = None
        self.done: dict[str, set[int]] = {}  # unit -> items done (a fan-out reports them in any order)

    def __call__(self, node: str, update: Any) -> None:
        if node == PROGRESS:
            self._advance(update)
            return
        if node in JOIN_NODES or node == self.last_node:  # a join between waves, or another task of a fan-out
            return
        self.last_node = node
        detail = ""
        if node == "transcript" and isinstance(update, dict) and update.get("transcript"):
            t = update["transcript"]
            detail = f": {t['segments']} segments, {len(t['speakers'])} speakers ({t['origin']})"
        console.print(f"[green]✓[/] {node}{detail}", highlight=False)
        self.status.update(f"after {node} …")

    def _advance(self, event: Any) -> None:
        if not isinstance(event, dict) or not isinstance(event.get("progress"), str):
            return
        start, end = event.get("range") or (0, 0)
        done = self.done.setdefault(event["progress"], set())
        done.update(range(int(start), int(end)))
        self.status.update(progress_bar(event["progress"], len(done), int(event.get("total") or 0)))


def progress_bar(unit: str, done: int, total: int) -> Table:
    """``chunks ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━ 6/10``: a row for the status line."""
    from rich.progress_bar import ProgressBar

    row = Table.grid(padding=(0, 1))
    row.add_row(unit, ProgressBar(total=max(total, 1), completed=min(done, total), width=30), f"{done}/{total}")
    return row


class _ShutdownNoise(logging.Filter):
    """Drops ``concurrent.futures``' traceback for a step's callback that found LangGraph's executor
    already shut down — what a Ctrl-C in the middle of parallel steps leaves behind, not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, RuntimeError) and "after shutdown" in str(exc))


logging.getLogger("concurrent.futures").addFilter(_ShutdownNoise())


def run_agent(call: Callable[..., Any], **kwargs):
    """Run an API call (``marginalia.api.minutes``/``resume``...) with live progress (none with ``--json``)."""
    try:
        if json_output():
            return call(**kwargs)
        with console.status("working …") as status:
            return call(on_update=Progress(status), **kwargs)
    except KeyboardInterrupt as exc:  # Ctrl-C: the run noted which thread stopped and how to continue it
        for note in getattr(exc, "__notes__", ()):
            error_line(note)
        raise


def _hook(agent: str, field: str) -> Any:
    """The agent's ``field`` hook (``render``, ``result_lines``), or None (also for an agent this
    process cannot import)."""
    from ..agents import get_agent, load_hook

    try:
        ref = getattr(get_agent(agent), field)
    except MarginaliaError:
        return None
    return load_hook(ref) if ref else None


def render_proposal(agent: str, proposal: dict | None):
    render = _hook(agent, "render")
    if render is not None:
        return render(proposal or {})
    from rich.json import JSON

    return JSON(json.dumps(proposal or {}, ensure_ascii=False))


def show_draft(draft: dict | None) -> None:
    """Who wrote the proposal and what to check first (the approval payload's ``draft``)."""
    if not draft:
        return
    flags = draft.get("flags") or []
    console.print(f"\n[bold yellow]{draft.get('label')}[/]: read it before approving", highlight=False)
    if flags:
        console.print(f"  check first ({len(flags)}):", highlight=False)
    for flag in flags:
        console.print(f"  {flag['path']}  {flag['reason']}", highlight=False, markup=False)


def hint(line: str) -> None:
    """A line holding a command or URI to copy: never wrapped or cropped, whatever the terminal width."""
    console.print(line, highlight=False, markup=False, soft_wrap=True)


#: While ``marginalia demo --json`` runs its steps: the results they show, for its one document.
_DEMO_RESULTS: ContextVar[list | None] = ContextVar("demo_results", default=None)


def show_result(result) -> None:
    """The proposal and what to do next (waiting), or where the annotations are (done); with
    ``--json`` the :class:`~marginalia.runtime.RunResult` as one JSON document (inside
    ``demo --json``, kept for the demo's document instead)."""
    if json_output():
        collected = _DEMO_RESULTS.get()
        if collected is None:
            print_json(dataclasses.asdict(result))
        else:
            collected.append(dataclasses.asdict(result))
        return
    if result.status == "waiting":
        console.print(render_proposal(result.agent, result.proposal))
        show_draft(result.draft)
        console.print(
            f"\n[bold]Waiting for approval[/] (iteration {result.iterations + 1}) — thread [cyan]{result.thread_id}[/]"
        )
        hint(f"  approve: marginalia approve {result.thread_id}")
        hint(f"  edit:    marginalia approve {result.thread_id} --edit {result.agent.split('_')[-1]}.json")
        hint("           (--edit takes a document or a JSON Patch)")
        hint(f'  reject:  marginalia reject {result.thread_id} --feedback "what to change"')
    elif result.status == "rejected":
        console.print(f"Thread [cyan]{result.thread_id}[/] rejected: nothing was written on {result.object_uri}.")
    else:
        if result.proposal:
            console.print(render_proposal(result.agent, result.proposal))
        console.print(f"\n[bold green]Done[/] — thread [cyan]{result.thread_id}[/], trace {result.trace_id}")
        for a in result.annotations:
            parts = f" ({a.parts} parts)" if a.parts > 1 else ""
            console.print(f"  wrote [bold]{a.name}[/]{parts} on {a.uri}", soft_wrap=True)
        if result.annotations:
            first = result.annotations[0]
            hint(f"  look at them: marginalia annotations {first.uri}")
            hint(f"  read one:     marginalia annotations {first.uri} {first.name}")
        view = _hook(result.agent, "result_lines")
        for line in view(result) if view is not None else ():
            hint(line)


# --- commands ----------------------------------------------------------------------------------
ON_HELP = "local | temporal: run here, or as a Temporal workflow run by `marginalia worker` (MARGINALIA_TEMPORAL)"


def on_option():
    return typer.Option("local", "--on", help=ON_HELP)


@app.command("minutes", rich_help_panel="Agents", json_output=True)
def minutes_cmd(
    uri: str = typer.Argument(..., help="s3://bucket/key of a recording or a transcript", callback=object_uri),
    transcript: str | None = typer.Option(
        None, "--transcript", "-t", help="transcript file: a local path or s3:// URI"
    ),
    engine: str | None = typer.Option(
        None, "--engine", "-e", help="offline | bedrock:<model-id> (default MARGINALIA_ENGINE)"
    ),
    yes: bool = typer.Option(False, "--yes", "-y", help="approve the proposed minutes at once"),
    thread: str | None = typer.Option(None, "--thread", help="thread id to use (default: a new one)"),
    on: str = on_option(),
) -> None:
    """Meeting minutes of a recording: runs to the approval point and prints the thread id."""
    from ..api import minutes

    show_result(run_agent(minutes, uri=uri, transcript=transcript, engine=engine, approve=yes, thread_id=thread, on=on))


def _read_edit(path: Path) -> dict:
    """``--edit F``: a JSON document (replaces the proposal) or a JSON Patch list (RFC 6902)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"edit file {path} does not exist") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"edit file {path} is not valid JSON: {exc}") from None
    if isinstance(data, list):
        return {"action": "edit", "patch": data}
    if isinstance(data, dict):
        return {"action": "edit", "edited": data}
    raise InvalidInput(f"edit file {path} must hold a JSON object (the document) or a list (a JSON Patch)")


PASSWORD_HELP = "password of the encrypted PDF the thread reads (never stored; else MARGINALIA_PDF_PASSWORD)"


@app.command("approve", rich_help_panel="Agents", json_output=True)
def approve_cmd(
    thread_id: str = typer.Argument(..., help="thread waiting for approval (see `marginalia threads --pending`)"),
    edit: Path | None = typer.Option(None, "--edit", help="JSON file: an edited document or an RFC 6902 patch"),
    reviewer: str | None = typer.Option(None, "--reviewer", help="who approves (kept in the thread's history)"),
    password: str | None = typer.Option(None, "--password", help=PASSWORD_HELP),
) -> None:
    """Approve (optionally edited) the proposal a thread waits for; the annotations are written."""
    from ..api import resume

    review = _read_edit(edit) if edit else {"action": "approve"}
    show_result(run_agent(resume, thread_id=thread_id, reviewer=reviewer, password=password, **review))


@app.command("reject", rich_help_panel="Agents", json_output=True)
def reject_cmd(
    thread_id: str = typer.Argument(...),
    feedback: str = typer.Option(..., "--feedback", "-f", help="what to change: a revised proposal comes back"),
    reviewer: str | None = typer.Option(None, "--reviewer"),
    password: str | None = typer.Option(None, "--password", help=PASSWORD_HELP),
) -> None:
    """Reject the proposal with feedback: the agent revises it and waits for approval again."""
    from ..api import resume

    if not feedback.strip():
        raise InvalidInput("--feedback must say what to change")
    show_result(
        run_agent(resume, thread_id=thread_id, action="reject", feedback=feedback, reviewer=reviewer, password=password)
    )


@app.command("resume", rich_help_panel="Agents", json_output=True)
def resume_cmd(
    thread_id: str = typer.Argument(..., help="an interrupted or failed thread (see `marginalia threads`)"),
    engine: str | None = typer.Option(
        None, "--engine", "-e", help="engine to continue with (default: the thread's own)"
    ),
    password: str | None = typer.Option(None, "--password", help=PASSWORD_HELP),
) -> None:
    """Continue a thread whose run died or failed, from its last checkpoint (finished steps do not run again)."""
    from ..api import resume

    _refuse_waiting(thread_id)
    show_result(run_agent(resume, thread_id=thread_id, engine=engine, password=password))


def _refuse_waiting(thread_id: str) -> None:
    """``resume`` continues runs that stopped; a thread waiting for a person is answered by
    ``approve``/``reject`` (the API's resume approves it, which a typo must not do)."""
    from ..config import open_store
    from ..runtime import state_location
    from ..threads import ThreadIndex, validate_thread_id

    with open_store() as store:
        record = ThreadIndex(store, state_location(store)).get(validate_thread_id(thread_id))
    if record is not None and record.status == "waiting":
        raise InvalidInput(
            f"thread {thread_id} waits for approval, it did not stop: answer it with  marginalia approve "
            f'{thread_id}  or  marginalia reject {thread_id} --feedback "what to change"'
        )


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def shown_status(record, store, state) -> str:
    """The index's status, except that a ``running`` thread no worker holds was ``interrupted``
    (its process died: no live lease)."""
    from ..lease import current_holder

    if record.status == "running" and current_holder(store, state, record.thread_id) is None:
        return "interrupted"
    return record.status


#: Statuses of a thread that stopped before its end and continues with ``marginalia resume``.
CONTINUABLE = ("interrupted", "failed")


def _unlock(store, state, thread_id: str | None) -> None:
    """``threads unlock THREAD``: release the lease of a run that died (refused while it is alive here)."""
    from ..lease import break_lease
    from ..threads import validate_thread_id

    if thread_id is None:
        raise InvalidInput("threads unlock: name the thread, e.g. marginalia threads unlock minutes-0123abcd")
    broken = break_lease(store, state, validate_thread_id(thread_id))
    if json_output():
        print_json({"thread_id": thread_id, "unlocked": broken is not None, "holder": broken and broken.holder})
        return
    if broken is None:
        console.print(f"thread {thread_id} has no live lease: nothing to unlock", highlight=False)
    else:
        console.print(
            f"unlocked thread {thread_id} (its lease was held by {broken.holder}); continue it with  "
            f"marginalia resume {thread_id}",
            highlight=False,
            soft_wrap=True,
        )


@app.command("threads", rich_help_panel="Agents", json_output=True)
def threads_cmd(
    action: str | None = typer.Argument(None, help="unlock: break the lease of a dead run of THREAD"),
    thread_id: str | None = typer.Argument(None, help="the thread to unlock"),
    pending: bool = typer.Option(False, "--pending", help="only threads waiting for approval"),
    failed: bool = typer.Option(False, "--failed", help="only threads that failed"),
) -> None:
    """Agent threads (newest first): status, age, object; how to continue interrupted or failed ones.

    With MARGINALIA_TEMPORAL set, Temporal-run threads are listed too (from their search attributes).
    ``marginalia threads unlock THREAD`` breaks the lease of a run that died elsewhere."""
    from ..config import open_store
    from ..runtime import state_location
    from ..threads import ThreadIndex

    if action not in (None, "unlock"):
        raise InvalidInput(f"threads: unknown action {action!r} (the only one is: unlock THREAD)")
    if missing_store() is not None:  # no store yet: no threads, and asking creates none
        if action == "unlock":
            require_store()
        _no_threads(pending, failed, " (it does not exist yet)")
        return
    store = open_store()
    state = state_location(store)
    if action == "unlock":
        _unlock(store, state, thread_id)
        return
    records = [r for r in ThreadIndex(store, state).list(pending=pending) if not failed or r.status == "failed"]
    from ..temporal.settings import TemporalSettings

    if TemporalSettings.configured():
        from ..temporal.cli_views import with_temporal_threads

        records = with_temporal_threads(records, pending=pending, failed=failed)
    if json_output():
        print_json([{**dataclasses.asdict(r), "status": shown_status(r, store, state)} for r in records])
        return
    if not records:
        _no_threads(pending, failed)
        return
    errors = any(r.error for r in records)
    table = Table("thread", "agent", "status", "age", "object", *(["error"] if errors else []), show_lines=False)
    rows, stopped = [], []
    for r in records:
        status = r.status if getattr(r, "on_temporal", False) else shown_status(r, store, state)
        row = [r.thread_id, r.agent, status, _age(r.age.total_seconds()), r.object_uri]
        rows.append(row + ([" ".join((r.error or "").split())] if errors else []))
        if status in CONTINUABLE and not getattr(r, "on_temporal", False) and not getattr(r, "permanent", False):
            stopped.append((r.thread_id, status))
    # thread ids and object URIs are copied into approve/reject/annotations: never folded; errors are cut
    print_table(console, table, rows, whole={0, 1, 2, 3, 4})
    for thread_id, status in stopped:
        console.print(
            f"{status}: continue it from its last checkpoint with  marginalia resume {thread_id}",
            highlight=False,
            soft_wrap=True,
        )


def _no_threads(pending: bool, failed: bool, why: str = "") -> None:
    if json_output():
        print_json([])
        return
    kind = "threads waiting for approval" if pending else "failed threads" if failed else "threads"
    console.print(f"no {kind} in the store {store_spec()}{why}", highlight=False, soft_wrap=True)


# --- demo --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoStep:
    """One step of ``marginalia demo``: ``run(store)`` returns the object URIs it annotated."""

    name: str
    description: str
    run: Callable[[Any], list[str]]


DEMO_BUCKET = "demo"


def demo_steps() -> list[DemoStep]:
    """The steps of ``marginalia demo``: each registered agent's ``demo`` hook, in registry order."""
    from ..agents import all_agents, load_hook

    return [load_hook(spec.demo) for spec in all_agents() if spec.demo]


def sample_path(name: str) -> Path:
    """A sample file shipped in the package (``marginalia/samples``)."""
    from importlib.resources import files

    path = Path(str(files("marginalia") / "samples" / name))
    if not path.is_file():
        raise InvalidInput(f"sample {name} is missing from the installed package ({path})")
    return path


def _demo_minutes(store) -> list[str]:
    from ..api import minutes

    sample = sample_path("standup.vtt")
    key = f"meetings/{sample.name}"
    store.put_object(DEMO_BUCKET, key, sample, content_type="text/vtt")
    result = run_agent(minutes, uri=f"s3://{DEMO_BUCKET}/{key}", engine="offline", approve=True, store=store)
    show_result(result)
    return [result.object_uri]


MINUTES_DEMO = DemoStep("minutes", "meeting minutes of a sample stand-up (approved with --yes)", _demo_minutes)


@app.command("demo", rich_help_panel="Agents", json_output=True)
def demo_cmd() -> None:
    """Run every agent once on the embedded defaults (local store, offline engine, bucket `demo`)."""
    from ..config import Settings, default_store, open_store

    settings = Settings.from_env()
    spec = settings.store if settings.is_local else default_store()
    store = open_store(spec)
    if not settings.is_local:  # never on a real bucket: the demo writes sample objects into `demo`
        console.print(
            f"MARGINALIA_STORE={settings.store} is not used: the demo runs on the local store {spec}",
            style="yellow",
            highlight=False,
            soft_wrap=True,
        )
    store.create_bucket(DEMO_BUCKET, exist_ok=True)
    if json_output():
        results: list = []
        token = _DEMO_RESULTS.set(results)
        try:
            steps = [{"name": step.name, "annotated": step.run(store)} for step in demo_steps()]
        finally:
            _DEMO_RESULTS.reset(token)
        print_json({"store": spec, "bucket": DEMO_BUCKET, "steps": steps, "results": results})
        return
    console.print(f"[bold]Marginalia demo[/] on {store.kind} store, offline engine, bucket s3://{DEMO_BUCKET}/")
    annotated: list[str] = []
    for step in demo_steps():
        console.rule(f"{step.name}: {step.description}")
        annotated += step.run(store)
    console.rule("where to look")
    console.print(f"annotations are on these objects of the local store ({getattr(store, 'root', store.kind)}):")
    prefix = "" if settings.is_local else f"MARGINALIA_STORE={spec} "  # the hints must read the demo's store
    for uri in annotated:
        hint(f"  {prefix}marginalia annotations {uri}")
    if shutil.which("marginalia") is None:  # installed in a virtualenv this shell has not activated
        venv = Path(sys.prefix)
        hint(f"`marginalia` is not on PATH: activate its environment first: . {venv}/bin/activate")
    waiting = _waiting_threads(store)
    if waiting:
        hint(f"{waiting} thread(s) wait for approval: {prefix}marginalia threads --pending")


def _waiting_threads(store) -> int:
    from ..runtime import state_location
    from ..threads import ThreadIndex

    return len(ThreadIndex(store, state_location(store)).list(pending=True))
