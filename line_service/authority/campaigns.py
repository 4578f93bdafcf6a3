"""Pure: incentive campaigns — who pays what for which journeys, with caps and budgets.

A campaign (from the campaigns file, or the line's own compensation rule as the default)
pays the driver of a journey it covers: `per_trip` once per car run (its first covered
journey), `per_passenger` × seats and `per_km` × km × seats for each journey. It covers a
journey on its lines, in its distance range, proof classes, weekdays and hours, zone and
dates (adults only: the rider must be known to be of age — never the case without accounts,
as the registry's `over_18: null` excludes too). Amounts are clipped by the caps per person
(the driver) per local day and per month, then by what is left of the budget.

Journeys are taken in pickup order, campaigns in the registry's order of application
(territory, then sponsors, then operator; file order within each): the same trips always give
the same ledger, and a journey's `incentives[]` are listed in that order with their index.
A `presence` campaign pays drivers for declared presence at peak instead (`presence_bonuses`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time
from enum import StrEnum
from zoneinfo import ZoneInfo


class SponsorKind(StrEnum):
    """Who funds a campaign; the registry applies territories first, operators last."""

    TERRITORY = "territory"
    SPONSOR = "sponsor"
    OPERATOR = "operator"


SPONSOR_ORDER = {SponsorKind.TERRITORY: 0, SponsorKind.SPONSOR: 1, SponsorKind.OPERATOR: 2}
JOURNEY_KIND = "journey"
PRESENCE_KIND = "presence"


@dataclass(frozen=True, slots=True)
class Campaign:
    """One incentive campaign (all amounts integer euro cents; None = no limit)."""

    id: str
    name: str
    siret: str | None
    sponsor: SponsorKind = SponsorKind.TERRITORY
    kind: str = JOURNEY_KIND
    lines: frozenset[str] | None = None
    per_trip_cents: int = 0
    per_passenger_cents: int = 0
    per_km_cents: int = 0
    per_declaration_cents: int = 0
    min_distance_m: int | None = None
    max_distance_m: int | None = None
    classes: frozenset[str] | None = None
    weekdays: frozenset[int] | None = None  # 0 = Monday
    hours: tuple[tuple[time, time], ...] = ()  # local [start, end) windows; empty = all day
    zone_stops: frozenset[str] | None = None
    zone_insee: frozenset[str] | None = None
    adults_only: bool = False
    first_day: date | None = None
    last_day: date | None = None
    cap_per_day_cents: int | None = None
    cap_per_month_cents: int | None = None
    budget_cents: int | None = None


@dataclass(frozen=True, slots=True)
class JourneyFacts:
    """What campaigns look at in a journey (one driver/passenger pair)."""

    journey_id: str
    run_id: str
    line_id: str
    driver_key: str
    picked_up_at: datetime  # aware
    timezone: str
    distance_m: int
    seats: int
    operator_class: str
    origin_id: str
    destination_id: str
    origin_insee: str | None = None
    destination_insee: str | None = None
    rider_adult: bool | None = None


@dataclass(frozen=True, slots=True)
class Incentive:
    """One campaign's amount on one journey, as the registry lists it (`index`, `siret`)."""

    index: int
    campaign_id: str
    siret: str | None
    amount_cents: int


@dataclass
class Ledger:
    """The result of the campaigns over a set of journeys."""

    incentives: dict[str, list[Incentive]] = field(default_factory=dict)
    budget_used: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    journeys_paid: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    capped: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    budget_exhausted: set[str] = field(default_factory=set)

    def paid(self, journey_id: str) -> int:
        """What the driver earns for this journey, all campaigns together."""
        return sum(i.amount_cents for i in self.incentives.get(journey_id, ()))


def ordered(campaigns: Sequence[Campaign]) -> list[Campaign]:
    """Campaigns in the registry's order of application (stable within a sponsor kind)."""
    return sorted(campaigns, key=lambda c: SPONSOR_ORDER[c.sponsor])


def _local(moment: datetime, timezone: str) -> datetime:
    return moment.astimezone(ZoneInfo(timezone))


def covers(campaign: Campaign, journey: JourneyFacts) -> bool:
    """Whether the campaign applies to this journey (every condition it sets holds)."""
    local = _local(journey.picked_up_at, journey.timezone)
    zone_hit = (
        (campaign.zone_stops is None and campaign.zone_insee is None)
        or bool(
            campaign.zone_stops
            and {journey.origin_id, journey.destination_id} & campaign.zone_stops
        )
        or bool(
            campaign.zone_insee
            and {journey.origin_insee, journey.destination_insee} & campaign.zone_insee
        )
    )
    checks = (
        campaign.kind == JOURNEY_KIND,
        campaign.lines is None or journey.line_id in campaign.lines,
        campaign.min_distance_m is None or journey.distance_m >= campaign.min_distance_m,
        campaign.max_distance_m is None or journey.distance_m <= campaign.max_distance_m,
        campaign.classes is None or journey.operator_class in campaign.classes,
        in_hours(campaign, local),
        zone_hit,
        not campaign.adults_only or journey.rider_adult is True,
        campaign.first_day is None or local.date() >= campaign.first_day,
        campaign.last_day is None or local.date() <= campaign.last_day,
    )
    return all(checks)


def in_hours(campaign: Campaign, local: datetime) -> bool:
    """The campaign's weekdays and hours hold at this local time."""
    if campaign.weekdays is not None and local.weekday() not in campaign.weekdays:
        return False
    moment = local.time().replace(tzinfo=None)
    return not campaign.hours or any(start <= moment < end for start, end in campaign.hours)


class _Limits:
    """What is left of each cap and budget, and who hit one."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._day: dict[tuple[str, str, date], int] = defaultdict(int)
        self._month: dict[tuple[str, str, str], int] = defaultdict(int)

    def clip(self, campaign: Campaign, person: str, local: datetime, amount: int) -> int:
        day_key = (campaign.id, person, local.date())
        month_key = (campaign.id, person, local.strftime("%Y-%m"))
        allowed = amount
        for cap, used in (
            (campaign.cap_per_day_cents, self._day[day_key]),
            (campaign.cap_per_month_cents, self._month[month_key]),
        ):
            if cap is not None and used + allowed > cap:
                allowed = max(0, cap - used)
                self._ledger.capped[campaign.id].add(person)
        if campaign.budget_cents is not None:
            left = campaign.budget_cents - self._ledger.budget_used[campaign.id]
            if allowed > left:
                allowed = max(0, left)
                self._ledger.budget_exhausted.add(campaign.id)
        self._day[day_key] += allowed
        self._month[month_key] += allowed
        self._ledger.budget_used[campaign.id] += allowed
        return allowed


def journey_amount(campaign: Campaign, journey: JourneyFacts, first_of_run: bool) -> int:
    """The campaign's amount before caps: per-trip only on the car run's first journey."""
    per_km = round(campaign.per_km_cents * journey.distance_m / 1000 * journey.seats)
    return (
        (campaign.per_trip_cents if first_of_run else 0)
        + campaign.per_passenger_cents * journey.seats
        + per_km
    )


Progress = Callable[[int, int], None]
"""Told (done, total) every `PROGRESS_STEP` journeys and at the end."""
PROGRESS_STEP = 500


def apply_campaigns(
    journeys: Iterable[JourneyFacts],
    campaigns: Sequence[Campaign],
    progress: Progress | None = None,
) -> Ledger:
    """Every payable journey's incentives (give only journeys whose driver may be paid)."""
    ledger = Ledger()
    limits = _Limits(ledger)
    runs_paid: set[tuple[str, str]] = set()
    in_order = ordered(campaigns)
    in_time = sorted(journeys, key=lambda j: (j.picked_up_at, j.journey_id))
    for done, journey in enumerate(in_time, start=1):
        if progress is not None and (done % PROGRESS_STEP == 0 or done == len(in_time)):
            progress(done, len(in_time))
        local = _local(journey.picked_up_at, journey.timezone)
        found: list[Incentive] = []
        for campaign in in_order:
            if not covers(campaign, journey):
                continue
            run = (campaign.id, journey.run_id)
            amount = journey_amount(campaign, journey, run not in runs_paid)
            runs_paid.add(run)
            amount = limits.clip(campaign, journey.driver_key, local, amount)
            if amount > 0:
                found.append(Incentive(len(found), campaign.id, campaign.siret, amount))
                ledger.journeys_paid[campaign.id] += 1
        if found:
            ledger.incentives[journey.journey_id] = found
    return ledger


@dataclass(frozen=True, slots=True)
class Declaration:
    """A driver's declared trip ("Je passe", `authority.presence`): who, on which line, and
    when they are on it (`at`: when the trip leaves its first stop; aware)."""

    driver_key: str
    line_id: str
    at: datetime
    timezone: str


def presence_bonuses(
    declarations: Iterable[Declaration], campaigns: Sequence[Campaign], ledger: Ledger
) -> dict[str, dict[str, int]]:
    """campaign id -> driver -> cents, for declarations at the `presence` campaigns' hours.

    Caps and budget work as for journeys (and share the ledger's budget counters).
    """
    limits = _Limits(ledger)
    earned: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    presence = [c for c in ordered(campaigns) if c.kind == PRESENCE_KIND]
    for declaration in sorted(declarations, key=lambda d: (d.at, d.driver_key)):
        local = _local(declaration.at, declaration.timezone)
        for campaign in presence:
            if campaign.lines is not None and declaration.line_id not in campaign.lines:
                continue
            if not in_hours(campaign, local):
                continue
            if campaign.first_day is not None and local.date() < campaign.first_day:
                continue
            if campaign.last_day is not None and local.date() > campaign.last_day:
                continue
            amount = limits.clip(
                campaign, declaration.driver_key, local, campaign.per_declaration_cents
            )
            if amount > 0:
                earned[campaign.id][declaration.driver_key] += amount
    return {cid: dict(drivers) for cid, drivers in earned.items()}
