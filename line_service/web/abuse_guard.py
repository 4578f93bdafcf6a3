"""Adapter: the HTTP side of the abuse limits — who the caller is, and 429s with Retry-After.

The client address is the socket's peer, unless that peer is a trusted proxy
(`CARPOOL_TRUSTED_PROXIES`): then it is the right-most `X-Forwarded-For` hop that is not a
trusted proxy itself (hops further left are whatever the client wrote, and never believed).
A validation is charged to the signed-in driver (`account:<id>`, or `operator:<name>`) and to
the line; a new request to the account's verified phone and to the client address.
"""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import timedelta
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Annotated

from fastapi import Depends, HTTPException, Request

from dispatcher.effects import RejectionReason
from dispatcher.model import LineId
from line_service.abuse.code_guesses import Locked
from line_service.abuse.gate import AbuseGate
from line_service.dispatch.intake import Intake, Outcome, Rejected

Proxies = tuple[IPv4Network | IPv6Network, ...]
UNKNOWN_ADDRESS = "unknown"


def client_address(peer: str | None, forwarded_for: str | None, proxies: Proxies) -> str:
    """The caller's address: the peer, or behind trusted proxies the first hop they vouch for."""
    address = _ip(peer)
    if address is None:
        return peer or UNKNOWN_ADDRESS
    if not forwarded_for or not _trusted(address, proxies):
        return str(address)
    for hop in reversed(forwarded_for.split(",")):
        parsed = _ip(hop.strip())
        if parsed is None:
            break  # a hop that is no address: trust stops at the last proxy
        address = parsed
        if not _trusted(parsed, proxies):
            break
    return str(address)


def _ip(text: str | None) -> IPv4Address | IPv6Address | None:
    try:
        return ipaddress.ip_address((text or "").strip())
    except ValueError:
        return None


def _trusted(address: IPv4Address | IPv6Address, proxies: Proxies) -> bool:
    return any(address.version == net.version and address in net for net in proxies)


def too_many(retry_after: timedelta, detail: str) -> HTTPException:
    """429 with Retry-After in whole seconds (at least 1)."""
    seconds = max(1, math.ceil(retry_after.total_seconds()))
    return HTTPException(429, f"{detail}; retry after {seconds} s", {"Retry-After": str(seconds)})


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling over HTTP, and the gate their asks pass."""

    gate: AbuseGate
    address: str

    async def admit_request(self, phone: str | None) -> None:
        """Count a new ride request against the phone it names and the address; 429 past it."""
        identity = self.gate.phone_identity(phone) if phone is not None else None
        wait = await self.gate.admit_request(identity, self.address)
        if wait is not None:
            raise too_many(wait, "too many ride requests from this phone or address")

    async def validate(
        self, intake: Intake, line_id: LineId, code: str, driver_ref: str, identity: str
    ) -> Outcome:
        """A driver's code, charged before it is checked; 429 once over a budget."""
        ticket = await self.gate.begin_guess(identity, (line_id,))
        if isinstance(ticket, Locked):
            raise too_many(ticket.retry_after, "too many wrong codes")
        outcome = await intake.validate(line_id, code, driver_ref)
        if isinstance(outcome, Rejected) and outcome.reason is RejectionReason.UNKNOWN_CODE:
            await self.gate.guess_was_wrong(ticket)
        else:
            await self.gate.guess_was_right(ticket)
        return outcome


def _caller(request: Request) -> Caller:
    gate: AbuseGate = request.state.abuse
    proxies: Proxies = getattr(request.state, "trusted_proxies", ())
    peer = request.client.host if request.client is not None else None
    return Caller(gate, client_address(peer, request.headers.get("x-forwarded-for"), proxies))


CallerDep = Annotated[Caller, Depends(_caller)]
"""The caller's address and the abuse gate (429 + Retry-After past a limit)."""
