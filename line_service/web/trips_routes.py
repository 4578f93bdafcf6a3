"""Adapter: REST routes on trips held by the anti-abuse rules — list them, review them.

`GET /api/v1/trips?flagged=true` lists trips carrying a suspicion (`validation_checks`), with
their standing and any decision; `POST /api/v1/trips/{id}/review` records an operator's
`approve` (payable and exportable) or `reject` (unpaid, marked fraudulent), with who and when.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Literal

import structlog
from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from line_service.authority.driver_identity import identify_driver, shown_driver
from line_service.authority.trip_reviews import (
    Review,
    ReviewError,
    TripReviews,
    flags_of,
    standing,
)
from line_service.storage.store import TripRecord, as_utc
from line_service.web.auth import Operator, Viewer
from line_service.web.deps import NetworkDep, NowDep, RpcOutboxDep, StoreDep
from line_service.web.models import AUTH_ERRORS, CONFLICT, NOT_FOUND, UNPROCESSABLE

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v1", tags=["trips"])


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReviewOut(_Body):
    """An operator's decision on a held trip."""

    decision: Literal["approve", "reject"]
    note: str
    decided_by: str
    decided_at: datetime


class HeldTripOut(_Body):
    """A trip an anti-abuse suspicion holds (unpaid, unexported until approved)."""

    id: str
    line_id: str
    origin: str
    destination: str
    requested_at: datetime
    picked_up_at: datetime
    distance_m: int
    seats: int
    driver: str = Field(description="the driver's key, a number's last two digits hidden")
    flags: list[str]
    standing: Literal["clean", "held", "rejected", "refused", "unpaid"]
    review: ReviewOut | None


class HeldTripsOut(_Body):
    """Held trips, newest first."""

    items: list[HeldTripOut]
    count: int


class ReviewIn(_Body):
    """An operator's decision: approve makes the trip payable and exportable; reject keeps it
    unpaid and marks it fraudulent (to be cancelled at the registry if it was sent)."""

    decision: Literal["approve", "reject"]
    note: Annotated[str, Field(max_length=500)] = ""


def _review_out(review: Review | None) -> ReviewOut | None:
    if review is None:
        return None
    decision: Literal["approve", "reject"] = "approve" if review.decision == "approve" else "reject"
    return ReviewOut(
        decision=decision,
        note=review.note,
        decided_by=review.decided_by,
        decided_at=as_utc(review.decided_at),
    )


def _held_out(trip: TripRecord, review: Review | None, names: dict[str, str]) -> HeldTripOut:
    driver = identify_driver(trip.driver_ref)
    return HeldTripOut(
        id=trip.id,
        line_id=trip.line_id,
        origin=names.get(trip.origin_id, trip.origin_id),
        destination=names.get(trip.destination_id, trip.destination_id),
        requested_at=as_utc(trip.requested_at),
        picked_up_at=as_utc(trip.picked_up_at),
        distance_m=trip.distance_m,
        seats=trip.seats,
        driver=shown_driver(driver.key) if driver else "non identifié",
        flags=sorted(flags_of(trip)),
        standing=standing(trip, None if review is None else review.decision).value,
        review=_review_out(review),
    )


@router.get("/trips", responses=AUTH_ERRORS | UNPROCESSABLE)
async def list_held_trips(
    network: NetworkDep,
    store: StoreDep,
    caller: Viewer,
    flagged: Annotated[bool, Query(description="only trips held by a suspicion (required)")],
    pending: Annotated[bool, Query(description="only those no operator decided yet")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> HeldTripsOut:
    """Trips held by the anti-abuse suspicions, newest first, with any decision."""
    if not flagged:
        raise HTTPException(422, "flagged: only flagged=true is served here")
    found = await asyncio.to_thread(TripReviews(store).held, limit)
    names = {str(s.id): s.name for line in network.lines for s in line.all_stops()}
    items = [_held_out(trip, review, names) for trip, review in found]
    if pending:
        items = [item for item in items if item.review is None]
    return HeldTripsOut(items=items, count=len(items))


@router.post("/trips/{trip_id}/review", responses=AUTH_ERRORS | NOT_FOUND | CONFLICT)
async def review_trip(
    trip_id: str,
    body: ReviewIn,
    store: StoreDep,
    now: NowDep,
    caller: Operator,
    outbox: RpcOutboxDep,
) -> ReviewOut:
    """Approve or reject a held trip (operator); the latest decision counts. A rejected trip's
    journey is cancelled at the registry as fraud (queued in the outbox; never sent if it was
    not yet)."""
    reviews = TripReviews(store)
    try:
        review = await asyncio.to_thread(
            reviews.decide, trip_id, body.decision, body.note, caller.name, now
        )
    except ReviewError as exc:
        raise HTTPException(exc.status, str(exc)) from exc
    if body.decision == "reject":
        reason = f"rejeté par {caller.name}" + (f" : {body.note}" if body.note else "")
        await asyncio.to_thread(outbox.cancel_journey, trip_id, reason)
    log.info("operator.trip_review", operator=caller.name, trip_id=trip_id, decision=body.decision)
    out = _review_out(review)
    assert out is not None
    return out
