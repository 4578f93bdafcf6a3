"""Adapter: REST routes of "Je passe" — a driver announces a trip, operators see who is coming.

The rules (which stops and riders a trip serves, the SMS) are in `line_service.driver_trips`.
"""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, HTTPException, status

from line_service.driver_trips.route_plan import TripRefusedError
from line_service.storage.driver_trip_table import DriverTripRecord
from line_service.storage.store import as_utc
from line_service.web.auth import Driver, Viewer, acting_driver
from line_service.web.deps import DriverTripsDep, NetworkDep, line_of
from line_service.web.models import (
    AUTH_ERRORS,
    NOT_FOUND,
    UNPROCESSABLE,
    DriverTripIn,
    DriverTripOut,
)

router = APIRouter(prefix="/api/v1", tags=["driver trips"])


def _out(record: DriverTripRecord) -> DriverTripOut:
    return DriverTripOut(
        id=record.id,
        line_id=record.line_id,
        direction_id=record.direction_id,
        from_stop=record.from_stop,
        towards=record.towards,
        driver_ref=record.driver_ref,
        declared_at=as_utc(record.declared_at),
        leaves_at=as_utc(record.leaves_at),
        passes_until=as_utc(record.passes_until),
        riders_told=record.riders_told,
    )


@router.post(
    "/lines/{line_id}/driver-trips",
    status_code=status.HTTP_201_CREATED,
    responses=AUTH_ERRORS | NOT_FOUND | UNPROCESSABLE,
)
async def announce_trip(
    line_id: str, body: DriverTripIn, network: NetworkDep, trips: DriverTripsDep, caller: Driver
) -> DriverTripOut:
    """A signed-in driver passes soon: riders waiting on the way are told by SMS (once)."""
    line = line_of(network, line_id)
    try:
        record = await trips.declare(
            line,
            acting_driver(caller),
            body.from_stop,
            body.towards,
            timedelta(minutes=body.leaving_in_minutes),
        )
    except TripRefusedError as exc:
        raise HTTPException(422, str(exc)) from exc
    return _out(record)


@router.get("/lines/{line_id}/driver-trips", responses=AUTH_ERRORS | NOT_FOUND)
async def current_trips(
    line_id: str, network: NetworkDep, trips: DriverTripsDep, _caller: Viewer
) -> list[DriverTripOut]:
    """Drivers on the line now: announced trips not yet past their last stop."""
    line = line_of(network, line_id)
    return [_out(record) for record in await trips.current(line.id)]
