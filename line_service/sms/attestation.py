"""Shell: what the SMS channel keeps for attestation to the national registry.

NOM <name> and MAJEUR OUI/NON store what the registry's campaigns want (last name for the
identity key, adult or not) once, with the time of the consent the message itself gives;
TRAJET <code> links a terminal trip to the sender's number (`TripLinks`).

When a driver validates a code by SMS, Twilio has just vouched for their number: it is kept in
`party` under the ref the trip will carry (`sms:<salted hash>`), so the trip can be attested
with the driver's identity (`line_service.authority.identities`). A failing database loses the
attestation of that trip, never the validation: it is logged and the ride goes on.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Protocol

import structlog

from line_service.storage.party_store import PartyStore
from sms_gateway import replies

log = structlog.get_logger(__name__)


async def vouch(parties: PartyStore | None, ref: str, phone: str, at: datetime) -> None:
    """Keep that `ref` is the number `phone` (as the SMS provider delivered it)."""
    if parties is None:
        return
    try:
        await asyncio.to_thread(parties.vouch, ref, phone, at)
    except Exception as exc:
        log.error("sms.party_not_stored", error=str(exc)[:200])


async def give(
    parties: PartyStore | None,
    ref: str,
    phone: str,
    at: datetime,
    last_name: str | None = None,
    adult: bool | None = None,
) -> str:
    """NOM / MAJEUR: keep what the person gave, with the time of their consent; the reply."""
    if (last_name is None and adult is None) or last_name == "":
        return replies.ATTESTATION_HOW
    if parties is None:
        return replies.UNAVAILABLE
    try:
        await asyncio.to_thread(parties.give, ref, phone, at, last_name, adult)
    except Exception as exc:
        log.error("sms.party_not_stored", error=str(exc)[:200])
        return replies.UNAVAILABLE
    log.info("sms.attestation_given", what="name" if last_name else "adult")
    return replies.NAME_KEPT if last_name else replies.ADULT_KEPT


class TripLinks(Protocol):
    """Links a terminal trip to the number that texts its code (`TripLinker`)."""

    window: timedelta

    def link(self, code: str, phone: str) -> StrEnum: ...


async def link_trip(links: TripLinks | None, code: str, phone: str) -> str:
    """TRAJET <code>: the reply, after linking the trip if there is one to link."""
    if not code:
        return replies.TRIP_LINK_HOW
    if links is None:
        return replies.UNAVAILABLE
    try:
        outcome = await asyncio.to_thread(links.link, code, phone)
    except Exception as exc:
        log.error("sms.trip_link_failed", error=str(exc)[:200])
        return replies.UNAVAILABLE
    if outcome.value == "linked":
        return replies.TRIP_LINKED
    return replies.no_trip_to_link(int(links.window.total_seconds() // 3600))
