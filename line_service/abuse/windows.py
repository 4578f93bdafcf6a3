"""Pure: sliding-window arithmetic over the events a ledger holds, with the time passed in.

An event is `(at, tag)`: when it was counted and a free-form tag (a line's events are tagged
with the identity that caused them). An event counts while `now - at < window`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

Seen = tuple[tuple[datetime, str], ...]
"""A key's events, oldest first."""


def within(events: Seen, window: timedelta, now: datetime) -> Seen:
    """The events still in the window at `now`, oldest first."""
    return tuple(sorted(event for event in events if now - event[0] < window))


def free_in(events: Seen, limit: int, window: timedelta, now: datetime) -> timedelta:
    """How long until fewer than `limit` of `events` are in the window (zero if already)."""
    found = within(events, window, now)
    if len(found) < limit:
        return timedelta(0)
    return found[len(found) - limit][0] + window - now
