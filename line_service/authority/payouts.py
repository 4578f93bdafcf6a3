"""Shell: drivers' payouts of a month — only for journeys final and `ok` at the registry.

A journey's earnings (the campaigns' ledger, `money`) are payable when the trip is clean (or
approved), its driver identified and not banned, and the registry's status of the journey is
`ok` and final (read 48 h after the trip, when the registry's status no longer changes). A
status this service does not know is not payable, nor a journey never sent to the registry.
The registry's statuses come through `RegistryStatuses` (the RPC outbox provides one, with its
48 h reading; `MappingStatuses` reads a JSON map: a statement of the registry's, and tests).

Files written (French headers for the accountant, every cell formula-safe):
`paiements-conducteurs.csv` (a row per journey paid, then a total row per driver),
`appels-de-fonds.csv` (per sponsor SIRET and campaign: journeys, amount),
`conducteurs-exclus.csv` (banned drivers' registry ids, as the registry asks operators to share).
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

from dispatcher.model import LineId, Network, StopId
from line_service.authority.campaigns import Campaign
from line_service.authority.csv_cells import safe_row
from line_service.authority.driver_bans import DriverBans
from line_service.authority.money import trip_money
from line_service.authority.presence import month_presence
from line_service.authority.report import month_bounds
from line_service.authority.rpc_outbox import EXPIRED, NOT_SENT, QUEUED
from line_service.storage.store import Store, TripRecord, as_utc

FINAL_AFTER = timedelta(hours=48)
STATUS_OK = "ok"
HELD_UNKNOWN = "statut du registre inconnu"
HELD_NOT_FINAL = "statut du registre pas encore définitif (48 h)"
HELD_NOT_OK = "refusé ou annulé par le registre"
HELD_NOT_SENT = "non attesté : pas envoyé au registre (règles, délai de 24 h, en attente)"

JOURNEY_COLUMNS = (
    "Type", "Conducteur", "Identifiant registre", "Trajet", "Date", "Ligne", "Départ",
    "Arrivée", "Distance (km)", "Places", "Montant (EUR)",
)  # fmt: skip
FUNDING_COLUMNS = ("SIRET", "Campagne", "Trajets", "Montant (EUR)")
BANNED_COLUMNS = ("Conducteur", "Identifiant registre (operator_user_id)", "Exclu le", "Motif")
NUMERIC = frozenset({"Distance (km)", "Places", "Montant (EUR)", "Trajets"})


class RegistryStatuses(Protocol):
    """The registry's status of each journey sent (`ok`, `fraud_error`, … or None: unknown)."""

    def status_of(self, operator_journey_id: str) -> str | None:
        """The journey's last known status at the registry."""
        ...

    def is_final(self, operator_journey_id: str) -> bool:
        """Whether that status was read once it could no longer change (48 h after the trip)."""
        ...


class MappingStatuses:
    """Statuses from a mapping (a JSON file `{"<operator_journey_id>": "ok", …}`, tests)."""

    def __init__(self, statuses: Mapping[str, str]) -> None:
        self._statuses = dict(statuses)

    def status_of(self, operator_journey_id: str) -> str | None:
        """The status given for this journey, if any."""
        return self._statuses.get(operator_journey_id)

    def is_final(self, operator_journey_id: str) -> bool:
        """A statement of the registry's: final once 48 h passed (`compute_payouts` checks)."""
        return operator_journey_id in self._statuses

    @classmethod
    def from_file(cls, path: Path) -> MappingStatuses:
        """Read a JSON object of journey id -> status."""
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError(f"{path}: expected a JSON object of journey id -> status")
        return cls({str(k): v for k, v in data.items()})


@dataclass(frozen=True, slots=True)
class PaidJourney:
    """One journey's earnings, paid this month."""

    trip: TripRecord
    driver_key: str
    amount_cents: int


@dataclass
class Payouts:
    """What a month pays, to whom, funded by whom; and what is held back, and why."""

    month: str
    paid: list[PaidJourney] = field(default_factory=list)
    per_driver: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    funding: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # (siret, id)
    held: Counter[str] = field(default_factory=Counter)
    presence: dict[str, dict[str, int]] = field(default_factory=dict)


def _held_reason(trip: TripRecord, statuses: RegistryStatuses, now: datetime) -> str | None:
    status = statuses.status_of(trip.id)
    if status is None:
        return HELD_UNKNOWN
    if status in (QUEUED, NOT_SENT, EXPIRED):
        return HELD_NOT_SENT
    if status != STATUS_OK:
        return HELD_NOT_OK
    if now < as_utc(trip.picked_up_at) + FINAL_AFTER or not statuses.is_final(trip.id):
        return HELD_NOT_FINAL
    return None


def compute_payouts(
    store: Store,
    network: Network,
    campaigns: Sequence[Campaign],
    month: str,
    statuses: RegistryStatuses,
    now: datetime,
) -> Payouts:
    """The month's payouts (local days of the first line's time zone)."""
    zone = ZoneInfo(network.lines[0].timezone if network.lines else "Europe/Paris")
    first, last, start, end = month_bounds(month, zone)
    money = trip_money(store, network, campaigns, first, last)
    payouts = Payouts(month)
    for trip in money.trips:
        if not start <= as_utc(trip.picked_up_at) < end:
            continue
        found = money.ledger.incentives.get(trip.id, [])
        driver = money.drivers[trip.id]
        if not found or driver is None:
            continue
        reason = _held_reason(trip, statuses, now)
        if reason is not None:
            payouts.held[reason] += 1
            continue
        amount = sum(i.amount_cents for i in found)
        payouts.paid.append(PaidJourney(trip, driver.key, amount))
        payouts.per_driver[driver.key] += amount
        for incentive in found:
            key = (incentive.siret or "", incentive.campaign_id)
            journeys, cents = payouts.funding.get(key, [0, 0])
            payouts.funding[key] = [journeys + 1, cents + incentive.amount_cents]
    bonuses = month_presence(store, network, campaigns, money, (start, end), until=now)
    payouts.presence = bonuses
    sirets = {c.id: c.siret or "" for c in campaigns}
    for campaign_id, drivers in bonuses.items():
        for driver_key, cents in drivers.items():
            payouts.per_driver[driver_key] += cents
            key = (sirets[campaign_id], campaign_id)
            journeys, total = payouts.funding.get(key, [0, 0])
            payouts.funding[key] = [journeys, total + cents]
    return payouts


def _euros(cents: int) -> str:
    return f"{cents / 100:.2f}"


def _write(path: Path, columns: Sequence[str], rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.DictWriter(out, fieldnames=list(columns))
        writer.writeheader()
        for row in rows:
            writer.writerow(safe_row(row, NUMERIC))


def write_payouts(payouts: Payouts, network: Network, bans: DriverBans, out: Path) -> list[Path]:
    """Write the three CSV files into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    names = {stop.id: stop.name for line in network.lines for stop in line.all_stops()}
    rows: list[dict[str, str]] = []
    for paid in sorted(payouts.paid, key=lambda p: (p.driver_key, as_utc(p.trip.picked_up_at))):
        trip = paid.trip
        line = network.line(LineId(trip.line_id))
        rows.append(
            {
                "Type": "trajet",
                "Conducteur": paid.driver_key,
                "Identifiant registre": f"u-{trip.driver_identity_key[:24]}"
                if trip.driver_identity_key
                else "",
                "Trajet": trip.id,
                "Date": as_utc(trip.picked_up_at)
                .astimezone(ZoneInfo(line.timezone if line else "Europe/Paris"))
                .strftime("%Y-%m-%d %H:%M"),
                "Ligne": trip.line_id,
                "Départ": names.get(StopId(trip.origin_id), trip.origin_id),
                "Arrivée": names.get(StopId(trip.destination_id), trip.destination_id),
                "Distance (km)": f"{trip.distance_m / 1000:.1f}",
                "Places": str(trip.seats),
                "Montant (EUR)": _euros(paid.amount_cents),
            }
        )
    for driver_key, cents in sorted(payouts.per_driver.items()):
        blank = dict.fromkeys(JOURNEY_COLUMNS, "")
        rows.append(blank | {"Type": "total conducteur", "Conducteur": driver_key,
                             "Montant (EUR)": _euros(cents)})  # fmt: skip
    funding = [
        {"SIRET": siret, "Campagne": campaign, "Trajets": str(journeys),
         "Montant (EUR)": _euros(cents)}
        for (siret, campaign), (journeys, cents) in sorted(payouts.funding.items())
    ]  # fmt: skip
    banned = [
        {"Conducteur": row.driver_key, "Identifiant registre (operator_user_id)":
         row.registry_user_id or "", "Exclu le": as_utc(row.banned_at).date().isoformat(),
         "Motif": row.reason}
        for row in bans.banned()
    ]  # fmt: skip
    paths = [out / "paiements-conducteurs.csv", out / "appels-de-fonds.csv",
             out / "conducteurs-exclus.csv"]  # fmt: skip
    _write(paths[0], JOURNEY_COLUMNS, rows)
    _write(paths[1], FUNDING_COLUMNS, funding)
    _write(paths[2], BANNED_COLUMNS, banned)
    return paths
