"""Campaigns: amounts, distance range, hours, caps per person per day and month, budget, the
registry's order; the campaigns file's checks (SIRET, paths); presence bonuses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from line_service.authority.campaigns import (
    Campaign,
    Declaration,
    JourneyFacts,
    Ledger,
    SponsorKind,
    apply_campaigns,
    presence_bonuses,
)
from line_service.authority.campaigns_file import CampaignsFileError, parse_campaigns
from line_service.authority.siret import siret_problem
from tests.money.trips_support import SIRET, paying_network

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)  # Monday 07:00 in Paris
SPONSOR_SIRET = "73282932000074"
AOM = Campaign(id="aom", name="AOM", siret=SIRET, per_trip_cents=100, per_passenger_cents=200)


def journey(n: int, at: datetime, **changes: object) -> JourneyFacts:
    base = JourneyFacts(
        journey_id=f"j{n:03d}",
        run_id=f"run{n}",
        line_id="calais-dunkerque",
        driver_key="tel:+33699887766",
        picked_up_at=at,
        timezone="Europe/Paris",
        distance_m=20_000,
        seats=1,
        operator_class="C",
        origin_id="marck-est",
        destination_id="dunkerque-est",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_per_trip_once_per_car_run_per_passenger_each() -> None:
    run = [journey(1, T0, run_id="car"), journey(2, T0 + timedelta(minutes=1), run_id="car")]
    ledger = apply_campaigns(run, [AOM])
    assert [ledger.paid(j.journey_id) for j in run] == [300, 200]


def test_the_distance_range_and_the_hours_decide_what_a_campaign_covers() -> None:
    peak = replace(
        AOM,
        min_distance_m=5_000,
        max_distance_m=30_000,
        weekdays=frozenset(range(5)),
        hours=((time(6, 30), time(9, 30)),),
    )
    journeys = [
        journey(1, T0, distance_m=4_000),  # too short for the campaign
        journey(2, T0 + timedelta(hours=1), distance_m=31_000),  # too long
        journey(3, T0 + timedelta(hours=2), distance_m=30_000),  # edge: covered
        journey(4, T0 + timedelta(hours=5)),  # 12:00: off peak
        journey(5, T0 + timedelta(days=5)),  # Saturday
    ]
    ledger = apply_campaigns(journeys, [peak])
    assert [ledger.paid(j.journey_id) for j in journeys] == [0, 0, 300, 0, 0]


def test_caps_per_person_per_day_and_per_month_clip_and_name_the_person() -> None:
    capped = replace(AOM, cap_per_day_cents=500, cap_per_month_cents=1_200)
    days = [T0 + timedelta(days=d, hours=h) for d in range(3) for h in (0, 1)]
    journeys = [journey(n, at) for n, at in enumerate(days)]
    ledger = apply_campaigns(journeys, [capped])
    # 300 a journey: 300 + 200 (day cap 500) on each day, until the month's 1,200.
    assert [ledger.paid(j.journey_id) for j in journeys] == [300, 200, 300, 200, 200, 0]
    assert ledger.capped["aom"] == {"tel:+33699887766"}
    other = journey(9, T0 + timedelta(hours=3), driver_key="account:7")
    assert apply_campaigns([*journeys, other], [capped]).paid("j009") == 300  # per person


def test_the_budget_runs_out_and_says_so() -> None:
    budgeted = replace(AOM, budget_cents=700)
    journeys = [journey(n, T0 + timedelta(hours=n)) for n in range(4)]
    ledger = apply_campaigns(journeys, [budgeted])
    assert [ledger.paid(j.journey_id) for j in journeys] == [300, 300, 100, 0]
    assert ledger.budget_used["aom"] == 700
    assert ledger.budget_exhausted == {"aom"}


def test_incentives_are_listed_territory_first_with_their_index() -> None:
    employer = Campaign(
        id="employer", name="E", siret=SPONSOR_SIRET, sponsor=SponsorKind.SPONSOR, per_km_cents=5
    )
    ledger = apply_campaigns([journey(1, T0)], [employer, AOM])
    found = ledger.incentives["j001"]
    assert [(i.index, i.campaign_id, i.amount_cents) for i in found] == [
        (0, "aom", 300),
        (1, "employer", 100),  # 5 cents a km × 20 km
    ]


def test_adults_only_excludes_riders_of_unknown_age() -> None:
    adults = replace(AOM, adults_only=True)
    known = journey(2, T0, rider_adult=True)
    ledger = apply_campaigns([journey(1, T0), known], [adults])
    assert (ledger.paid("j001"), ledger.paid("j002")) == (0, 300)


def test_a_presence_campaign_pays_declarations_at_peak_with_its_daily_cap() -> None:
    presence = Campaign(
        id="presence",
        name="Présence",
        siret=SIRET,
        kind="presence",
        per_declaration_cents=150,
        hours=((time(6, 30), time(9, 0)),),
        cap_per_day_cents=300,
    )
    declared = [
        Declaration("account:1", "calais-dunkerque", T0 + timedelta(minutes=m), "Europe/Paris")
        for m in (0, 20, 40)
    ] + [Declaration("account:2", "calais-dunkerque", T0 + timedelta(hours=4), "Europe/Paris")]
    earned = presence_bonuses(declared, [presence, AOM], Ledger())
    assert earned == {"presence": {"account:1": 300}}  # account:2 declared at 11:00


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("11000101300017", None),
        ("73282932000074", None),
        ("11000101300018", "check digit is wrong"),
        ("1100010130001", "14 digits"),
        ("1100010130001A", "14 digits"),
    ],
)
def test_a_siret_is_14_digits_with_a_luhn_check(text: str, problem: str | None) -> None:
    found = siret_problem(text)
    assert found is None if problem is None else problem in (found or "")


def test_the_example_file_is_valid_and_errors_name_their_path() -> None:
    network = paying_network()
    example = (ROOT / "config" / "campaigns.example.yaml").read_text(encoding="utf-8")
    assert len(parse_campaigns(example, "example", network)) >= 2
    broken = """
campaigns:
  - id: aom
    name: AOM
    sponsor: {name: "AOM", siret: "11000101300018"}
    lines: [calais-lille]
    amounts: {per_trip_cents: -1}
    distance: {min_km: 30, max_km: 10}
    hours: ["09:00-07:00"]
    budget_cents: 1000
    zone: {insee: ["5927"]}
"""
    with pytest.raises(CampaignsFileError) as error:
        parse_campaigns(broken, "c.yaml", network)
    problems = error.value.problems
    for expected in (
        "campaigns[0].sponsor.siret: 11000101300018 is not a SIRET",
        "campaigns[0].amounts.per_trip_cents: ",
        "campaigns[0].distance: min_km 30.0 is above max_km 10.0",
        "campaigns[0].hours: ",
        "campaigns[0].zone.insee[0]: ",
    ):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    wrong_line = broken.replace('"11000101300018"', f'"{SIRET}"').replace(
        "per_trip_cents: -1", "per_trip_cents: 1"
    )
    wrong_line = "\n".join(
        row for row in wrong_line.splitlines() if "distance" not in row and "hours" not in row
    ).replace("budget_cents: 1000", "period: {from: 2026-11-01}\n    budget_cents: 1000")
    wrong_line = wrong_line.replace('"5927"', '"59273"')
    with pytest.raises(CampaignsFileError) as error:
        parse_campaigns(wrong_line, "c.yaml", network)
    assert error.value.problems == [
        "campaigns[0].lines[0]: no line 'calais-lille' in the lines file"
    ]


def test_a_budget_needs_the_day_it_starts() -> None:
    text = f"""
campaigns:
  - id: aom
    name: AOM
    sponsor: {{name: "AOM", siret: "{SIRET}"}}
    amounts: {{per_trip_cents: 100}}
    budget_cents: 1000
"""
    with pytest.raises(CampaignsFileError) as error:
        parse_campaigns(text, "c.yaml")
    assert error.value.problems == [
        "campaigns[0]: a budget needs period.from: the day it starts counting"
    ]
