"""Pure: where an announced trip ("Je passe") goes, when it passes each stop, whom it serves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dispatcher.model import Line, LineId, StopId
from dispatcher.request_machine import RequestState, RideRequest
from line_service.driver_trips.route_plan import (
    TripRefusedError,
    next_pass,
    plan_trip,
    riders_served,
)
from line_service.network.lines_file import load_network
from tests.support.requests import ride_request

T0 = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
SHIPPED = Path(__file__).resolve().parents[1] / "config" / "lines.yaml"


@pytest.fixture(scope="module")
def line() -> Line:
    found = load_network(SHIPPED).line(LineId("calais-dunkerque"))
    assert found is not None
    return found


def test_a_trip_passes_the_stops_between_at_the_lines_speed(line: Line) -> None:
    trip = plan_trip(line, "marck-est", "loon-plage-est", T0 + timedelta(minutes=5))
    assert [stop for stop, _at in trip.passes] == ["marck-est", "gravelines-est", "loon-plage-est"]
    # 8 km → 23 km → 31 km at 60 km/h, leaving Marck at T0 + 5 min.
    assert [at - T0 for _stop, at in trip.passes] == [
        timedelta(minutes=5),
        timedelta(minutes=20),
        timedelta(minutes=28),
    ]
    assert trip.passes_until == T0 + timedelta(minutes=28)
    assert trip.direction_id == "to-dunkerque"


@pytest.mark.parametrize(
    ("from_stop", "towards", "why"),
    [
        ("nowhere", "dunkerque-est", "from_stop: unknown stop"),
        ("marck-est", "calais-est", "towards: 'calais-est' is not a stop after"),
        ("marck-est", "marck-est", "is not a stop after"),
        ("marck-est", "dunkerque-ouest", "is not a stop after"),
    ],
)
def test_a_trip_off_the_line_is_refused_saying_why(
    line: Line, from_stop: str, towards: str, why: str
) -> None:
    with pytest.raises(TripRefusedError, match=why):
        plan_trip(line, from_stop, towards, T0)


def test_riders_on_the_way_towards_a_stop_it_serves_are_served(line: Line) -> None:
    trip = plan_trip(line, "marck-est", "loon-plage-est", T0 + timedelta(minutes=5))

    def rider(rid: str, stop: str, to: str, phone: str | None) -> RideRequest:
        return ride_request(rid, T0, stop=stop, destination=to, phone=phone)

    waiting = [
        rider("at-start", "marck-est", "gravelines-est", "+33600000001"),
        rider("on-the-way", "gravelines-est", "loon-plage-est", "+33600000002"),
        rider("beyond", "gravelines-est", "dunkerque-est", "+33600000003"),
        rider("behind", "calais-est", "gravelines-est", "+33600000004"),
        rider("other-way", "gravelines-ouest", "calais-ouest", "+33600000005"),
        rider("terminal", "marck-est", "loon-plage-est", None),
    ]
    served = riders_served(trip, waiting, T0)
    assert [(request.id, minutes) for request, minutes in served] == [
        ("at-start", 5),
        ("on-the-way", 20),
    ]
    picked = ride_request(
        "picked",
        T0,
        stop="marck-est",
        destination="loon-plage-est",
        phone="+33600000006",
        state=RequestState.PICKED_UP,
    )
    assert riders_served(trip, [picked], T0) == []


def test_the_next_pass_is_the_soonest_trip_still_to_come_serving_the_pair(line: Line) -> None:
    soon = plan_trip(line, "calais-est", "gravelines-est", T0)  # Marck at T0 + 8 min
    later = plan_trip(line, "calais-est", "dunkerque-est", T0 + timedelta(minutes=10))
    other_way = plan_trip(line, "dunkerque-ouest", "calais-ouest", T0)
    trips = [later, other_way, soon]
    marck, dunkerque, gravelines = (
        StopId("marck-est"),
        StopId("dunkerque-est"),
        StopId("gravelines-est"),
    )
    assert next_pass(trips, marck, gravelines, T0) == T0 + timedelta(minutes=8)
    # Dunkerque is past the first trip's end: only the later one takes the rider there.
    assert next_pass(trips, marck, dunkerque, T0) == T0 + timedelta(minutes=18)
    # Once the first trip has passed Marck, the later one is the next.
    assert next_pass(trips, marck, gravelines, T0 + timedelta(minutes=9)) == T0 + timedelta(
        minutes=18
    )
    assert next_pass(trips, StopId("calais-est"), marck, T0 + timedelta(minutes=11)) is None
    assert next_pass([], marck, dunkerque, T0) is None
