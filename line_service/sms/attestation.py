"""Shell: what the SMS channel keeps for attestation to the national registry.

When a driver validates a code by SMS, Twilio has just vouched for their number: it is kept in
`party` under the ref the trip will carry (`sms:<salted hash>`), so the trip can be attested
with the driver's identity (`line_service.authority.identities`). A failing database loses the
attestation of that trip, never the validation: it is logged and the ride goes on.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

import structlog

from line_service.storage.party_store import PartyStore

log = structlog.get_logger(__name__)


async def vouch(parties: PartyStore | None, ref: str, phone: str, at: datetime) -> None:
    """Keep that `ref` is the number `phone` (as the SMS provider delivered it)."""
    if parties is None:
        return
    try:
        await asyncio.to_thread(parties.vouch, ref, phone, at)
    except Exception as exc:
        log.error("sms.party_not_stored", error=str(exc)[:200])
