"""Shell: "Je passe" — a signed-in driver's announced trip is stored, listed to operators while
it is not past, and each rider waiting where it will pass, towards a stop it serves, gets one
SMS (through the service's sender: numbers that wrote STOP are dropped there).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

import structlog
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from dispatcher.model import Line, StopId
from dispatcher.state import DispatcherState
from line_service.driver_trips.route_plan import (
    SPEED_KMH,
    PlannedTrip,
    TripRefusedError,
    next_pass,
    plan_trip,
    riders_served,
)
from line_service.storage.driver_trip_table import DriverTripRecord
from line_service.storage.store import as_utc
from sms_gateway.sender import OutgoingSms, SmsSender

log = structlog.get_logger(__name__)


def expected_text(minutes: int) -> str:
    """The SMS a waiting rider gets (French, GSM-7)."""
    return f"Un conducteur est attendu dans ~{minutes} min."


class DriverTrips:
    """Announced trips: declare (store, tell the riders it serves), and list the current ones."""

    def __init__(
        self,
        engine: Engine,
        sender: SmsSender,
        current_state: Callable[[], DispatcherState],
        clock: Callable[[], datetime],
        speed_kmh: float = SPEED_KMH,
    ) -> None:
        self._engine = engine
        self._sender = sender
        self._state = current_state
        self._clock = clock
        self._speed_kmh = speed_kmh

    async def declare(
        self, line: Line, driver_ref: str, from_stop: str, towards: str, leaving_in: timedelta
    ) -> DriverTripRecord:
        """Store the trip and text the riders it serves (TripRefusedError when off the line)."""
        now = self._clock()
        trip = plan_trip(line, from_stop, towards, now + leaving_in, self._speed_kmh)
        served = riders_served(trip, self._state().waiting(), now)
        record = DriverTripRecord(
            id=uuid.uuid4().hex,
            driver_ref=driver_ref,
            line_id=line.id,
            direction_id=trip.direction_id,
            from_stop=trip.from_stop,
            towards=trip.towards,
            declared_at=now,
            leaves_at=trip.leaves_at,
            passes_until=trip.passes_until,
            riders_told=len(served),
        )
        await asyncio.to_thread(self._store, record)
        for request, minutes in served:
            assert request.phone is not None  # riders_served keeps riders with a number only
            self._sender.send(OutgoingSms(request.phone, expected_text(minutes), request.id))
        log.info(
            "driver_trip.declared",
            trip=record.id,
            line=line.id,
            from_stop=record.from_stop,
            towards=record.towards,
            riders_told=len(served),
        )
        return record

    async def current(self, line_id: str) -> list[DriverTripRecord]:
        """The line's announced trips not yet past `towards`, soonest leaving first."""
        return await asyncio.to_thread(self._current, line_id, self._clock())

    def planned(self, line: Line) -> list[PlannedTrip]:
        """The line's announced trips not yet past, as planned stop by stop (blocking, a
        database read: run it in a thread)."""
        found: list[PlannedTrip] = []
        for record in self._current(line.id, self._clock()):
            try:
                leaves_at = as_utc(record.leaves_at)
                found.append(
                    plan_trip(line, record.from_stop, record.towards, leaves_at, self._speed_kmh)
                )
            except TripRefusedError:  # declared before the lines file changed: no longer runs
                continue
        return found

    def next_driver_at(
        self, line: Line, stop_id: StopId, destination_id: StopId
    ) -> datetime | None:
        """When the soonest announced trip still to come passes `stop_id` towards
        `destination_id`, or None (blocking, a database read: run it in a thread)."""
        return next_pass(self.planned(line), stop_id, destination_id, self._clock())

    def _store(self, record: DriverTripRecord) -> None:
        with Session(self._engine) as session:
            session.add(record)
            session.commit()
            session.refresh(record)

    def _current(self, line_id: str, now: datetime) -> list[DriverTripRecord]:
        with Session(self._engine) as session:
            return list(
                session.exec(
                    select(DriverTripRecord)
                    .where(
                        DriverTripRecord.line_id == line_id,
                        col(DriverTripRecord.passes_until) > now,
                    )
                    .order_by(col(DriverTripRecord.leaves_at))
                ).all()
            )
