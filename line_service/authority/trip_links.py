"""Shell: a terminal rider links their trip to their number afterwards (`TRAJET <code>` by SMS).

A rider who asked at a terminal left no number, so their trip cannot be attested. Within
`hours` of the pick-up (CARPOOL_TRIP_LINK_HOURS, 12 h by default: the registry wants the
journey within 24 h) they may text the trip's 4-digit code from their phone: the number Twilio
delivered becomes the passenger's identity, the trip's proof class is B (the driver's phone
and the rider's later word, not two devices at the time) and its journey is queued again.
Only a trip whose rider gave no number can be claimed, once, and not by its own driver; a
number links at most one trip per window (guessing codes claims nothing more).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from enum import StrEnum

import structlog
from sqlmodel import Session, col, select

from line_service.authority.identities import IdentityResolver
from line_service.authority.rpc_export import SKIP_NO_PASSENGER_PHONE
from line_service.authority.rpc_outbox import NOT_SENT, QUEUED
from line_service.authority.trips import identity_of
from line_service.storage.rpc_outbox_table import RpcJourneyRecord
from line_service.storage.store import RideRequestRecord, Store, TripRecord

log = structlog.get_logger(__name__)

LINKED_CLASS = "B"


class Link(StrEnum):
    """What became of a TRAJET message."""

    LINKED = "linked"
    NOT_FOUND = "not_found"  # no such unclaimed terminal trip in the window (or ambiguous)
    ALREADY_ONE = "already_one"  # this number linked a trip in the window already


class TripLinker:
    """Links terminal trips to the numbers that claim them (call it from a worker thread)."""

    def __init__(self, store: Store, clock: Callable[[], datetime], hours: float = 12.0) -> None:
        self._store = store
        self._clock = clock
        self.window = timedelta(hours=hours)
        self._identities = IdentityResolver(store)

    def link(self, code: str, phone: str) -> Link:
        """Make `phone` the passenger of the terminal trip with this code, if there is one."""
        now = self._clock()
        rider = self._identities.rider(phone)
        identity = identity_of(rider.phone, None, rider.last_name)
        since = now - self.window
        with Session(self._store.engine) as session:
            recent = col(TripRecord.picked_up_at) >= since
            claimed = session.exec(
                select(TripRecord.id).where(
                    recent, TripRecord.passenger_identity_key == identity.identity_key
                )
            ).first()
            if claimed is not None:
                return Link.ALREADY_ONE
            found = session.exec(
                select(TripRecord)
                .join(RideRequestRecord, col(RideRequestRecord.id) == col(TripRecord.request_id))
                .where(
                    recent,
                    col(TripRecord.picked_up_at) <= now,
                    col(TripRecord.passenger_ref).is_(None),
                    RideRequestRecord.code == code,
                )
            ).all()
            if len(found) != 1 or found[0].driver_identity_key == identity.identity_key:
                return Link.NOT_FOUND
            [trip] = found
            trip.passenger_ref = identity.ref
            trip.passenger_phone_trunc = identity.phone_trunc
            trip.passenger_identity_key = identity.identity_key
            trip.operator_class = LINKED_CLASS
            session.add(trip)
            row = session.get(RpcJourneyRecord, trip.id)
            if row is not None and row.status == NOT_SENT and row.reason == SKIP_NO_PASSENGER_PHONE:
                row.status, row.reason, row.next_at, row.updated_at = QUEUED, "", now, now
                session.add(row)
            session.commit()
            log.info("trip.linked_by_rider", trip_id=trip.id)
        return Link.LINKED
