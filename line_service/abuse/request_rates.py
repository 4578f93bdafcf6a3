"""Pure: how many new ride requests one identity and one client address may make a window.

A request is admitted only if every key it carries (the rider's identity — a phone's salted
hash, later an account — and, over HTTP, the client address) is under its limit; it is then
counted against all of them. An address is allowed more than an identity: riders behind one
carrier-grade NAT share it. The counts live in a `Ledger` (the service's: the database), like
the wrong codes'.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from line_service.abuse.ledger import Charge, Ledger, MemoryLedger
from line_service.abuse.windows import Seen, free_in

IDENTITY = "request:"
ADDRESS = "request-address:"


@dataclass(frozen=True, slots=True)
class RequestRates:
    """New ride requests allowed per identity and per client address over `window`."""

    per_identity: int = 4
    per_address: int = 20
    window: timedelta = timedelta(minutes=15)


def limited_keys(
    rates: RequestRates, identity: str | None, address: str | None
) -> tuple[tuple[str, int], ...]:
    """The ledger keys one request is counted against, each with its limit."""
    keys: list[tuple[str, int]] = []
    if identity is not None:
        keys.append((IDENTITY + identity, rates.per_identity))
    if address is not None:
        keys.append((ADDRESS + address, rates.per_address))
    return tuple(keys)


def judge_request(
    rates: RequestRates,
    keys: tuple[tuple[str, int], ...],
    seen: Mapping[str, Seen],
    now: datetime,
) -> tuple[timedelta | None, tuple[Charge, ...]]:
    """Pure: None and one event per key if every key is under its limit, else how long to
    wait (nothing counted)."""
    wait = max(
        (free_in(seen.get(key, ()), limit, rates.window, now) for key, limit in keys),
        default=timedelta(0),
    )
    if wait > timedelta(0):
        return wait, ()
    return None, tuple(Charge(key) for key, _limit in keys)


class RequestLimiter:
    """Counts new ride requests by identity and by address (blocking on a database ledger)."""

    def __init__(self, rates: RequestRates, ledger: Ledger | None = None) -> None:
        self.rates = rates
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()

    def admit(
        self, now: datetime, identity: str | None = None, address: str | None = None
    ) -> timedelta | None:
        """Count one request and return None, or how long to wait (nothing counted)."""
        keys = limited_keys(self.rates, identity, address)
        if not keys:
            return None
        return self.ledger.charge(
            [key for key, _limit in keys],
            now - self.rates.window,
            now,
            uuid.uuid4().hex,
            lambda seen: judge_request(self.rates, keys, seen, now),
        )
