"""Pure: service-hours text (`mon-fri: ["06:30-09:30"]`, as in lines.yaml) into core values."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import time

from dispatcher.model import ServiceHours, TimeWindow, Weekday

_ORDER = tuple(Weekday)
_SPAN = re.compile(r"^(\d\d):(\d\d)-(\d\d):(\d\d)$")


def weekdays(spec: str) -> list[Weekday]:
    """The days named by a key such as `mon-fri`, `sat` or `mon,wed-thu`; ValueError if bad."""
    found: list[Weekday] = []
    for part in (piece.strip() for piece in spec.split(",")):
        first, _, last = part.partition("-")
        try:
            start, end = _ORDER.index(Weekday(first)), _ORDER.index(Weekday(last or first))
        except ValueError as exc:
            raise ValueError(f"{part!r}: days are mon..sun, ranges like mon-fri") from exc
        if start > end:
            raise ValueError(f"{part!r}: a range must go forwards (mon-fri)")
        for day in _ORDER[start : end + 1]:
            if day in found:
                raise ValueError(f"{day.value} appears twice in {spec!r}")
            found.append(day)
    return found


def window(text: str) -> TimeWindow:
    """One `HH:MM-HH:MM` window of a day; ValueError unless it is well formed and starts first."""
    match = _SPAN.match(text)
    if match is None:
        raise ValueError(f"{text!r}: expected HH:MM-HH:MM, e.g. 06:30-09:30")
    h1, m1, h2, m2 = (int(group) for group in match.groups())
    if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
        raise ValueError(f"{text!r}: hours are 00-23 and minutes 00-59")
    start, end = time(h1, m1), time(h2, m2)
    if start >= end:
        raise ValueError(f"{text!r}: the window must start before it ends")
    return TimeWindow(start=start, end=end)


def service_hours(spec: Mapping[str, Sequence[str]] | None) -> ServiceHours | None:
    """The core's ServiceHours for a mapping of day keys to windows (None = always open)."""
    if spec is None:
        return None
    windows: dict[Weekday, tuple[TimeWindow, ...]] = {}
    for key, texts in spec.items():
        for day in weekdays(key):
            windows[day] = (*windows.get(day, ()), *(window(text) for text in texts))
    return ServiceHours(windows=windows)


def open_minutes_by_hour(hours: ServiceHours | None, day: Weekday) -> dict[int, int]:
    """How many minutes of each local hour (0-23) the line is open on `day`."""
    if hours is None:
        return dict.fromkeys(range(24), 60)
    spans = hours.windows.get(day, ())
    result: dict[int, int] = {}
    for hour in range(24):
        lo, hi = hour * 60, hour * 60 + 60
        total = 0
        for span in spans:
            start = span.start.hour * 60 + span.start.minute
            end = span.end.hour * 60 + span.end.minute
            total += max(0, min(hi, end) - max(lo, start))
        if total:
            result[hour] = min(total, 60)
    return result
