"""Pure: how many new ride requests one identity and one client address may make a window.

A request is admitted only if every key it carries (the rider's identity — a phone's salted
hash, later an account — and, over HTTP, the client address) is under its limit; it is then
counted against all of them. An address is allowed more than an identity: riders behind one
carrier-grade NAT share it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from line_service.abuse.windows import SlidingWindow

IDENTITY = "identity"
ADDRESS = "address"


@dataclass(frozen=True, slots=True)
class RequestRates:
    """New ride requests allowed per identity and per client address over `window`."""

    per_identity: int = 4
    per_address: int = 20
    window: timedelta = timedelta(minutes=15)


class RequestLimiter:
    """Counts new ride requests by identity and by address."""

    def __init__(self, rates: RequestRates) -> None:
        self.rates = rates
        self._seen: SlidingWindow[tuple[str, str]] = SlidingWindow(rates.window)

    def admit(
        self, now: datetime, identity: str | None = None, address: str | None = None
    ) -> timedelta | None:
        """Count one request and return None, or how long to wait (nothing counted)."""
        keys: list[tuple[tuple[str, str], int]] = []
        if identity is not None:
            keys.append(((IDENTITY, identity), self.rates.per_identity))
        if address is not None:
            keys.append(((ADDRESS, address), self.rates.per_address))
        wait = max(
            (self._seen.free_in(key, limit, now) for key, limit in keys), default=timedelta(0)
        )
        if wait > timedelta(0):
            return wait
        for key, _limit in keys:
            self._seen.add(key, now)
        return None
