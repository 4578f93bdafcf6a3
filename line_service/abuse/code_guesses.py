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

The counts live in a `Ledger` (line_service/abuse/ledger.py): the service's is the database, so
a restart, a takeover or another process of a cluster never hands a guesser a fresh budget.
`judge` is the pure decision over the counts the ledger read (again under its lock, before it
counts anything).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatcher.model import LineId
from line_service.abuse.ledger import Charge, Ledger, MemoryLedger
from line_service.abuse.windows import Seen, free_in, within

IDENTITY_KEY = "code:"
LINE_KEY = "code-line:"


def identity_key(identity: str) -> str:
    """The ledger key of an identity's wrong codes."""
    return IDENTITY_KEY + identity


def line_key(line_id: LineId) -> str:
    """The ledger key of a line's wrong codes (each tagged with the identity that sent it)."""
    return LINE_KEY + line_id


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
    """A guess allowed on `lines`, charged at `at` (as `charge_id`) until refunded."""

    identity: str
    lines: tuple[LineId, ...]
    at: datetime
    charge_id: str = ""


@dataclass(frozen=True, slots=True)
class Locked:
    """No line may check this identity's code before `retry_after` has passed."""

    retry_after: timedelta
    reason: str  # "identity" (its own budget), "line" (alarmed or closed lines), "unavailable"


@dataclass(frozen=True, slots=True)
class LineAlarm:
    """A line whose wrong codes reached the alarm threshold, and who sent them."""

    line_id: LineId
    wrong_codes: int
    sources: tuple[str, ...]


def judge(
    limits: GuessLimits,
    identity: str,
    lines: tuple[LineId, ...],
    seen: Mapping[str, Seen],
    now: datetime,
    charge_id: str,
) -> tuple[Ticket | Locked, tuple[Charge, ...]]:
    """Pure: the verdict on one guess from the window's wrong codes, and what it charges."""
    window = limits.window
    own = free_in(seen.get(identity_key(identity), ()), limits.identity_budget, window, now)
    if own > timedelta(0):
        return Locked(own, "identity"), ()
    open_lines: list[LineId] = []
    waits: list[timedelta] = []
    for line_id in lines:
        events = within(seen.get(line_key(line_id), ()), window, now)
        wait = _line_wait(limits, events, identity, now)
        if wait > timedelta(0):
            waits.append(wait)
        else:
            open_lines.append(line_id)
    if not open_lines:
        return Locked(min(waits, default=window), "line"), ()
    charges = (
        Charge(identity_key(identity)),
        *(Charge(line_key(line_id), identity) for line_id in open_lines),
    )
    return Ticket(identity, tuple(open_lines), now, charge_id), charges


def _line_wait(limits: GuessLimits, events: Seen, identity: str, now: datetime) -> timedelta:
    """How long the line refuses this identity's codes (zero: it checks them now)."""
    if len(events) >= limits.line_budget:
        return free_in(events, limits.line_budget, limits.window, now)
    if len(events) < limits.line_alarm:
        return timedelta(0)
    own = [at for at, tag in events if tag == identity]
    if not own:
        return timedelta(0)
    calm = free_in(events, limits.line_alarm, limits.window, now)
    return min(own[-1] + limits.window - now, calm)


class CodeGuesses:
    """The wrong codes of the last window, by identity and by line, kept in a ledger; and the
    line alarms this process has open. Blocking when the ledger is a database's."""

    def __init__(self, limits: GuessLimits, ledger: Ledger | None = None) -> None:
        self.limits = limits
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self._watched: set[LineId] = set()  # lines charged here, whose alarm may open
        self._alarmed: set[LineId] = set()
        self._lock = threading.Lock()  # the sets above, changed from worker threads

    def begin(self, identity: str, lines: Iterable[LineId], now: datetime) -> Ticket | Locked:
        """Charge a guess to the identity and the lines still open to it, or refuse it."""
        asked = tuple(lines)
        keys = [identity_key(identity), *(line_key(line_id) for line_id in asked)]
        charge_id = uuid.uuid4().hex
        verdict = self.ledger.charge(
            keys,
            now - self.limits.window,
            now,
            charge_id,
            lambda seen: judge(self.limits, identity, asked, seen, now, charge_id),
        )
        if isinstance(verdict, Ticket):
            with self._lock:
                self._watched.update(verdict.lines)
        return verdict

    def refund(self, ticket: Ticket) -> None:
        """The code was right (or not a guess at all): take its charge back."""
        self.ledger.refund(ticket.charge_id)

    def wrong_codes(self, line_id: LineId, now: datetime) -> int:
        """The line's wrong codes in the window."""
        return len(self._line_events(line_id, now))

    def alarms(self, now: datetime) -> tuple[list[LineAlarm], list[LineId]]:
        """The alarms that opened and the lines whose alarm closed since the last call."""
        with self._lock:
            return self._alarms(now)

    def _alarms(self, now: datetime) -> tuple[list[LineAlarm], list[LineId]]:
        opened: list[LineAlarm] = []
        closed: list[LineId] = []
        for line_id in sorted(self._watched | self._alarmed):
            events = self._line_events(line_id, now)
            if not events:
                self._watched.discard(line_id)
            if len(events) >= self.limits.line_alarm and line_id not in self._alarmed:
                self._alarmed.add(line_id)
                sources = tuple(dict.fromkeys(tag for _at, tag in events))
                opened.append(LineAlarm(line_id, len(events), sources))
            elif len(events) < self.limits.line_alarm and line_id in self._alarmed:
                self._alarmed.discard(line_id)
                closed.append(line_id)
        return opened, closed

    @property
    def alarmed(self) -> frozenset[LineId]:
        """Lines whose alarm is open (as of the last `alarms` call)."""
        with self._lock:
            return frozenset(self._alarmed)

    def _line_events(self, line_id: LineId, now: datetime) -> Seen:
        seen = self.ledger.seen(line_key(line_id), now - self.limits.window)
        return within(seen, self.limits.window, now)
