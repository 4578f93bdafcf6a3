"""Trips: distance, money, identities and the registry's anti-abuse flags (SQLite, PostgreSQL)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dispatcher.model import Line, LineId
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest, Source
from line_service.authority.trips import (
    FLAG_SAME_PAIR,
    FLAG_SHORT,
    FLAG_TOO_MANY,
    TripBook,
    draft_trip,
    identity_of,
)
from line_service.network.lines_file import load_network
from line_service.storage.store import Store
from tests.support.requests import ride_request

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "lines.yaml"
# Monday 23 November 2026, 07:00 in Paris.
T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
RIDER = "+33612345678"
DRIVER = "+33699887766"


@pytest.fixture(scope="module")
def line() -> Line:
    found = load_network(SHIPPED).line(LineId("calais-dunkerque"))
    assert found is not None
    return found


@pytest.fixture
def book(database_url: str) -> Iterator[TripBook]:
    store = Store(database_url)
    store.create_schema()
    yield TripBook(store)
    store.dispose()


def validated(
    request_id: str,
    picked_up_at: datetime,
    origin: str = "calais-est",
    destination: str = "dunkerque-est",
    phone: str | None = RIDER,
    driver: str = DRIVER,
    seats: int = 1,
    channel: Channel = Channel.SMS,
) -> RideRequest:
    return ride_request(
        request_id,
        picked_up_at,
        stop=origin,
        destination=destination,
        state=RequestState.PICKED_UP,
        cause=Cause.CODE_VALIDATED,
        phone=phone,
        source=Source(channel, f"src-{request_id}"),
        code="1234",
        seats=seats,
        created_at=picked_up_at - timedelta(minutes=4),
        driver_ref=driver,
    )


def test_a_validated_request_makes_a_trip_with_distance_money_and_identities(line: Line) -> None:
    draft = draft_trip(line, validated("r1", T0, "marck-est", "grande-synthe-est", seats=2), None)
    assert draft is not None
    assert draft.distance_m == 30000  # km 8 → km 38
    assert draft.driver_compensation_cents == 100 + 2 * 100
    assert draft.passenger_contribution_cents == 0
    assert draft.arrival_at == T0 + timedelta(minutes=30)  # 30 km at 60 km/h
    assert draft.passenger is not None
    assert draft.passenger.phone_trunc == "+336123456"
    assert draft.passenger.identity_key == hashlib.sha256(b"+33612345678-").hexdigest()
    assert draft.driver is not None
    # The registry gets an opaque id for the driver, never the number itself.
    assert draft.driver.ref.startswith("u-")
    assert "+33" not in draft.driver.ref
    assert draft.operator_class == "C"  # rider asked by SMS, driver known by phone
    assert not draft.fallback_dispatched


def test_proof_class_follows_the_evidence(line: Line) -> None:
    terminal_only = validated(
        "r1", T0, phone=None, driver="demo-driver-7", channel=Channel.TERMINAL
    )
    sms_rider_only = validated("r2", T0, driver="demo-driver-7")
    anonymous = draft_trip(line, terminal_only, None)
    one_side = draft_trip(line, sms_rider_only, None)
    assert anonymous is not None
    assert one_side is not None
    assert (anonymous.operator_class, anonymous.driver, anonymous.passenger) == ("A", None, None)
    assert one_side.operator_class == "B"


def test_only_code_validations_are_trips(line: Line) -> None:
    departed = validated("r1", T0)
    departed = replace(departed, cause=Cause.RIDER_DEPARTED)
    assert draft_trip(line, departed, None) is None
    assert draft_trip(line, validated("r2", T0), RequestState.FALLBACK) is not None


def test_a_clean_trip_is_stored_once_unflagged_and_paid(book: TripBook, line: Line) -> None:
    draft = draft_trip(line, validated("r1", T0), RequestState.FALLBACK)
    assert draft is not None
    first = book.record(draft)
    again = book.record(draft)
    assert first.id == again.id
    [stored] = book.between(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert stored.flags == ""
    assert stored.driver_compensation_cents == 200
    assert stored.fallback_dispatched
    assert stored.distance_m == 43000
    assert len(stored.id) == 32
    assert stored.passenger_phone_trunc == "+336123456"


def test_a_trip_under_1_km_is_kept_flagged_and_unpaid(book: TripBook, line: Line) -> None:
    tiny = Line(
        id=line.id,
        name=line.name,
        timezone=line.timezone,
        directions=tuple(
            replace(d, stops=tuple(replace(s, km=s.km / 30) for s in d.stops))
            for d in line.directions
        ),
        compensation=line.compensation,
    )
    draft = draft_trip(tiny, validated("r1", T0, "calais-est", "marck-est"), None)
    assert draft is not None
    assert draft.distance_m < 1000
    trip = book.record(draft)
    assert trip.flags == FLAG_SHORT
    assert trip.driver_compensation_cents == 0


def test_the_fifth_trip_of_a_rider_in_a_day_is_flagged(book: TripBook, line: Line) -> None:
    flags = []
    for n in range(5):
        request = validated(f"r{n}", T0 + timedelta(hours=2 * n), driver=f"+3361100000{n}")
        draft = draft_trip(line, request, None)
        assert draft is not None
        flags.append(book.record(draft).flags)
    assert flags == ["", "", "", "", FLAG_TOO_MANY]


def test_the_count_restarts_on_the_next_local_day(book: TripBook, line: Line) -> None:
    late = datetime(2026, 11, 23, 22, 30, tzinfo=UTC)  # 23:30 in Paris
    for n in range(4):
        draft = draft_trip(line, validated(f"r{n}", late - timedelta(hours=3 * n)), None)
        assert draft is not None
        book.record(draft)
    next_day = draft_trip(line, validated("r9", late + timedelta(hours=1)), None)  # 00:30
    assert next_day is not None
    assert book.record(next_day).flags == ""


def test_the_same_pair_twice_within_30_minutes_is_flagged(book: TripBook, line: Line) -> None:
    first = draft_trip(line, validated("r1", T0, "calais-est", "gravelines-est"), None)
    second = draft_trip(
        line, validated("r2", T0 + timedelta(minutes=25), "gravelines-est", "dunkerque-est"), None
    )
    third = draft_trip(
        line, validated("r3", T0 + timedelta(minutes=90), "gravelines-est", "dunkerque-est"), None
    )
    assert first is not None
    assert second is not None
    assert third is not None
    assert [book.record(d).flags for d in (first, second, third)] == ["", FLAG_SAME_PAIR, ""]


def test_passengers_of_one_car_share_its_run_and_count_once_for_the_driver(
    book: TripBook, line: Line
) -> None:
    riders = [f"+3361234560{n}" for n in range(3)]
    trips = []
    for n, phone in enumerate(riders):
        draft = draft_trip(line, validated(f"r{n}", T0 + timedelta(minutes=n), phone=phone), None)
        assert draft is not None
        trips.append(book.record(draft))
    assert len({trip.operator_trip_id for trip in trips}) == 1
    assert [trip.flags for trip in trips] == ["", "", ""]
    assert identity_of(riders[0]).phone_trunc == "+336123456"
