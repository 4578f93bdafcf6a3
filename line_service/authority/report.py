"""Shell: the monthly report — figures of a month read from the database, as self-contained HTML.

Figures (all from the requests and trips tables, local dates of the line):
- requests = every request that was not refused; served by a car = PICKED_UP; by the fallback =
  FALLBACK (a taxi was sent and no driver came); expired and cancelled for the rest;
- waits = pickup time minus request time of the requests served by a car; the median, and the
  90th percentile by nearest rank (the smallest wait that 90 % of riders did not exceed);
- distinct riders = distinct phone numbers (hashed) of SMS/app riders; terminal riders are
  anonymous and counted apart; distinct drivers = distinct `driver_ref` of validated trips;
- CO2 avoided = passenger-km of clean trips × CO2_KG_PER_KM (see its note);
- driver compensation and incentives per sponsor = the campaigns' ledger (`money`) over the
  month's payable trips (what the registry is told); budget used since each campaign began;
- presence bonuses = the `presence` campaigns over the month's declared trips (`presence`),
  counted in their sponsor's incentives too.
"""

from __future__ import annotations

import html
import math
import statistics
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from dispatcher.model import LineId, Network, StopId
from dispatcher.request_machine import RequestState
from line_service.authority.campaigns import Campaign
from line_service.authority.money import trip_money
from line_service.authority.presence import month_presence
from line_service.authority.report_plots import Plots, render_plots
from line_service.authority.rpc_outbox import journey_counts
from line_service.storage.store import PhoneHashRecord, RideRequestRecord, Store, TripRecord, as_utc

# ADEME, Base Carbone / Impact CO2: an average car emits about 0.2 kg CO2e per km (0.193 to
# 0.218 by vintage and fuel). Each passenger-km carpooled counts as one solo car-km avoided:
# an upper bound, as some riders would otherwise have taken a bus or not travelled.
CO2_KG_PER_KM = 0.2
CO2_SOURCE = "ADEME, Base Carbone : voiture particulière moyenne, environ 0,2 kg CO2e par km"


@dataclass
class MonthFigures:
    """What an authority publishes about one month of a line network."""

    month: str
    days: list[date]
    requests_per_day: list[int]
    trips_per_day: list[int]
    requests: int = 0
    refused: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    waits_minutes: list[float] = field(default_factory=list)
    wait_median_minutes: float | None = None
    wait_p90_minutes: float | None = None
    by_stop: dict[str, Counter[str]] = field(default_factory=dict)
    by_hour: dict[int, Counter[str]] = field(default_factory=dict)
    od_matrix: dict[tuple[str, str], int] = field(default_factory=dict)
    distinct_riders: int = 0
    anonymous_requests: int = 0
    distinct_drivers: int = 0
    trips: int = 0
    flagged_trips: int = 0
    fallback_then_car: int = 0
    passenger_km: float = 0.0
    co2_avoided_kg: float = 0.0
    driver_compensation_cents: int = 0
    presence_bonus_cents: int = 0
    presence_drivers: int = 0
    incentives_by_sponsor: dict[str, int] = field(default_factory=dict)  # SIRET -> cents
    budgets: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # id -> used, budget
    registry_statuses: Counter[str] = field(default_factory=Counter)  # journeys, by status

    @property
    def car_share(self) -> float | None:
        """Share of requests served by a car, among those served (car or fallback)."""
        served = self.outcomes["car"] + self.outcomes["fallback"]
        return None if served == 0 else self.outcomes["car"] / served


def month_bounds(month: str, zone: ZoneInfo) -> tuple[date, date, datetime, datetime]:
    """First and last local day of "YYYY-MM", and the UTC instants bounding it."""
    year, number = (int(part) for part in month.split("-"))
    first = date(year, number, 1)
    after = date(year + number // 12, number % 12 + 1, 1)
    start = datetime.combine(first, time(), tzinfo=zone).astimezone(UTC)
    end = datetime.combine(after, time(), tzinfo=zone).astimezone(UTC)
    return first, after - timedelta(days=1), start, end


def nearest_rank(values: list[float], share: float) -> float:
    """The nearest-rank percentile: the smallest value not exceeded by `share` of the values."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def _outcome(state: str) -> str:
    return {
        RequestState.PICKED_UP.value: "car",
        RequestState.FALLBACK.value: "fallback",
        RequestState.EXPIRED.value: "expired",
        RequestState.CANCELLED.value: "cancelled",
        RequestState.WAITING.value: "waiting",
    }.get(state, "refused")


def compute_figures(
    store: Store, network: Network, month: str, campaigns: list[Campaign] | None = None
) -> MonthFigures:
    """Every figure of the month (the first line's time zone sets the local days); money by
    `campaigns` (default: each line's own compensation rule)."""
    zone = ZoneInfo(network.lines[0].timezone if network.lines else "Europe/Paris")
    first, last, start, end = month_bounds(month, zone)
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    with Session(store.engine) as session:
        requests = session.exec(
            select(RideRequestRecord).where(
                col(RideRequestRecord.created_at) >= start, col(RideRequestRecord.created_at) < end
            )
        ).all()
        hashes = dict(
            session.exec(select(PhoneHashRecord.request_id, PhoneHashRecord.phone_hash)).all()
        )
        trips = session.exec(
            select(TripRecord).where(
                col(TripRecord.picked_up_at) >= start, col(TripRecord.picked_up_at) < end
            )
        ).all()
    figures = MonthFigures(month, days, [0] * len(days), [0] * len(days))
    figures.registry_statuses = journey_counts(store, first=start, end=end)
    names = {stop.id: stop.name for line in network.lines for stop in line.all_stops()}
    riders: set[str] = set()
    drivers: set[str] = set()
    for row in requests:
        outcome = _outcome(row.state)
        if outcome == "refused":
            figures.refused += 1
            continue
        created = as_utc(row.created_at).astimezone(zone)
        figures.requests += 1
        figures.requests_per_day[(created.date() - first).days] += 1
        figures.outcomes[outcome] += 1
        figures.by_stop.setdefault(names.get(StopId(row.stop_id), row.stop_id), Counter())[
            outcome
        ] += 1
        figures.by_hour.setdefault(created.hour, Counter())[outcome] += 1
        person = row.phone or hashes.get(row.id)
        if person:
            riders.add(person)
        else:
            figures.anonymous_requests += 1
        if outcome == "car":
            wait = as_utc(row.updated_at) - as_utc(row.created_at)
            figures.waits_minutes.append(wait.total_seconds() / 60)
            if row.driver_ref:
                drivers.add(row.driver_ref)
    if figures.waits_minutes:
        figures.wait_median_minutes = statistics.median(figures.waits_minutes)
        figures.wait_p90_minutes = nearest_rank(figures.waits_minutes, 0.9)
    for trip in trips:
        _add_trip(figures, trip, zone, first, network)
    _add_money(figures, store, network, campaigns, (first, last, start, end))
    figures.distinct_riders = len(riders)
    figures.distinct_drivers = len(drivers)
    figures.co2_avoided_kg = figures.passenger_km * CO2_KG_PER_KM
    return figures


def _add_trip(
    figures: MonthFigures, trip: TripRecord, zone: ZoneInfo, first: date, network: Network
) -> None:
    figures.trips += 1
    day = as_utc(trip.picked_up_at).astimezone(zone).date()
    figures.trips_per_day[(day - first).days] += 1
    figures.fallback_then_car += int(trip.fallback_dispatched)
    if trip.flags:
        figures.flagged_trips += 1
        return
    line = network.line(LineId(trip.line_id))
    origin = line.stop(StopId(trip.origin_id)) if line else None
    destination = line.stop(StopId(trip.destination_id)) if line else None
    pair = (
        origin.name if origin else trip.origin_id,
        destination.name if destination else trip.destination_id,
    )
    figures.od_matrix[pair] = figures.od_matrix.get(pair, 0) + 1
    figures.passenger_km += trip.distance_m / 1000 * trip.seats


def _add_money(
    figures: MonthFigures,
    store: Store,
    network: Network,
    campaigns: list[Campaign] | None,
    bounds: tuple[date, date, datetime, datetime],
) -> None:
    """What the campaigns paid this month, per sponsor, and each campaign's budget used."""
    if campaigns is None:
        from line_service.authority.campaigns_file import default_campaigns

        campaigns = default_campaigns(network)
    first, last, start, end = bounds
    money = trip_money(store, network, campaigns, first, last)
    for trip in money.trips:
        if not start <= as_utc(trip.picked_up_at) < end:
            continue
        for incentive in money.ledger.incentives.get(trip.id, []):
            payer = incentive.siret or "sans SIRET"
            paid = figures.incentives_by_sponsor.get(payer, 0) + incentive.amount_cents
            figures.incentives_by_sponsor[payer] = paid
            figures.driver_compensation_cents += incentive.amount_cents
    bonuses = month_presence(store, network, campaigns, money, (start, end))
    sirets = {c.id: c.siret or "sans SIRET" for c in campaigns}
    for campaign_id, drivers in bonuses.items():
        paid = sum(drivers.values())
        payer = sirets[campaign_id]
        figures.incentives_by_sponsor[payer] = figures.incentives_by_sponsor.get(payer, 0) + paid
        figures.presence_bonus_cents += paid
    figures.presence_drivers = len({key for drivers in bonuses.values() for key in drivers})
    for campaign in campaigns:
        used = money.ledger.budget_used.get(campaign.id, 0)
        figures.budgets[campaign.id] = (used, campaign.budget_cents)


REGISTRY_LABELS = {
    "queued": "en attente d'envoi",
    "not_sent": "non envoyés (règles du registre)",
    "expired": "non envoyés à temps (24 h)",
    "pending": "reçus, en cours de contrôle",
    "ok": "validés",
    "fraud_error": "rejetés pour fraude",
    "anomaly_error": "rejetés pour anomalie",
    "validation_error": "en erreur de validation",
    "terms_violation_error": "refusés (conditions d'utilisation)",
    "acquisition_error": "non enregistrés",
    "normalization_error": "erreur de normalisation",
    "canceled": "annulés par l'opérateur",
    "unknown": "statut inconnu",
}


def _registry_section(figures: MonthFigures) -> str:
    rows = [
        _row(f"Trajets {label}", f"registry_{status}", str(figures.registry_statuses[status]))
        for status, label in REGISTRY_LABELS.items()
        if figures.registry_statuses[status]
    ]
    if not rows:
        return "<h2>Registre de preuve de covoiturage</h2><p>Aucun trajet à attester.</p>"
    return f"<h2>Registre de preuve de covoiturage</h2><table>{''.join(rows)}</table>"


def _number(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}".replace(".", ",")


def _row(label: str, key: str, value: str) -> str:
    return f'<tr><th>{html.escape(label)}</th><td data-figure="{key}">{value}</td></tr>'


def render_html(figures: MonthFigures, network: Network) -> str:
    """The report as one HTML page (plots embedded as base64 PNG), in French."""
    plots: Plots = render_plots(figures)
    share = figures.car_share
    names = ", ".join(html.escape(line.name) for line in network.lines)
    f, out = figures, figures.outcomes
    table = [
        ("Demandes de trajet", "requests", str(f.requests)),
        ("Demandes refusées (hors service, saturation…)", "refused", str(f.refused)),
        ("Servies par un conducteur", "served_by_car", str(out["car"])),
        ("Servies par la garantie (taxi)", "served_by_fallback", str(out["fallback"])),
        ("Expirées sans solution", "expired", str(out["expired"])),
        ("Annulées", "cancelled", str(out["cancelled"])),
        ("Part servie par un conducteur (%)", "car_share_percent",
         _number(None if share is None else share * 100)),
        ("Attente médiane (min)", "wait_median_minutes", _number(f.wait_median_minutes)),
        ("Attente, 90e centile (min)", "wait_p90_minutes", _number(f.wait_p90_minutes)),
        ("Trajets validés", "trips", str(f.trips)),
        ("dont signalés (règles anti-fraude du RPC)", "flagged_trips", str(f.flagged_trips)),
        ("dont conducteur arrivé après l'envoi du taxi", "fallback_then_car",
         str(f.fallback_then_car)),
        ("Usagers distincts (SMS, application)", "distinct_riders", str(f.distinct_riders)),
        ("Demandes anonymes (borne)", "anonymous_requests", str(f.anonymous_requests)),
        ("Conducteurs distincts", "distinct_drivers", str(f.distinct_drivers)),
        ("Passagers-km covoiturés", "passenger_km", _number(f.passenger_km)),
        ("CO2 évité (kg)", "co2_avoided_kg", _number(f.co2_avoided_kg)),
        ("Indemnités conducteurs (€)", "driver_compensation_euros",
         _number(f.driver_compensation_cents / 100, 2)),
        ("Bonus de présence aux conducteurs (€)", "presence_bonus_euros",
         _number(f.presence_bonus_cents / 100, 2)),
        ("Conducteurs ayant reçu un bonus de présence", "presence_drivers",
         str(f.presence_drivers)),
    ]  # fmt: skip
    rows = [_row(label, key, value) for label, key, value in table]
    rows += [
        _row(f"Incitations payées, financeur {siret} (€)",
             f"incentives_{siret if siret.isdigit() else 'none'}",
             _number(cents / 100, 2))
        for siret, cents in sorted(f.incentives_by_sponsor.items())
    ]  # fmt: skip
    rows += [
        _row(f"Budget consommé, campagne {campaign} (€)", f"budget_{campaign}",
             _number(used / 100, 2) + ("" if budget is None else
                                        f" sur {_number(budget / 100, 2)}"))
        for campaign, (used, budget) in sorted(f.budgets.items())
    ]  # fmt: skip
    images = "".join(
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(title)}</figcaption></figure>"
        for title, data in plots.items()
    )
    return (
        "<!doctype html><html lang=fr><head><meta charset=utf-8>"
        f"<title>Rapport mensuel {figures.month}</title>"
        "<style>body{font-family:sans-serif;max-width:60em;margin:auto}"
        "td,th{text-align:left;padding:.2em .6em}img{max-width:100%}</style></head><body>"
        f"<h1>Covoiturage dynamique — rapport de {figures.month}</h1><p>Lignes : {names}</p>"
        f"<table>{''.join(rows)}</table>{_registry_section(figures)}{images}"
        f"<p><small>CO2 évité : passagers-km × {_number(CO2_KG_PER_KM)} kg/km "
        f"({html.escape(CO2_SOURCE)}) ; majorant, chaque passager-km comptant pour un km "
        "de voiture solo évité. Attente au 90e centile : rang le plus proche.</small></p>"
        "</body></html>"
    )
