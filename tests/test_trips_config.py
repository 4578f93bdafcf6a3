"""lines.yaml authority keys: compensation ceiling (with its path), fallback, public holidays."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from dispatcher.model import Compensation, FallbackContact, Line
from dispatcher.service_calendar import is_open
from line_service.network.holidays import french_public_holidays
from line_service.network.lines_file import LinesFileError, parse_network

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "lines.yaml"

LINE = """
lines:
  - id: l1
    name: "Ligne 1"
    timezone: Europe/Paris
    wait_guarantee_minutes: 10
    service_hours:
      mon-sun: ["06:00-20:00"]
{extra}
    directions:
      - id: d1
        name: "C"
        stops:
          - {{id: a, name: "A", code: AAA, lat: 50.0, lon: 2.0, km: 0}}
          - {{id: b, name: "B", code: BBB, lat: 50.1, lon: 2.1, km: 4}}
          - {{id: c, name: "C", code: CCC, lat: 50.2, lon: 2.2, km: 12}}
"""


def line_with(extra: str) -> Line:
    return parse_network(LINE.format(extra=extra)).lines[0]


def problems(extra: str) -> list[str]:
    with pytest.raises(LinesFileError) as caught:
        parse_network(LINE.format(extra=extra))
    return caught.value.problems


def test_compensation_is_read_in_cents() -> None:
    line = line_with(
        "    compensation: {driver_per_trip_cents: 150, driver_per_passenger_cents: 50,"
        " passenger_contribution_cents: 80, siret: '12345678901234'}"
    )
    assert line.compensation == Compensation(150, 50, 80, "12345678901234")


def test_a_passenger_share_over_20_cents_a_km_of_the_shortest_trip_is_refused() -> None:
    # The shortest trip is a → b, 4 km: at most 80 cents.
    found = problems("    compensation: {passenger_contribution_cents: 81}")
    assert len(found) == 1
    assert found[0].startswith("lines[0].compensation.passenger_contribution_cents: 81 cents")
    assert "at most 80 cents" in found[0]


def test_money_must_be_whole_non_negative_cents() -> None:
    found = problems(
        "    compensation: {driver_per_trip_cents: 1.5, driver_per_passenger_cents: -1}"
    )
    assert any(p.startswith("lines[0].compensation.driver_per_trip_cents:") for p in found)
    assert any(p.startswith("lines[0].compensation.driver_per_passenger_cents:") for p in found)


def test_the_shortest_trip_falls_back_to_great_circle_without_km() -> None:
    text = LINE.format(extra="    compensation: {passenger_contribution_cents: 500}").replace(
        ", km: 0", ""
    )
    text = text.replace(", km: 4", "").replace(", km: 12", "")
    with pytest.raises(LinesFileError) as caught:
        parse_network(text)
    [problem] = caught.value.problems
    assert "lines[0].compensation.passenger_contribution_cents" in problem


def test_fallback_kinds_and_their_address() -> None:
    sms = line_with("    fallback: {kind: sms, phone: '+33321000000', name: Taxi}")
    hook = line_with("    fallback: {kind: webhook, url: 'https://taxi.example/api/rides'}")
    none = line_with("")
    assert (sms.has_fallback, sms.fallback) == (True, FallbackContact("sms", "+33321000000"))
    assert hook.fallback == FallbackContact("webhook", "https://taxi.example/api/rides")
    assert (none.has_fallback, none.fallback) == (False, None)


def test_a_fallback_without_its_address_is_reported_with_its_path() -> None:
    found = problems("    fallback: {kind: sms, url: 'https://taxi.example'}")
    assert found == [
        "lines[0].fallback: kind sms takes a phone (E.164, e.g. +33321000000) and no url"
    ]
    assert problems("    fallback: {kind: fax}")[0].startswith("lines[0].fallback.kind:")


@pytest.mark.parametrize("day", [date(2026, 12, 25), date(2027, 5, 1), date(2026, 7, 14)])
def test_french_public_holidays_close_the_line(day: date) -> None:
    line = line_with("")
    noon = datetime(day.year, day.month, day.day, 11, 0, tzinfo=UTC)
    assert not is_open(line, noon)
    assert is_open(line_with("    public_holidays: open"), noon)


def test_an_ordinary_day_stays_open() -> None:
    assert is_open(line_with(""), datetime(2026, 12, 24, 11, 0, tzinfo=UTC))


def test_the_holiday_list_covers_years_around_today() -> None:
    days = french_public_holidays(date(2026, 6, 1))
    assert date(2024, 1, 1) in days
    assert date(2036, 12, 25) in days  # ten years ahead
    assert date(2026, 5, 14) in days  # Ascension 2026
    assert date(2026, 12, 24) not in days


def test_the_shipped_line_has_money_and_a_taxi() -> None:
    line = parse_network(SHIPPED.read_text(encoding="utf-8")).lines[0]
    assert line.compensation == Compensation(100, 100, 0)
    assert line.fallback == FallbackContact("sms", "+33321000000")
    assert line.service_hours is not None
    assert date(2026, 12, 25) in line.service_hours.closed_dates
