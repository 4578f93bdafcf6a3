"""Pure: sliding-window counts of events by key, with the time passed in.

A key's events older than the window are forgotten when the key is next looked at; memory is
bounded by dropping idle keys (and, if every key is busy, the oldest half) past `max_keys`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


class SlidingWindow(Generic[Key]):
    """Events per key over the last `window` (each event: its time and a free-form tag)."""

    def __init__(self, window: timedelta, max_keys: int = 100_000) -> None:
        if window <= timedelta(0):
            raise ValueError("the window must be positive")
        self.window = window
        self._max_keys = max_keys
        self._events: dict[Key, deque[tuple[datetime, str]]] = {}

    def events(self, key: Key, now: datetime) -> tuple[tuple[datetime, str], ...]:
        """The key's events still in the window at `now`, oldest first."""
        found = self._events.get(key)
        if found is None:
            return ()
        while found and now - found[0][0] >= self.window:
            found.popleft()
        if not found:
            del self._events[key]
            return ()
        return tuple(found)

    def count(self, key: Key, now: datetime) -> int:
        """How many events of the key are in the window at `now`."""
        return len(self.events(key, now))

    def add(self, key: Key, at: datetime, tag: str = "") -> None:
        """Count one event of the key at `at` (times must not go backwards per key)."""
        if key not in self._events and len(self._events) >= self._max_keys:
            self._prune(at)
        self._events.setdefault(key, deque()).append((at, tag))

    def remove(self, key: Key, at: datetime, tag: str = "") -> None:
        """Take back one event counted by `add` (nothing if it is gone already)."""
        found = self._events.get(key)
        if found is not None and (at, tag) in found:
            found.remove((at, tag))

    def free_in(self, key: Key, limit: int, now: datetime) -> timedelta:
        """How long until the key has fewer than `limit` events (zero if it has already)."""
        found = self.events(key, now)
        if len(found) < limit:
            return timedelta(0)
        return found[len(found) - limit][0] + self.window - now

    def busy_keys(self) -> list[Key]:
        """Every key with events (some may have aged out of the window)."""
        return list(self._events)

    def _prune(self, now: datetime) -> None:
        for key in list(self._events):
            self.events(key, now)
        if len(self._events) >= self._max_keys:
            for key in list(self._events)[: self._max_keys // 2]:
                del self._events[key]
