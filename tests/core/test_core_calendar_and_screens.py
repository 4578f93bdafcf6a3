"""Service hours (local time, DST) and the opening hours a closed terminal shows."""

from __future__ import annotations

from datetime import UTC, datetime, time

import pytest

from dispatcher.model import Line, Network, ServiceHours, TimeWindow, Weekday
from dispatcher.service_calendar import is_open
from dispatcher.terminal_screens import opening_hours_text
from tests.core.core_kit import LINE

MORNING = (TimeWindow(time(6, 30), time(9, 30)),)
BOTH = (TimeWindow(time(6, 30), time(9, 30)), TimeWindow(time(16, 0), time(19, 30)))


def main_line(network: Network) -> Line:
    line = network.line(LINE)
    assert line is not None
    return line


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2025, 3, 4, 5, 29, 59, tzinfo=UTC), False),  # Tue 06:29:59 CET
        (datetime(2025, 3, 4, 5, 30, tzinfo=UTC), True),  # Tue 06:30 CET: start is inclusive
        (datetime(2025, 3, 4, 8, 29, 59, tzinfo=UTC), True),
        (datetime(2025, 3, 4, 8, 30, tzinfo=UTC), False),  # Tue 09:30 CET: end is exclusive
        (datetime(2025, 3, 4, 15, 0, tzinfo=UTC), True),  # Tue 16:00 CET
        (datetime(2025, 3, 8, 7, 0, tzinfo=UTC), False),  # Saturday
        (datetime(2025, 3, 31, 4, 30, tzinfo=UTC), True),  # Mon 06:30 CEST, after the DST change
        (datetime(2025, 3, 31, 5, 30, tzinfo=UTC), True),  # Mon 07:30 CEST
        (datetime(2025, 3, 31, 7, 30, tzinfo=UTC), False),  # Mon 09:30 CEST
        (datetime(2025, 3, 2, 23, 30, tzinfo=UTC), False),  # Mon 00:30 in Paris, Sun in UTC
    ],
)
def test_is_open_reads_the_windows_in_the_line_timezone(
    at: datetime, expected: bool, peak_network: Network
) -> None:
    assert is_open(main_line(peak_network), at) is expected


def test_a_line_without_service_hours_is_always_open(network: Network) -> None:
    assert is_open(main_line(network), datetime(2025, 3, 9, 3, 0, tzinfo=UTC))


def test_opening_hours_merge_following_days_only(network: Network) -> None:
    def hours(windows: dict[Weekday, tuple[TimeWindow, ...]]) -> tuple[str, ...]:
        line = Line(LINE, "L", "Europe/Paris", (), service_hours=ServiceHours(windows))
        return opening_hours_text(line)

    weekdays = {day: BOTH for day in (Weekday.MON, Weekday.TUE, Weekday.WED, Weekday.THU)}
    assert hours({**weekdays, Weekday.FRI: BOTH}) == ("lun-ven 06:30-09:30 16:00-19:30",)
    assert hours({Weekday.MON: MORNING, Weekday.WED: MORNING}) == (
        "lun 06:30-09:30",
        "mer 06:30-09:30",
    )
    assert hours({Weekday.SAT: MORNING, Weekday.MON: MORNING, Weekday.TUE: MORNING}) == (
        "lun-mar 06:30-09:30",
        "sam 06:30-09:30",
    )
    assert hours({Weekday.MON: BOTH, Weekday.TUE: MORNING, Weekday.WED: MORNING}) == (
        "lun 06:30-09:30 16:00-19:30",
        "mar-mer 06:30-09:30",
    )
    assert hours({Weekday.MON: (), Weekday.TUE: MORNING}) == ("mar 06:30-09:30",)
    assert opening_hours_text(main_line(network)) == ()
