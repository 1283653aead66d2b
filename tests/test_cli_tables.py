"""How the CLI's tables show times: a clock, with the date only where the day changes."""

from __future__ import annotations

from marginalia.cli.formatting import clock_times


def test_clock_times_show_the_date_on_the_first_row_and_when_the_day_changes():
    stamps = [
        "2026-06-09T09:00:00.123456+00:00",
        "2026-06-09T09:00:01.5+00:00",
        "2026-06-12T08:30:00+02:00",  # three days later, in another zone: shown in UTC
        "2026-06-12T06:31:00+00:00",
        None,
        "not a time",
    ]
    assert clock_times(stamps) == [
        "2026-06-09 09:00:00",
        "09:00:01",
        "2026-06-12 06:30:00",
        "06:31:00",
        "",
        "not a time",
    ]
