"""Adapter: REST routes on ride requests — list, detail with history, trips, operator actions."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated

import structlog
from fastapi import APIRouter, HTTPException, Query
from sqlmodel import Session, col, select

from dispatcher.effects import RejectionReason
from dispatcher.events import Actor, FallbackRequested
from dispatcher.model import RequestId
from dispatcher.request_machine import Cause, RequestState, RideRequest
from dispatcher.state import DispatcherState
from line_service.dispatch.intake import Outcome, Rejected, outcome_of
from line_service.storage.store import RideRequestRecord, Store, from_record
from line_service.web.auth import Operator, Viewer
from line_service.web.deps import IntakeDep, NetworkDep, StateDep, StoreDep, line_of
from line_service.web.models import (
    AUTH_ERRORS,
    CONFLICT,
    NOT_FOUND,
    UNAVAILABLE,
    CancelIn,
    RequestListOut,
    RideRequestDetail,
    RideRequestOut,
    TransitionOut,
)
from line_service.web.operator_accounts import Role
from line_service.web.views import request_out

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v1", tags=["requests"])

StateFilter = Annotated[RequestState | None, Query(description="only requests in this state")]
Limit = Annotated[int, Query(ge=1, le=500)]


def stored_requests(
    store: Store,
    line_id: str | None,
    state: RequestState | None,
    stop_id: str | None,
    since: datetime | None,
    limit: int,
) -> list[RideRequest]:
    """Requests from the database matching the filters, newest first (blocking)."""
    query = select(RideRequestRecord)
    if line_id is not None:
        query = query.where(RideRequestRecord.line_id == line_id)
    if state is not None:
        query = query.where(RideRequestRecord.state == state.value)
    if stop_id is not None:
        query = query.where(RideRequestRecord.stop_id == stop_id)
    if since is not None:
        query = query.where(col(RideRequestRecord.updated_at) >= since)
    query = query.order_by(col(RideRequestRecord.created_at).desc()).limit(limit)
    with Session(store.engine) as session:
        return [from_record(row) for row in session.exec(query).all()]


async def find_requests(
    store: Store,
    state: DispatcherState,
    line_id: str | None = None,
    request_state: RequestState | None = None,
    stop_id: str | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[RideRequest]:
    """Live requests (engine state) merged over the stored history, newest first."""
    rows = await asyncio.to_thread(
        stored_requests, store, line_id, request_state, stop_id, since, limit
    )
    found = {request.id: request for request in rows}
    for request in state.requests.values():
        if (
            (line_id is None or request.line_id == line_id)
            and (request_state is None or request.state is request_state)
            and (stop_id is None or request.stop_id == stop_id)
            and (since is None or request.updated_at >= since)
        ):
            found[request.id] = request
    ordered = sorted(found.values(), key=lambda r: r.created_at, reverse=True)
    return ordered[:limit]


@router.get("/requests", responses=AUTH_ERRORS | NOT_FOUND)
async def list_requests(
    network: NetworkDep,
    live: StateDep,
    store: StoreDep,
    caller: Viewer,
    line_id: str | None = None,
    state: StateFilter = None,
    stop_id: str | None = None,
    since: Annotated[datetime | None, Query(description="updated at or after (RFC 3339)")] = None,
    limit: Limit = 50,
) -> RequestListOut:
    """Requests, newest first: the live ones and the stored history, filtered."""
    if line_id is not None:
        line_of(network, line_id)
    if since is not None and since.tzinfo is None:
        raise HTTPException(422, "since: give a timezone (e.g. 2026-11-23T06:00:00Z)")
    found = await find_requests(store, live, line_id, state, stop_id, since, limit)
    with_phone = caller.allows(Role.OPERATOR)
    items = [request_out(request, with_phone) for request in found]
    return RequestListOut(items=items, count=len(items))


@router.get("/lines/{line_id}/trips", responses=AUTH_ERRORS | NOT_FOUND)
async def list_trips(
    line_id: str,
    network: NetworkDep,
    live: StateDep,
    store: StoreDep,
    caller: Viewer,
    limit: Limit = 50,
) -> RequestListOut:
    """Trips made on a line (picked-up requests), newest first."""
    line_of(network, line_id)
    found = await find_requests(store, live, line_id, RequestState.PICKED_UP, limit=limit)
    found.sort(key=lambda r: r.updated_at, reverse=True)
    with_phone = caller.allows(Role.OPERATOR)
    items = [request_out(request, with_phone) for request in found]
    return RequestListOut(items=items, count=len(items))


async def _request(store: Store, state: DispatcherState, request_id: str) -> RideRequest:
    live = state.requests.get(RequestId(request_id))
    if live is not None:
        return live
    stored = await asyncio.to_thread(store.request, request_id)
    if stored is None:
        raise HTTPException(404, f"unknown request {request_id!r}")
    return stored


@router.get("/requests/{request_id}", responses=AUTH_ERRORS | NOT_FOUND)
async def get_request(
    request_id: str, live: StateDep, store: StoreDep, caller: Viewer
) -> RideRequestDetail:
    """A request with its full history (every transition, oldest first)."""
    request = await _request(store, live, request_id)
    history = await asyncio.to_thread(store.history, request_id)
    return RideRequestDetail(
        request=request_out(request, caller.allows(Role.OPERATOR)),
        history=[
            TransitionOut(
                at=row.at,
                from_state=RequestState(row.from_state) if row.from_state else None,
                to_state=RequestState(row.to_state),
                cause=Cause(row.cause),
            )
            for row in history
        ],
    )


def _acted(request: RideRequest, outcome: Outcome) -> RideRequestOut:
    """The request once an operator acted on it; 404 or 409 when the core refused."""
    if isinstance(outcome, Rejected):
        if outcome.reason is RejectionReason.UNKNOWN_REQUEST:
            raise HTTPException(404, f"unknown request {request.id!r}")
        where = "no longer waiting" if request.is_waiting else request.state.value
        raise HTTPException(409, f"request {request.id} is {where}: only a waiting request can")
    return request_out(outcome.request, with_phone=True)


@router.post(
    "/requests/{request_id}/cancel", responses=AUTH_ERRORS | NOT_FOUND | CONFLICT | UNAVAILABLE
)
async def cancel_request(
    request_id: str,
    live: StateDep,
    store: StoreDep,
    intake: IntakeDep,
    caller: Operator,
    body: CancelIn | None = None,
) -> RideRequestOut:
    """Cancel a waiting request (operator): its signs go dark, its terminal says so."""
    request = await _request(store, live, request_id)
    log.info(
        "operator.cancel", operator=caller.name, request_id=request_id, reason=body and body.reason
    )
    return _acted(request, await intake.cancel(request, Actor.OPERATOR))


@router.post(
    "/requests/{request_id}/fallback",
    responses=AUTH_ERRORS | NOT_FOUND | CONFLICT | UNAVAILABLE,
)
async def send_fallback(
    request_id: str, live: StateDep, store: StoreDep, intake: IntakeDep, caller: Operator
) -> RideRequestOut:
    """Send the line's fallback (taxi) to a waiting rider now (operator)."""
    request = await _request(store, live, request_id)
    log.info("operator.fallback", operator=caller.name, request_id=request_id)
    event = FallbackRequested(request.line_id, request.id)
    outcome = outcome_of(await intake.submit(event)) or Rejected(
        RejectionReason.NOT_WAITING, "nothing changed"
    )
    return _acted(request, outcome)
