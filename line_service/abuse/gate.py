"""Shell: the one place every channel asks whether a driver's code may be checked, or a new ride
request made — the policies of `code_guesses` and `request_rates` with the service's clock,
their logs, and the line alarms told to the core (which shows operators a CODE_GUESSING alert).

Identities are opaque strings chosen by the channels: `phone:<salted hash>` for a number (SMS,
later voice, and an app request that gives one), `addr:<client address>` over HTTP until the
caller has an account (`account:<id>`). Logs name identities only, never a number.

The counts live in the gate's `Ledger`: the service's is the database (a restart, a takeover
or another process of a cluster counts on from the same charges), so every count is blocking
I/O, run in a worker thread. A ledger that fails refuses the code (a minute's wait, logged)
and admits the request: codes guard money, a ride request only a seat. What stays in memory
is per process: the metrics, which alarms this process told the core, and whom it told by SMS
that it was refused (after a restart a refused number may get that one text again).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog

from dispatcher.events import CodeGuessingReported, Event
from dispatcher.model import LineId
from line_service.abuse.code_guesses import CodeGuesses, GuessLimits, Locked, Ticket
from line_service.abuse.ledger import Ledger, MemoryLedger
from line_service.abuse.request_rates import RequestLimiter, RequestRates

log = structlog.get_logger(__name__)

PHONE = "phone:"
ACCOUNT = "account:"
SWEEP_EVERY = timedelta(minutes=1)
MAX_TOLD = 100_000
UNAVAILABLE_WAIT = timedelta(minutes=1)


class AbuseGate:
    """Wrong-code budgets and request rates, for every channel."""

    def __init__(
        self,
        limits: GuessLimits,
        rates: RequestRates,
        clock: Callable[[], datetime],
        report: Callable[[Event], None],
        phone_hasher: Callable[[str], str],
        sweep_every: timedelta = SWEEP_EVERY,
        ledger: Ledger | None = None,
    ) -> None:
        ledger = ledger if ledger is not None else MemoryLedger()
        self.guesses = CodeGuesses(limits, ledger)
        self.requests = RequestLimiter(rates, ledger)
        self._clock = clock
        self._report = report
        self._hash = phone_hasher
        self._sweep_every = sweep_every
        self._sweep: asyncio.TimerHandle | None = None
        self._sweeping: asyncio.Task[None] | None = None
        self._told_until: dict[str, datetime] = {}
        self.wrong_codes = 0
        self.refused_guesses = 0
        self.refused_requests = 0

    def phone_identity(self, phone: str) -> str:
        """The identity of a phone number (E.164): its salted hash."""
        return PHONE + self._hash(phone)

    async def begin_guess(self, identity: str, lines: tuple[LineId, ...]) -> Ticket | Locked:
        """Charge a driver's code before it is checked, or refuse it (see `code_guesses`)."""
        try:
            verdict = await asyncio.to_thread(self.guesses.begin, identity, lines, self._clock())
        except Exception as exc:  # no count, no check: a guesser must not gain from an outage
            log.error("abuse.ledger_failed", action="charge", error=str(exc)[:200])
            verdict = Locked(UNAVAILABLE_WAIT, "unavailable")
        if isinstance(verdict, Locked):
            self.refused_guesses += 1
            log.debug(  # a flood of refusals must not flood the log: the metrics count them
                "abuse.code_refused",
                identity=identity,
                reason=verdict.reason,
                retry_after=int(verdict.retry_after.total_seconds()),
            )
        return verdict

    async def guess_was_wrong(self, ticket: Ticket) -> None:
        """The code matched no rider on the ticket's lines: the charge stays."""
        self.wrong_codes += 1
        log.info("abuse.wrong_code", identity=ticket.identity, lines=list(ticket.lines))
        await self._settle()

    async def guess_was_right(self, ticket: Ticket) -> None:
        """The code was a rider's (or no guess): take the charge back."""
        try:
            await asyncio.to_thread(self.guesses.refund, ticket)
        except Exception as exc:  # the charge stays: one try lost, never one gained
            log.error("abuse.ledger_failed", action="refund", error=str(exc)[:200])
        await self._settle()

    async def admit_request(
        self, identity: str | None, address: str | None = None
    ) -> timedelta | None:
        """Count a new ride request; None if allowed, else how long to wait."""
        try:
            wait = await asyncio.to_thread(
                self.requests.admit, self._clock(), identity=identity, address=address
            )
        except Exception as exc:
            log.error("abuse.ledger_failed", action="admit", error=str(exc)[:200])
            return None
        if wait is not None:
            self.refused_requests += 1
            log.debug(
                "abuse.request_refused",
                identity=identity,
                address=address,
                retry_after=int(wait.total_seconds()),
            )
        return wait

    def first_refusal(self, identity: str, kind: str, retry_after: timedelta) -> bool:
        """True the first time `identity` is refused `kind` within `retry_after` (SMS: one text
        says so, then silence until the wait is over)."""
        now = self._clock()
        key = f"{kind}:{identity}"
        until = self._told_until.get(key)
        if until is not None and now < until:
            return False
        if len(self._told_until) >= MAX_TOLD:
            self._told_until = {k: t for k, t in self._told_until.items() if now < t}
            if len(self._told_until) >= MAX_TOLD:  # all still silent: forget the oldest half
                self._told_until = dict(list(self._told_until.items())[MAX_TOLD // 2 :])
        self._told_until[key] = now + retry_after
        return True

    async def _settle(self) -> None:
        try:
            opened, closed = await asyncio.to_thread(self.guesses.alarms, self._clock())
        except Exception as exc:  # the next guess, or the sweep, tries again
            log.error("abuse.ledger_failed", action="alarms", error=str(exc)[:200])
            opened, closed = [], []
        for alarm in opened:
            log.warning(
                "abuse.code_guessing",
                line=alarm.line_id,
                wrong_codes=alarm.wrong_codes,
                sources=list(alarm.sources[:20]),
            )
            self._report(
                CodeGuessingReported(alarm.line_id, True, alarm.wrong_codes, alarm.sources)
            )
        for line_id in closed:
            log.info("abuse.code_guessing_over", line=line_id)
            self._report(CodeGuessingReported(line_id, False))
        self._arm_sweep()

    def _arm_sweep(self) -> None:
        if self.guesses.alarmed and self._sweep is None and self._sweeping is None:
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_later(self._sweep_every.total_seconds(), self._sweep_later)

    def _sweep_later(self) -> None:
        self._sweep = None
        self._sweeping = asyncio.get_running_loop().create_task(self._swept(), name="abuse-sweep")

    async def _swept(self) -> None:
        try:
            await self.sweep()
        finally:
            self._sweeping = None
        self._arm_sweep()

    async def sweep(self) -> None:
        """Close the alarms whose wrong codes aged out of the window; re-arm while any is open."""
        await self._settle()
