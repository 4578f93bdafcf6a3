"""Shell: the money of stored trips — the campaigns' ledger over the trips that may be paid.

Only clean trips (`trip_reviews.standing`) of identified drivers who are not banned enter the
ledger; the export's `incentives[]`, the payouts, the report and `campaigns simulate` all read
the same ledger, so what the registry is told is what is paid. The ledger runs from the first
day of the month asked (or the start of a budgeted campaign's period, when earlier) so that
monthly caps and budgets count every earlier journey.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dispatcher.model import LineId, Network, StopId
from line_service.authority.campaigns import (
    Campaign,
    JourneyFacts,
    Ledger,
    Progress,
    apply_campaigns,
)
from line_service.authority.driver_bans import DriverBans
from line_service.authority.driver_identity import Driver, payee_of
from line_service.authority.trip_reviews import Standing, TripReviews, standing
from line_service.authority.trips import TripBook
from line_service.storage.store import Store, TripRecord, as_utc


def journey_facts(trip: TripRecord, network: Network, driver: Driver) -> JourneyFacts:
    """What the campaigns look at in a stored trip."""
    line = network.line(LineId(trip.line_id))
    origin = None if line is None else line.stop(StopId(trip.origin_id))
    destination = None if line is None else line.stop(StopId(trip.destination_id))
    return JourneyFacts(
        journey_id=trip.id,
        run_id=trip.operator_trip_id,
        line_id=trip.line_id,
        driver_key=driver.key,
        picked_up_at=as_utc(trip.picked_up_at),
        timezone=line.timezone if line else "Europe/Paris",
        distance_m=trip.distance_m,
        seats=trip.seats,
        operator_class=trip.operator_class,
        origin_id=trip.origin_id,
        destination_id=trip.destination_id,
        origin_insee=None if origin is None else origin.insee,
        destination_insee=None if destination is None else destination.insee,
        rider_adult=None,  # no age is collected (accounts may add it)
    )


@dataclass
class TripMoney:
    """Trips of a period with their standing, and the campaigns' ledger over them."""

    trips: list[TripRecord]
    standings: dict[str, Standing]
    decisions: dict[str, str]
    drivers: dict[str, Driver | None]
    banned: frozenset[str]
    ledger: Ledger

    def payable(self, trip: TripRecord) -> bool:
        """Clean, with an identified driver who is not banned."""
        driver = self.drivers[trip.id]
        return (
            self.standings[trip.id] is Standing.CLEAN
            and driver is not None
            and driver.key not in self.banned
        )


def ledger_start(first: date, campaigns: Sequence[Campaign]) -> date:
    """Where the ledger must start for caps and budgets to count earlier journeys."""
    month_start = first.replace(day=1)
    budgeted = [c.first_day for c in campaigns if c.budget_cents is not None and c.first_day]
    return min([month_start, *budgeted])


def trip_money(
    store: Store,
    network: Network,
    campaigns: Sequence[Campaign],
    first: date,
    last: date,
    identify: Callable[[str, str | None], Driver | None] = payee_of,
    progress: Progress | None = None,
) -> TripMoney:
    """The ledger of trips picked up from `ledger_start(first)` to `last` (local days of
    each trip's line; `trips` has a day's margin either side: callers pick their days)."""
    start = datetime.combine(ledger_start(first, campaigns) - timedelta(days=1), time(), UTC)
    end = datetime.combine(last + timedelta(days=2), time(), UTC)
    trips = TripBook(store).between(start, end)
    decisions = TripReviews(store).decisions()
    banned = DriverBans(store).keys()
    money = TripMoney(
        trips=trips,
        standings={t.id: standing(t, decisions.get(t.id)) for t in trips},
        decisions=decisions,
        drivers={t.id: identify(t.driver_ref, t.unpaid_reason) for t in trips},
        banned=banned,
        ledger=Ledger(),
    )
    payable = []
    since = ledger_start(first, campaigns)
    for trip in trips:
        driver = money.drivers[trip.id]
        if driver is None or not money.payable(trip):
            continue
        facts = journey_facts(trip, network, driver)
        if since <= facts.picked_up_at.astimezone(ZoneInfo(facts.timezone)).date() <= last:
            payable.append(facts)
    money.ledger = apply_campaigns(payable, campaigns, progress)
    return money
