"""Port: where the abuse limits keep their counts — charges by key, each with a time, a tag and
the id of the charge it belongs to — and the in-memory ledger of the tests and tools.

`charge` is the one way to count: it reads the keys' events in the window, lets a pure
`decide` choose from them what to add, and adds it, all under one lock on those keys, so that
two callers (two threads, or two processes on one database) can never both take the last
try. The service's ledger is the database's (line_service/storage/abuse_ledger.py): budgets
survive restarts and are one for every process of a cluster.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

from line_service.abuse.windows import Seen

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Charge:
    """One event to count against `key`, tagged `tag`."""

    key: str
    tag: str = ""


Decide = Callable[[Mapping[str, Seen]], tuple[T, Sequence[Charge]]]
"""From the keys' events in the window (every asked key is present): a verdict, and what to
count (at the charge's time, under its id)."""


class Ledger(Protocol):
    """Counts by key, shared by whoever holds the same ledger."""

    def charge(
        self, keys: Sequence[str], since: datetime, at: datetime, charge_id: str, decide: Decide[T]
    ) -> T:
        """Atomically: read the keys' events after `since`, decide, count what was decided. A
        decision that counts nothing (a refusal) may be made on a read taken without the lock:
        `decide` must be pure, and refuse only on counts that cannot fall but by age or
        refunds."""
        ...

    def refund(self, charge_id: str) -> None:
        """Take back every event counted under `charge_id` (nothing if already gone)."""
        ...

    def seen(self, key: str, since: datetime) -> Seen:
        """The key's events after `since`, oldest first."""
        ...

    def forget_before(self, cutoff: datetime) -> int:
        """Drop the events counted before `cutoff`; how many went."""
        ...


class MemoryLedger:
    """A ledger in this process's memory (forgotten on exit): tests and tools."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[str, list[tuple[datetime, str, str]]] = {}

    def charge(
        self, keys: Sequence[str], since: datetime, at: datetime, charge_id: str, decide: Decide[T]
    ) -> T:
        with self._lock:
            seen = {key: self._seen(key, since) for key in keys}
            verdict, charges = decide(seen)
            for charge in charges:
                self._events.setdefault(charge.key, []).append((at, charge.tag, charge_id))
            return verdict

    def refund(self, charge_id: str) -> None:
        with self._lock:
            for key, events in list(self._events.items()):
                kept = [event for event in events if event[2] != charge_id]
                if kept:
                    self._events[key] = kept
                else:
                    del self._events[key]

    def seen(self, key: str, since: datetime) -> Seen:
        with self._lock:
            return self._seen(key, since)

    def forget_before(self, cutoff: datetime) -> int:
        with self._lock:
            gone = 0
            for key, events in list(self._events.items()):
                kept = [event for event in events if event[0] >= cutoff]
                gone += len(events) - len(kept)
                if kept:
                    self._events[key] = kept
                else:
                    del self._events[key]
            return gone

    def _seen(self, key: str, since: datetime) -> Seen:
        return tuple(sorted((at, tag) for at, tag, _id in self._events.get(key, ()) if at > since))
