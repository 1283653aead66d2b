"""How the CLI shows times in its tables: compact enough for an 80-column terminal, never ambiguous."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable


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
