"""Adapter: the registry outbox seen by operators — journeys by status, counts, fraud cancel.

`GET /api/v1/rpc/journeys?status=…` lists journeys (one per trip) with their status at the
Registre de preuve de covoiturage (or ours before sending: queued, not_sent, expired) and why;
`GET /api/v1/rpc/counts` counts them per status (the dashboard's line page);
`POST /api/v1/rpc/journeys/{id}/cancel` queues the cancellation of a fraudulent one.
"""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from line_service.authority.rpc_outbox import STATUSES
from line_service.storage.rpc_outbox_table import RpcJourneyRecord
from line_service.storage.store import as_utc
from line_service.web.auth import Operator
from line_service.web.deps import RpcOutboxDep
from line_service.web.models import AUTH_ERRORS, NOT_FOUND

router = APIRouter(prefix="/api/v1/rpc", tags=["registry"])

Status = Literal[STATUSES]  # type: ignore[valid-type]


class JourneyOut(BaseModel):
    """One journey's attestation."""

    model_config = ConfigDict(frozen=True)

    journey_id: str
    line_id: str
    trip_at: datetime
    status: str
    final: bool
    reason: str
    details: dict[str, Any]
    sent_at: datetime | None
    checked_at: datetime | None
    next_at: datetime | None
    cancel_asked: bool


class JourneyListOut(BaseModel):
    """Journeys, the latest trips first."""

    journeys: list[JourneyOut]


class CountsOut(BaseModel):
    """How many journeys are in each status."""

    counts: dict[str, int]


class FraudIn(BaseModel):
    """Why the trip is cancelled at the registry (sent as the cancel's message)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    reason: Annotated[str, Field(min_length=1, max_length=512)]


def _out(row: RpcJourneyRecord) -> JourneyOut:
    return JourneyOut(
        journey_id=row.journey_id,
        line_id=row.line_id,
        trip_at=as_utc(row.trip_at),
        status=row.status,
        final=row.final,
        reason=row.reason,
        details=json.loads(row.details) if row.details else {},
        sent_at=None if row.sent_at is None else as_utc(row.sent_at),
        checked_at=None if row.checked_at is None else as_utc(row.checked_at),
        next_at=None if row.next_at is None else as_utc(row.next_at),
        cancel_asked=row.cancel_code is not None,
    )


@router.get("/journeys", responses=AUTH_ERRORS)
async def list_journeys(
    _caller: Operator,
    outbox: RpcOutboxDep,
    status: Annotated[Status | None, Query(description="only journeys in this status")] = None,
    line_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> JourneyListOut:
    """Journeys and their registry status, the latest trips first."""
    rows = await asyncio.to_thread(outbox.journeys, status, line_id, limit)
    return JourneyListOut(journeys=[_out(row) for row in rows])


@router.get("/counts", responses=AUTH_ERRORS)
async def count_journeys(
    _caller: Operator,
    outbox: RpcOutboxDep,
    line_id: Annotated[str | None, Query(max_length=64)] = None,
) -> CountsOut:
    """How many journeys are in each status (of one line)."""
    counts = await asyncio.to_thread(outbox.counts, line_id)
    return CountsOut(counts=dict(sorted(counts.items())))


@router.post("/journeys/{journey_id}/cancel", status_code=202, responses=AUTH_ERRORS | NOT_FOUND)
async def cancel_journey(
    journey_id: Annotated[str, Path(max_length=64, pattern="^[a-z0-9]{1,64}$")],
    body: FraudIn,
    _caller: Operator,
    outbox: RpcOutboxDep,
) -> JourneyOut:
    """Queue the journey's cancellation at the registry (fraud); sent by the outbox."""
    if not await asyncio.to_thread(outbox.cancel_journey, journey_id, body.reason):
        raise HTTPException(404, f"no trip {journey_id}")
    row = await asyncio.to_thread(outbox.get, journey_id)
    if row is None:
        raise HTTPException(404, f"no trip {journey_id}")
    return _out(row)
