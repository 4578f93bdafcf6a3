"""Pure: how many wrong drivers' codes an identity, and a line, may send before codes stop being
checked for them — the rule that makes guessing a 4-digit code hopeless.

Theory of operation
-------------------
A driver's code is a guess until it is checked. Every check is charged *before* it is made
(`begin`), as a wrong code, to the identity that sent it (SMS: the number's salted hash; HTTP:
the caller's account, for now its address) and to every line it probes (HTTP names one line; a
code by SMS names none and is looked up on all of them); a code that was right is refunded
(`refund`). Charging first means that concurrent guesses cannot slip past a budget together.

Over the sliding `window`:
- an identity with `identity_budget` wrong codes is refused everywhere (Locked);
- a line with `line_alarm` wrong codes is *alarmed*: identities with a wrong code on it in the
  window are refused there; identities that never failed are still checked, so an honest
  driver's right code works during an attack;
- a line with `line_budget` wrong codes is *closed*: no code is checked on it until its count
  falls below the budget again. This is what bounds a thousand identities: whoever sends them,
  a line never sees more than `line_budget` wrong codes a window. A closed line's riders still
  leave (PARTI, the terminal), the signs still go dark; only the proof by code waits.

A refused guess is answered alike whether or not the code is held (the caller learns nothing);
a code by SMS is only looked up on the lines still open to its sender (`Ticket.lines`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatcher.model import LineId
from line_service.abuse.windows import SlidingWindow


@dataclass(frozen=True, slots=True)
class GuessLimits:
    """The budgets (see the module docstring and docs/RELIABILITY.md for the arithmetic)."""

    identity_budget: int = 5
    line_alarm: int = 10
    line_budget: int = 20
    window: timedelta = timedelta(hours=24)

    def __post_init__(self) -> None:
        if not (self.identity_budget >= 1 and 1 <= self.line_alarm <= self.line_budget):
            raise ValueError("budgets must be positive, the alarm at most the line's budget")


@dataclass(frozen=True, slots=True)
class Ticket:
    """A guess allowed on `lines`, charged at `at` until refunded."""

    identity: str
    lines: tuple[LineId, ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class Locked:
    """No line may check this identity's code before `retry_after` has passed."""

    retry_after: timedelta
    reason: str  # "identity" (its own budget) or "line" (alarmed or closed lines)


@dataclass(frozen=True, slots=True)
class LineAlarm:
    """A line whose wrong codes reached the alarm threshold, and who sent them."""

    line_id: LineId
    wrong_codes: int
    sources: tuple[str, ...]


class CodeGuesses:
    """The wrong codes of the last window, by identity and by line."""

    def __init__(self, limits: GuessLimits) -> None:
        self.limits = limits
        self._by_identity: SlidingWindow[str] = SlidingWindow(limits.window)
        self._by_line: SlidingWindow[LineId] = SlidingWindow(limits.window)
        self._alarmed: set[LineId] = set()

    def begin(self, identity: str, lines: Iterable[LineId], now: datetime) -> Ticket | Locked:
        """Charge a guess to the identity and the lines still open to it, or refuse it."""
        limits = self.limits
        own = self._by_identity.free_in(identity, limits.identity_budget, now)
        if own > timedelta(0):
            return Locked(own, "identity")
        open_lines: list[LineId] = []
        waits: list[timedelta] = []
        for line_id in lines:
            wait = self._line_wait(line_id, identity, now)
            if wait > timedelta(0):
                waits.append(wait)
            else:
                open_lines.append(line_id)
        if not open_lines:
            return Locked(min(waits, default=limits.window), "line")
        self._by_identity.add(identity, now)
        for line_id in open_lines:
            self._by_line.add(line_id, now, identity)
        return Ticket(identity, tuple(open_lines), now)

    def refund(self, ticket: Ticket) -> None:
        """The code was right (or not a guess at all): take its charge back."""
        self._by_identity.remove(ticket.identity, ticket.at)
        for line_id in ticket.lines:
            self._by_line.remove(line_id, ticket.at, ticket.identity)

    def wrong_codes(self, line_id: LineId, now: datetime) -> int:
        """The line's wrong codes in the window."""
        return self._by_line.count(line_id, now)

    def alarms(self, now: datetime) -> tuple[list[LineAlarm], list[LineId]]:
        """The alarms that opened and the lines whose alarm closed since the last call."""
        opened: list[LineAlarm] = []
        for line_id in self._by_line.busy_keys():
            events = self._by_line.events(line_id, now)
            if len(events) >= self.limits.line_alarm and line_id not in self._alarmed:
                self._alarmed.add(line_id)
                sources = tuple(dict.fromkeys(tag for _at, tag in events))
                opened.append(LineAlarm(line_id, len(events), sources))
        closed = [
            line_id
            for line_id in sorted(self._alarmed)
            if self._by_line.count(line_id, now) < self.limits.line_alarm
        ]
        self._alarmed.difference_update(closed)
        return opened, closed

    @property
    def alarmed(self) -> frozenset[LineId]:
        """Lines whose alarm is open (as of the last `alarms` call)."""
        return frozenset(self._alarmed)

    def _line_wait(self, line_id: LineId, identity: str, now: datetime) -> timedelta:
        """How long the line refuses this identity's codes (zero: it checks them now)."""
        limits = self.limits
        events = self._by_line.events(line_id, now)
        if len(events) >= limits.line_budget:
            return self._by_line.free_in(line_id, limits.line_budget, now)
        if len(events) < limits.line_alarm:
            return timedelta(0)
        own = [at for at, tag in events if tag == identity]
        if not own:
            return timedelta(0)
        calm = self._by_line.free_in(line_id, limits.line_alarm, now)
        return min(own[-1] + limits.window - now, calm)
