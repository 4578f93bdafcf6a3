"""Adapter: trips as journeys of the Registre de preuve de covoiturage (RPC API v3.4).

One journey per driver/passenger pair (one trip record); `operator_trip_id` groups the
passengers of one car run. A trip is exported only when it is clean (no anti-abuse flag, or
only suspicions an operator approved; never an own ride) and both occupants have a known
phone number; `incentives[]` are the campaigns' ledger (`money`), in the registry's order,
and add up, with the rider's contribution, to `driver.revenue`. The registry requires
`phone_trunc` and `identity_key` for each occupant. What we send:
`identity_key = sha256("<E.164>-<LAST NAME>")` (the name a person gave by SMS, empty when none:
`line_service.authority.identities`),
`phone_trunc` = the number without its last two digits, `operator_user_id` = our opaque ref.
A trip under 1 km breaks the registry's terms (v3.4) and is left out. Every journey is checked
against the package's v3.4 schema; an invalid one is reported with its field, not exported.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from dispatcher.model import LineId, Network, StopId
from line_service.authority.campaigns import Campaign, Incentive
from line_service.authority.driver_identity import UNPAID_OWN_RIDE
from line_service.authority.money import trip_money
from line_service.authority.schemas import journey_problems, min_distance_m
from line_service.authority.trip_reviews import Standing, standing
from line_service.storage.store import Store, TripRecord

SKIP_FLAGGED = "flagged by the anti-abuse rules"
SKIP_HELD = "held for an operator's review (suspicious validation)"
SKIP_REJECTED = "rejected by an operator (fraud)"
SKIP_OWN_RIDE = "the driver is the rider (own ride)"
SKIP_NO_PASSENGER_PHONE = "passenger phone unknown (terminal-only rider)"
SKIP_NO_DRIVER_PHONE = "driver phone unknown"
SKIP_UNKNOWN_STOP = "stop no longer in lines.yaml"
SKIP_TOO_SHORT = "under 1 km: breaks the registry's terms (distance_too_short)"


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _stamp(value: datetime) -> str:
    return _utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _opaque_ref(identity_key: str) -> str:
    """Our id of a person for the registry: derived from the identity key, never the number
    (a driver's stored `driver_ref` may be the `tel:` number an app sent)."""
    return f"u-{identity_key[:24]}"


def _identity(ref: str, phone_trunc: str, identity_key: str) -> dict[str, Any]:
    return {"operator_user_id": ref, "identity_key": identity_key, "phone_trunc": phone_trunc}


def incentives_of(found: list[Incentive]) -> list[dict[str, Any]]:
    """The registry's `incentives[]`: each campaign's amount with its payer, in order; an
    amount whose campaign names no SIRET (a line's rule without `siret`) cannot be listed."""
    listed = [i for i in found if i.siret and i.amount_cents > 0]
    return [{"index": n, "siret": i.siret, "amount": i.amount_cents} for n, i in enumerate(listed)]


def journey_of(
    trip: TripRecord,
    network: Network,
    siret: str | None = None,
    incentives: list[Incentive] | None = None,
    decision: str | None = None,
) -> dict[str, Any]:
    """The RPC journey of one exportable trip (see `skip_reason`).

    `incentives` come from the campaigns' ledger; without them, the stored compensation is
    the one incentive (payer: `siret`, else the line's `compensation.siret`).
    """
    reason = skip_reason(trip, network, decision)
    line = network.line(LineId(trip.line_id))
    origin = line.stop(StopId(trip.origin_id)) if line else None
    destination = line.stop(StopId(trip.destination_id)) if line else None
    if reason is not None or line is None or origin is None or destination is None:
        raise ValueError(f"trip {trip.id} cannot be exported: {reason}")
    if incentives is None:
        payer = siret or line.compensation.siret
        amount = trip.driver_compensation_cents
        incentives = [Incentive(0, "line", payer, amount)] if amount > 0 else []
    paid = sum(i.amount_cents for i in incentives)
    return {
        "operator_journey_id": trip.id,
        "operator_trip_id": trip.operator_trip_id,
        "operator_class": trip.operator_class,
        "incentives": incentives_of(incentives),
        "start": {"datetime": _stamp(trip.picked_up_at), "lat": origin.lat, "lon": origin.lon},
        "end": {
            "datetime": _stamp(trip.arrival_at),
            "lat": destination.lat,
            "lon": destination.lon,
        },
        "distance": trip.distance_m,
        "driver": {
            "identity": _identity(
                _opaque_ref(trip.driver_identity_key or ""),
                trip.driver_phone_trunc or "",
                trip.driver_identity_key or "",
            ),
            "revenue": paid + trip.passenger_contribution_cents,
        },
        "passenger": {
            "identity": _identity(
                trip.passenger_ref or "",
                trip.passenger_phone_trunc or "",
                trip.passenger_identity_key or "",
            ),
            "contribution": trip.passenger_contribution_cents,
            "seats": trip.seats,
        },
    }


def skip_reason(trip: TripRecord, network: Network, decision: str | None = None) -> str | None:
    """Why a trip cannot go to the registry, or None when it can (`decision`: an operator's
    latest review of the trip, if any)."""
    if trip.unpaid_reason == UNPAID_OWN_RIDE:
        return SKIP_OWN_RIDE
    found = standing(trip, decision)
    if found is Standing.REFUSED:
        return SKIP_FLAGGED
    if found is Standing.HELD:
        return SKIP_HELD
    if found is Standing.REJECTED:
        return SKIP_REJECTED
    if not (trip.passenger_ref and trip.passenger_phone_trunc and trip.passenger_identity_key):
        return SKIP_NO_PASSENGER_PHONE
    if not (trip.driver_phone_trunc and trip.driver_identity_key):
        return SKIP_NO_DRIVER_PHONE
    line = network.line(LineId(trip.line_id))
    stops = (trip.origin_id, trip.destination_id)
    if line is None or any(line.stop(StopId(stop)) is None for stop in stops):
        return SKIP_UNKNOWN_STOP
    if trip.distance_m < min_distance_m():
        return SKIP_TOO_SHORT
    return None


def invalid_reports(journey: dict[str, Any]) -> list[str]:
    """`journey <id>: <field>: <problem>` for each schema violation (empty when valid)."""
    journey_id = journey.get("operator_journey_id", "?")
    return [f"journey {journey_id}: {problem}" for problem in journey_problems(journey)]


@dataclass
class RpcExport:
    """The journeys of a period, how many trips were left out and why, and the invalid ones."""

    journeys: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    invalid: dict[str, list[str]] = field(default_factory=dict)  # journey id -> reports


def _local_date(trip: TripRecord, network: Network) -> date:
    line = network.line(LineId(trip.line_id))
    zone = ZoneInfo(line.timezone if line else "Europe/Paris")
    return _utc(trip.picked_up_at).astimezone(zone).date()


def export_rpc(
    store: Store,
    network: Network,
    first: date,
    last: date,
    campaigns: list[Campaign] | None = None,
) -> RpcExport:
    """Journeys of the trips picked up between `first` and `last` (local dates, inclusive),
    with the campaigns' incentives (default: each line's own compensation rule)."""
    if campaigns is None:
        from line_service.authority.campaigns_file import default_campaigns

        campaigns = default_campaigns(network)
    money = trip_money(store, network, campaigns, first, last)
    export = RpcExport()
    for trip in money.trips:
        if not first <= _local_date(trip, network) <= last:
            continue
        decision = money.decisions.get(trip.id)
        reason = skip_reason(trip, network, decision)
        if reason is not None:
            export.skipped[reason] += 1
            continue
        found = money.ledger.incentives.get(trip.id, [])
        journey = journey_of(trip, network, incentives=found, decision=decision)
        reports = invalid_reports(journey)
        if reports:
            export.invalid[trip.id] = reports
        else:
            export.journeys.append(journey)
    return export


def write_journeys(journeys: list[dict[str, Any]], out: Path) -> None:
    """Write the journeys as a JSON array (UTF-8), one object per driver/passenger pair."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(journeys, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
