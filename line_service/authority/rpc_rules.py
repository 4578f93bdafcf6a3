"""Pure: the registry's v3.4 rules a journey is checked against before it is sent.

What the schema says (fields, identities of both occupants: `operator_user_id`,
`identity_key`, `phone_trunc` whatever the class), what the terms say (1 km at least), and
what the API's delays say (sent within 24 h of the passenger's start; a journey cannot start
in the future or end before it starts). Class C also needs two distinct identities. Each
breach has one stored reason (`not_sent_reason`); the trips' own anti-abuse flags are checked
before, by the export's `skip_reason`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from line_service.authority.rpc_client import precheck
from line_service.authority.schemas import send_within_hours

CLOCK_SKEW = timedelta(minutes=5)


def _moment(text: str) -> datetime:
    return datetime.strptime(text[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def not_sent_reason(journey: dict[str, Any], now: datetime) -> str | None:
    """Why this journey must not be sent now, or None when it may."""
    refused = precheck(journey)
    if refused is not None:
        return refused.detail
    start, end = _moment(journey["start"]["datetime"]), _moment(journey["end"]["datetime"])
    if start > now + CLOCK_SKEW:
        return "start: in the future"
    if end < start:
        return "end: before the start"
    window = timedelta(hours=send_within_hours())
    if now >= start + window:
        return f"expired: more than {send_within_hours()} h after the start (registry refuses it)"
    driver = journey["driver"]["identity"]["identity_key"]
    passenger = journey["passenger"]["identity"]["identity_key"]
    if journey["operator_class"] == "C" and driver == passenger:
        return "operator_class C: driver and passenger must be two distinct identities"
    return None
