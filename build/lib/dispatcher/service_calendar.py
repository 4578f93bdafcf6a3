"""Pure: is a line open at a given instant, by its local service hours and closed dates."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from dispatcher.model import Line, Weekday

_WEEKDAYS = tuple(Weekday)


def is_open(line: Line, now: datetime) -> bool:
    """True when `now` (aware) falls in one of the line's windows, in the line's timezone."""
    if line.service_hours is None:
        return True
    local = now.astimezone(ZoneInfo(line.timezone))
    if local.date() in line.service_hours.closed_dates:
        return False
    windows = line.service_hours.windows.get(_WEEKDAYS[local.weekday()], ())
    clock = local.time().replace(tzinfo=None)
    return any(window.start <= clock < window.end for window in windows)
