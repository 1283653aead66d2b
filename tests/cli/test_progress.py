"""The CLI's progress bar is fed by the nodes' progress events (LangGraph's stream writer,
``stream_mode="custom"``): chunks done / total for minutes, pages done / total for PDFs.

Before, the CLI counted ``extract_chunk`` updates by node name (no total, nothing for PDFs)."""

from __future__ import annotations

import io

from rich.console import Console

import marginalia
from marginalia.cli.agent_cmds import Progress
from marginalia.progress import PROGRESS
from marginalia.testing.cli import run_cli


class StatusLine:
    """Stands in for rich's Status: keeps what the line showed, as text."""

    def __init__(self):
        self.shown: list[str] = []

    def update(self, renderable) -> None:
        out = Console(file=io.StringIO(), width=120)
        out.print(renderable)
        self.shown.append(out.file.getvalue().strip())


def test_minutes_and_pdf_runs_report_progress_events_that_drive_the_bar(store_env, tmp_path):
    assert run_cli("samples", str(tmp_path / "in"))[0] == 0
    assert run_cli("mb", "demo")[0] == 0
    assert run_cli("put", str(tmp_path / "in" / "standup.vtt"), "s3://demo/standup.vtt")[0] == 0
    assert run_cli("put", str(tmp_path / "in" / "q3.pdf"), "s3://demo/q3.pdf")[0] == 0

    events: list[dict] = []
    line = StatusLine()
    bar = Progress(line)

    def observe(node, update):
        if node == PROGRESS:
            events.append(update)
        bar(node, update)

    result = marginalia.minutes("s3://demo/standup.vtt", chunk_chars=400, on_update=observe)
    chunks = [e for e in events if e["progress"] == "chunks"]
    total = chunks[0]["total"]
    assert total >= 3 and chunks[0]["range"] == [0, 0]  # the plan announces the total first
    assert sorted(e["range"][0] for e in chunks[1:]) == list(range(total))  # then each chunk, once
    assert any(s.startswith("chunks") and s.endswith(f"{total}/{total}") for s in line.shown)
    assert result.status == "waiting"

    events.clear()
    marginalia.summarize("s3://demo/q3.pdf", chunk_pages=1, on_update=observe)
    pages = [e for e in events if e["progress"] == "pages"]
    assert pages[0] == {"progress": "pages", "range": [0, 0], "total": 3}  # q3.pdf has 3 pages
    assert sorted(tuple(e["range"]) for e in pages[1:]) == [(0, 1), (1, 2), (2, 3)]  # one chunk a page
    assert any(s.startswith("pages") and s.endswith("3/3") for s in line.shown)


def test_a_fan_out_is_one_line_and_the_bar_counts_its_tasks(capsys):
    line = StatusLine()
    bar = Progress(line)
    bar(PROGRESS, {"progress": "chunks", "range": [0, 0], "total": 3})
    for i in (2, 0, 1):  # tasks finish in any order
        bar(PROGRESS, {"progress": "chunks", "range": [i, i + 1], "total": 3})
        bar("extract_chunk", {})
    assert [s.split()[-1] for s in line.shown if s.startswith("chunks")] == ["0/3", "1/3", "2/3", "3/3"]


def test_a_fan_out_in_waves_is_still_one_line(capsys):
    """The minutes send a long meeting's chunks in waves joined by ``next_wave``: the steps shown
    are the same as for one wave (no line per wave, no line for the join)."""
    bar = Progress(StatusLine())
    for node in ("plan", "extract_chunk", "extract_chunk", "next_wave", "extract_chunk", "next_wave", "merge"):
        bar(node, {})
    lines = [line.strip() for line in capsys.readouterr().out.splitlines() if line.strip()]
    assert lines == ["✓ plan", "✓ extract_chunk", "✓ merge"]
