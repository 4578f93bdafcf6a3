"""Pure: a sliding-window rate limit per key (a phone number), with the time passed in."""

from __future__ import annotations

from collections import deque
from datetime import datetime, timedelta
from enum import StrEnum


class Verdict(StrEnum):
    """What to do with one more message from a key."""

    ALLOWED = "allowed"
    REFUSED = "refused"  # over the limit: answer politely, once per window
    SILENT = "silent"  # still over the limit and already told: answer nothing


class RateLimit:
    """At most `limit` messages per `window` per key; memory bounded by pruning idle keys."""

    def __init__(self, limit: int, window: timedelta, max_keys: int = 100_000) -> None:
        self._limit = limit
        self._window = window
        self._max_keys = max_keys
        self._seen: dict[str, deque[datetime]] = {}
        self._told: dict[str, datetime] = {}

    def check(self, key: str, now: datetime) -> Verdict:
        """Count one message from `key` at `now` and say whether to serve it."""
        if len(self._seen) >= self._max_keys:
            self._prune(now)
        times = self._seen.setdefault(key, deque())
        while times and now - times[0] >= self._window:
            times.popleft()
        if len(times) < self._limit:
            times.append(now)
            self._told.pop(key, None)
            return Verdict.ALLOWED
        told = self._told.get(key)
        if told is not None and now - told < self._window:
            return Verdict.SILENT
        self._told[key] = now
        return Verdict.REFUSED

    def _prune(self, now: datetime) -> None:
        idle = [
            k for k, times in self._seen.items() if not times or now - times[-1] >= self._window
        ]
        for key in idle:
            self._seen.pop(key, None)
            self._told.pop(key, None)
        if len(self._seen) >= self._max_keys:  # all keys busy: forget the oldest half
            for key in list(self._seen)[: self._max_keys // 2]:
                self._seen.pop(key, None)
                self._told.pop(key, None)
