"""Shell: a person's trip attestation — their validated trips of a period, as printable HTML.

What employers ask for the Forfait mobilités durables: each trip's date, stops, distance and the
shared costs (what the passenger paid, what the driver received), with totals. The page is one
self-contained HTML file (no script, no fetch: it passes a strict CSP) with a print stylesheet,
so that "Imprimer → PDF" in any browser gives the document to hand over.

Trips are found by the person's number (`trips_of_person`, the one lookup): as the passenger
(their identity key, kept on the trip), as a driver who gave their number to the app (same key,
or the account's `account:<id>` driver reference when the app asks), or as a driver who texted
the code (`sms:<salted hash>` in the trip's driver reference).
Flagged trips (the registry's anti-abuse rules) are left out: they are paid nothing either.
"""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, or_, select

from dispatcher.model import LineId, Network, StopId
from line_service.authority.trips import identity_of
from line_service.storage.store import Store, TripRecord


class Role(StrEnum):
    """How the person travelled."""

    PASSENGER = "passager"
    DRIVER = "conducteur"


@dataclass(frozen=True, slots=True)
class AttestedTrip:
    """One trip as the attestation lists it."""

    picked_up_at: datetime
    line_id: str
    origin_id: str
    destination_id: str
    distance_m: int
    role: Role
    amount_cents: int  # paid as passenger, received as driver


def trips_of_person(
    store: Store,
    phone: str,
    hasher: Callable[[str], str],
    start: datetime,
    end: datetime,
    account_ref: str | None = None,
) -> list[AttestedTrip]:
    """The person's unflagged trips picked up in [start, end), oldest first (`phone` E.164).

    With `account_ref` (`account:<id>`, the signed-in holder of `phone`), the trips that
    account validated as a driver count too, whatever identity the trip kept.
    """
    key = identity_of(phone).identity_key
    driver_refs = [f"sms:{hasher(phone)}", *([account_ref] if account_ref else [])]
    with Session(store.engine) as session:
        rows = session.exec(
            select(TripRecord)
            .where(
                col(TripRecord.picked_up_at) >= start,
                col(TripRecord.picked_up_at) < end,
                or_(
                    col(TripRecord.passenger_identity_key) == key,
                    col(TripRecord.driver_identity_key) == key,
                    col(TripRecord.driver_ref).in_(driver_refs),
                ),
            )
            .order_by(col(TripRecord.picked_up_at))
        ).all()
    found = []
    for row in rows:
        if row.flags:
            continue
        passenger = row.passenger_identity_key == key
        found.append(
            AttestedTrip(
                picked_up_at=_utc(row.picked_up_at),
                line_id=row.line_id,
                origin_id=row.origin_id,
                destination_id=row.destination_id,
                distance_m=row.distance_m,
                role=Role.PASSENGER if passenger else Role.DRIVER,
                amount_cents=(
                    row.passenger_contribution_cents if passenger else row.driver_compensation_cents
                ),
            )
        )
    return found


@dataclass(frozen=True, slots=True)
class Totals:
    """What the attestation sums up."""

    trips: int
    distance_m: int
    paid_cents: int
    received_cents: int


def totals_of(trips: list[AttestedTrip]) -> Totals:
    """The period's totals."""
    return Totals(
        trips=len(trips),
        distance_m=sum(t.distance_m for t in trips),
        paid_cents=sum(t.amount_cents for t in trips if t.role is Role.PASSENGER),
        received_cents=sum(t.amount_cents for t in trips if t.role is Role.DRIVER),
    )


def masked_phone(phone: str) -> str:
    """The number as printed: its last two digits hidden ("+33 6 12 34 56 ••")."""
    return phone[:-2] + "••"


def euros(cents: int) -> str:
    """An amount the French way: "12,50 €"."""
    return f"{cents // 100},{cents % 100:02d} €"


def km(distance_m: int) -> str:
    """A distance the French way: "35,0 km"."""
    return f"{distance_m / 1000:.1f}".replace(".", ",") + " km"


_STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; color: #1a1a1a; margin: 2.5rem auto;
       max-width: 48rem; line-height: 1.4; }
h1 { font-size: 1.5rem; margin-bottom: 0.2rem; }
.meta { color: #444; margin: 0 0 1.5rem; }
table { border-collapse: collapse; width: 100%; margin: 1rem 0; font-size: 0.92rem; }
th, td { border-bottom: 1px solid #ccc; padding: 0.35rem 0.5rem; text-align: left; }
th { background: #eef2f5; }
td.num, th.num { text-align: right; white-space: nowrap; }
tfoot td { font-weight: bold; border-top: 2px solid #1a1a1a; }
.totals { display: flex; gap: 1rem; margin: 1rem 0; }
.totals div { border: 1px solid #ccc; border-radius: 4px; padding: 0.5rem 0.8rem; flex: 1; }
.totals strong { display: block; font-size: 1.2rem; }
.sign { margin-top: 2.5rem; display: flex; justify-content: space-between; color: #444; }
.none { font-style: italic; }
@page { size: A4; margin: 18mm 15mm; }
@media print {
  body { margin: 0; max-width: none; font-size: 10.5pt; }
  th { background: none; }
  tr { break-inside: avoid; }
  .noprint { display: none; }
}
"""


_STYLE_HASH = "sha256-" + base64.b64encode(hashlib.sha256(_STYLE.encode()).digest()).decode()
"""The stylesheet's hash: the page's CSP allows that one inline style and nothing else."""

ATTESTATION_POLICY = (
    f"default-src 'none'; style-src '{_STYLE_HASH}'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
"""The page's Content-Security-Policy header when it is served (`GET /api/v1/me/attestation`)."""


def render_attestation(
    network: Network,
    phone: str,
    year: int,
    trips: list[AttestedTrip],
    issued_at: datetime,
) -> str:
    """The attestation for `phone`'s trips of `year`, as one HTML page in French."""
    operators = sorted({line.agency.name for line in network.lines if line.agency} or {"—"})
    totals = totals_of(trips)
    rows = []
    for trip in trips:
        line = network.line(LineId(trip.line_id))
        zone = ZoneInfo(line.timezone if line else "Europe/Paris")
        local = trip.picked_up_at.astimezone(zone)
        origin = line.stop(StopId(trip.origin_id)) if line else None
        destination = line.stop(StopId(trip.destination_id)) if line else None
        rows.append(
            "<tr>"
            f"<td>{local:%d/%m/%Y}</td><td>{local:%H:%M}</td>"
            f"<td>{_e(origin.name if origin else trip.origin_id)}</td>"
            f"<td>{_e(destination.name if destination else trip.destination_id)}</td>"
            f"<td>{_e(line.name if line else trip.line_id)}</td>"
            f"<td>{trip.role.value}</td>"
            f'<td class="num">{km(trip.distance_m)}</td>'
            f'<td class="num">{euros(trip.amount_cents)}</td>'
            "</tr>"
        )
    body = (
        "".join(rows)
        if rows
        else '<tr><td colspan="8" class="none">Aucun trajet validé sur la période.</td></tr>'
    )
    issued = issued_at.astimezone(ZoneInfo("Europe/Paris"))
    return f"""<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src '{_STYLE_HASH}'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Attestation de covoiturage {year}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Attestation de trajets en covoiturage — {year}</h1>
<p class="meta">Ligne(s) : {_e(", ".join(line.name for line in network.lines))}<br>
Exploitant : {_e(", ".join(operators))}<br>
Personne identifiée par son numéro : <span id="numero">{_e(masked_phone(phone))}</span><br>
Période : du 01/01/{year} au 31/12/{year}</p>
<p>L'exploitant atteste que la personne utilisant ce numéro a effectué les trajets en
covoiturage ci-dessous, validés par l'échange du code entre passager et conducteur
(données du registre de l'exploitant). Document utile notamment pour le forfait mobilités
durables (article L3261-3-1 du code du travail).</p>
<div class="totals">
<div>Trajets<strong id="total-trajets">{totals.trips}</strong></div>
<div>Distance<strong id="total-distance">{km(totals.distance_m)}</strong></div>
<div>Frais partagés payés<strong id="total-paye">{euros(totals.paid_cents)}</strong></div>
<div>Indemnités reçues<strong id="total-recu">{euros(totals.received_cents)}</strong></div>
</div>
<table id="trajets">
<thead><tr><th>Date</th><th>Heure</th><th>Départ</th><th>Arrivée</th><th>Ligne</th>
<th>Rôle</th><th class="num">Distance</th><th class="num">Montant</th></tr></thead>
<tbody>{body}</tbody>
<tfoot><tr><td colspan="6">Total ({totals.trips} trajet(s))</td>
<td class="num">{km(totals.distance_m)}</td>
<td class="num">{euros(totals.paid_cents + totals.received_cents)}</td></tr></tfoot>
</table>
<p>Montant : participation payée comme passager, indemnité reçue comme conducteur.
Les trajets écartés par les règles anti-fraude du registre de preuve de covoiturage ne
figurent pas ici.</p>
<div class="sign"><span>Émise le {issued:%d/%m/%Y à %H:%M}</span>
<span>Pour l'exploitant : {_e(operators[0])}</span></div>
<p class="noprint">Pour un PDF : Imprimer, puis « Enregistrer au format PDF ».</p>
</body>
</html>
"""


def year_bounds(year: int, timezone: str = "Europe/Paris") -> tuple[datetime, datetime]:
    """The local calendar year as [start, end) in UTC."""
    zone = ZoneInfo(timezone)
    start = datetime(year, 1, 1, tzinfo=zone).astimezone(UTC)
    return start, datetime(year + 1, 1, 1, tzinfo=zone).astimezone(UTC)


def _e(text: str) -> str:
    return html.escape(text)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
