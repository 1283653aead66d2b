"""How the CLI's tables fit a terminal: times compact enough for 80 columns and never ambiguous;
keys, URIs and thread ids never folded (:func:`fit_table`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Sequence

from rich.cells import cell_len
from rich.console import Console
from rich.segment import Segments
from rich.table import Table
from rich.text import Text

#: A column cut to fit keeps at least this many cells (or its whole width when narrower).
_NARROWEST = 6


def clock_times(stamps: Iterable[str | None]) -> list[str]:
    """ISO-8601 timestamps as table cells: ``HH:MM:SS`` (UTC), with the date in front on the first
    row and wherever the day changes (a thread may wait days for its reviewer). Tables that show
    these also show durations, so the clock needs no fractions."""
    cells, day = [], None
    for stamp in stamps:
        try:
            when = dt.datetime.fromisoformat(stamp or "")
        except ValueError:
            cells.append(stamp or "")
            continue
        if when.tzinfo is not None:
            when = when.astimezone(dt.UTC)
        clock = f"{when:%H:%M:%S}"
        cells.append(clock if when.date() == day else f"{when:%Y-%m-%d} {clock}")
        day = when.date()
    return cells


def fit_table(table: Table, rows: Sequence[Sequence[Text]], *, whole: Collection[int], width: int) -> int:
    """Size ``table``'s columns for ``rows`` on a terminal ``width`` columns wide; return the width
    the table then takes (more than ``width`` only when the whole columns alone do not fit).

    The ``whole`` columns (keys, URIs, thread ids: what people copy) keep their full width and are
    never folded or cut; the others share what remains, each cut with "…" when it does not fit.
    """
    columns = table.columns
    natural = [cell_len(str(c.header)) for c in columns]
    for row in rows:
        for i, cell in enumerate(row):
            natural[i] = max(natural[i], cell_len(cell.plain))
    _, right, _, left = table.padding
    chrome = (left + right) * len(columns) - (0 if table.pad_edge else left + right)
    if table.box:
        chrome += len(columns) - 1 + (2 if table.show_edge else 0)
    widths = list(natural)
    others = sorted((i for i in range(len(columns)) if i not in whole), key=lambda i: natural[i])
    room = width - chrome - sum(natural[i] for i in whole)
    for n, i in enumerate(others):  # narrow columns first: what they leave goes to the wider ones
        widths[i] = min(natural[i], max(room // (len(others) - n), _NARROWEST))
        room -= widths[i]
    for i, column in enumerate(columns):
        column.width, column.min_width, column.max_width, column.ratio = widths[i], None, None, None
        column.no_wrap, column.overflow = True, "ellipsis"
    table.expand = False
    return chrome + sum(widths)


def print_table(
    console: Console, table: Table, rows: Sequence[Sequence[str | Text]], *, whole: Collection[int]
) -> None:
    """Print ``table`` with ``rows`` (plain text, never markup: a key such as ``logs/[bold]/x`` shows
    as it is), fitted to the console by :func:`fit_table`. A table that cannot fit loses its box
    (the terminal then wraps its lines, with no borders in between), and its lines are written
    whole: a key, URI or thread id is never folded or cropped, so a copied one works."""
    cells = [[cell if isinstance(cell, Text) else Text(cell) for cell in row] for row in rows]
    width = fit_table(table, cells, whole=whole, width=console.width)
    if width > console.width and table.box:
        table.box = None
        width = fit_table(table, cells, whole=whole, width=console.width)
    for row in cells:
        table.add_row(*row)
    lines = console.render_lines(table, console.options.update_width(width), pad=False, new_lines=True)
    console.print(Segments([segment for line in lines for segment in line]), crop=False, soft_wrap=True)
