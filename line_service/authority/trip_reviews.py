"""Shell: where a trip stands for money and the registry, and operators' reviews of held trips.

- `clean`: no flag (or only suspicions an operator approved): paid by the campaigns, exported;
- `held`: a suspicion (`validation_checks`) awaits an operator: unpaid, unexported;
- `rejected`: an operator judged it fraudulent: unpaid, unexported, and to be cancelled at the
  registry if it was sent before (`rejected_since`);
- `refused`: the registry's own rules (under 1 km, fifth trip a day, same pair): never paid;
- `unpaid`: the driver is the rider, or cannot be identified (`driver_identity`).
Reviews are stored in `trip_review` with who decided and when; the latest decision counts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlmodel import Session, col, select

from line_service.authority.validation_checks import HELD_FLAGS
from line_service.storage.money_tables import TripReviewRecord
from line_service.storage.store import Store, TripRecord

APPROVE = "approve"
REJECT = "reject"


class Standing(StrEnum):
    """Where a trip stands (see the module's docstring)."""

    CLEAN = "clean"
    HELD = "held"
    REJECTED = "rejected"
    REFUSED = "refused"
    UNPAID = "unpaid"


def flags_of(trip: TripRecord) -> set[str]:
    """The trip's flags as a set."""
    return {flag for flag in trip.flags.split(",") if flag}


def standing(trip: TripRecord, decision: str | None) -> Standing:
    """Where the trip stands, given the operator's latest decision on it (if any)."""
    flags = flags_of(trip)
    if trip.unpaid_reason:
        return Standing.UNPAID
    if flags - HELD_FLAGS:
        return Standing.REFUSED
    if not flags:
        return Standing.CLEAN
    if decision == APPROVE:
        return Standing.CLEAN
    return Standing.REJECTED if decision == REJECT else Standing.HELD


class ReviewError(Exception):
    """A review that cannot be recorded; `status` is the HTTP answer it deserves."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True, slots=True)
class Review:
    """An operator's decision on a held trip."""

    trip_id: str
    decision: str
    note: str
    decided_by: str
    decided_at: datetime


def _review(row: TripReviewRecord) -> Review:
    return Review(row.trip_id, row.decision, row.note, row.decided_by, row.decided_at)


class TripReviews:
    """Reviews in the database (blocking calls: run them in a worker thread)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def decisions(self, trip_ids: Iterable[str] | None = None) -> dict[str, str]:
        """trip id -> latest decision (every reviewed trip when `trip_ids` is None)."""
        query = select(TripReviewRecord.trip_id, TripReviewRecord.decision)
        if trip_ids is not None:
            query = query.where(col(TripReviewRecord.trip_id).in_(list(trip_ids)))
        with Session(self._store.engine) as session:
            return dict(session.exec(query).all())

    def of(self, trip_id: str) -> Review | None:
        """The decision on one trip."""
        with Session(self._store.engine) as session:
            row = session.get(TripReviewRecord, trip_id)
            return None if row is None else _review(row)

    def decide(self, trip_id: str, decision: str, note: str, by: str, at: datetime) -> Review:
        """Record `by`'s decision on a held trip (or change an earlier one)."""
        if decision not in (APPROVE, REJECT):
            raise ReviewError(422, f"decision: 'approve' or 'reject', got {decision!r}")
        with Session(self._store.engine) as session:
            trip = session.get(TripRecord, trip_id)
            if trip is None:
                raise ReviewError(404, f"unknown trip {trip_id!r}")
            if standing(trip, None) is not Standing.HELD:
                raise ReviewError(
                    409, f"trip {trip_id} is not held for review ({standing(trip, None).value})"
                )
            row = session.get(TripReviewRecord, trip_id) or TripReviewRecord(
                trip_id=trip_id, decision=decision, decided_by=by, decided_at=at
            )
            row.decision, row.note, row.decided_by, row.decided_at = decision, note, by, at
            session.add(row)
            session.commit()
            session.refresh(row)
            return _review(row)

    def held(self, limit: int = 200) -> list[tuple[TripRecord, Review | None]]:
        """Trips carrying a suspicion, newest first, with their decision (None = waiting)."""
        with Session(self._store.engine) as session:
            trips = session.exec(
                select(TripRecord)
                .where(col(TripRecord.flags) != "")
                .order_by(col(TripRecord.picked_up_at).desc())
            ).all()
            found = [t for t in trips if flags_of(t) & HELD_FLAGS and not t.unpaid_reason][:limit]
            reviews = {
                row.trip_id: _review(row)
                for row in session.exec(
                    select(TripReviewRecord).where(
                        col(TripReviewRecord.trip_id).in_([t.id for t in found])
                    )
                ).all()
            }
            return [(trip, reviews.get(trip.id)) for trip in found]

    def rejected_since(self, since: datetime) -> list[Review]:
        """Rejections decided at or after `since` (journeys to cancel at the registry)."""
        with Session(self._store.engine) as session:
            rows = session.exec(
                select(TripReviewRecord).where(
                    TripReviewRecord.decision == REJECT, col(TripReviewRecord.decided_at) >= since
                )
            ).all()
            return [_review(row) for row in rows]
