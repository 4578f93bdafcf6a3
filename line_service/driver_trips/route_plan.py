"""Pure: where an announced trip goes and whom it can pick up — the stops it passes, when,
and the waiting riders it serves.

A trip runs along one direction from `from_stop` to `towards` (a later stop of it), leaving
`from_stop` at `leaves_at` and driving at a steady speed along the stops' `km`. It can pick up
a rider waiting at any stop it passes before `towards` whose destination is on the way, up to
`towards` itself. No clock, no I/O: times come in as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatcher.model import Line, StopId
from dispatcher.request_machine import RideRequest

SPEED_KMH = 60.0


class TripRefusedError(ValueError):
    """The trip cannot be run on this line as declared (the message says why)."""


@dataclass(frozen=True, slots=True)
class PlannedTrip:
    """The stops a trip passes, in order, each with when it passes (`towards` last)."""

    line_id: str
    direction_id: str
    leaves_at: datetime
    passes: tuple[tuple[StopId, datetime], ...]

    @property
    def from_stop(self) -> StopId:
        """Where the driver leaves from."""
        return self.passes[0][0]

    @property
    def towards(self) -> StopId:
        """Where the driver goes."""
        return self.passes[-1][0]

    @property
    def passes_until(self) -> datetime:
        """When the trip reaches `towards` (after that it is past)."""
        return self.passes[-1][1]


def plan_trip(
    line: Line,
    from_stop: str,
    towards: str,
    leaves_at: datetime,
    speed_kmh: float = SPEED_KMH,
) -> PlannedTrip:
    """The trip from `from_stop` towards `towards`; TripRefusedError when not on the line."""
    for direction in line.directions:
        ids = [stop.id for stop in direction.stops]
        if from_stop not in ids:
            continue
        start = ids.index(StopId(from_stop))
        if towards not in ids[start + 1 :]:
            raise TripRefusedError(
                f"towards: {towards!r} is not a stop after {from_stop!r} on {line.id}"
            )
        stops = direction.stops[start : ids.index(StopId(towards)) + 1]
        origin_km = stops[0].km
        passes = tuple(
            (stop.id, leaves_at + timedelta(hours=abs(stop.km - origin_km) / speed_kmh))
            for stop in stops
        )
        return PlannedTrip(line.id, direction.id, leaves_at, passes)
    raise TripRefusedError(f"from_stop: unknown stop {from_stop!r} on {line.id}")


def boarding_at(trip: PlannedTrip, stop_id: StopId, destination_id: StopId) -> datetime | None:
    """When the trip passes `stop_id` able to take a rider there to `destination_id`, or None
    when it does not serve that pair (not on its way, or the destination is not after)."""
    order = {stop: index for index, (stop, _at) in enumerate(trip.passes)}
    boards, alights = order.get(stop_id), order.get(destination_id)
    if boards is None or alights is None or not boards < alights:
        return None
    return trip.passes[boards][1]


def next_pass(
    trips: Iterable[PlannedTrip], stop_id: StopId, destination_id: StopId, now: datetime
) -> datetime | None:
    """When the soonest of `trips` still to come passes `stop_id` towards `destination_id`."""
    times = (boarding_at(trip, stop_id, destination_id) for trip in trips)
    return min((at for at in times if at is not None and at >= now), default=None)


def riders_served(
    trip: PlannedTrip, waiting: Iterable[RideRequest], now: datetime
) -> list[tuple[RideRequest, int]]:
    """Each waiting rider the trip can pick up, with the whole minutes (at least 1) until it
    passes their stop; one entry per number (a rider's newest request)."""
    served: dict[str, tuple[RideRequest, int]] = {}
    for request in waiting:
        if request.line_id != trip.line_id or not request.is_waiting or request.phone is None:
            continue
        passes_at = boarding_at(trip, request.stop_id, request.destination_id)
        if passes_at is None:
            continue
        minutes = max(1, round((passes_at - now).total_seconds() / 60))
        served[request.phone] = (request, minutes)
    return list(served.values())
