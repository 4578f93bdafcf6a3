"""Adapter: the public REST routes (health, readiness, rides and validations, public line state)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Response, status

from dispatcher.effects import RejectionReason
from dispatcher.model import Line, RequestId, StopId
from dispatcher.request_machine import Channel, RequestState, Source
from line_service.dispatch.intake import Rejected, new_request_ids
from line_service.driver_trips.route_plan import PlannedTrip, next_pass
from line_service.estimates.estimator import WaitEstimator
from line_service.estimates.wait_estimate import WaitEstimate, announced_driver_minutes
from line_service.web.abuse_guard import CallerDep
from line_service.web.auth import DriverOrOperator, Rider, acting_driver
from line_service.web.deps import (
    AnnouncedTripsDep,
    EstimatesDep,
    IntakeDep,
    NetworkDep,
    NowDep,
    ReadinessDep,
    StateDep,
    line_of,
)
from line_service.web.models import (
    AUTH_ERRORS,
    CONFLICT,
    NOT_FOUND,
    TOO_MANY,
    UNAVAILABLE,
    UNPROCESSABLE,
    LiveLineOut,
    LiveWaitEstimateOut,
    Readiness,
    RideRequestIn,
    RideRequestOut,
    ValidationIn,
    WaitEstimateOut,
)
from line_service.web.views import sign_out, waiting_on

health = APIRouter(tags=["health"])
api = APIRouter(prefix="/api/v1", tags=["rides"])


@health.get("/healthz")
async def healthz() -> dict[str, str]:
    """200 as soon as the process serves HTTP."""
    return {"status": "ok"}


@health.get("/readyz", responses={503: {"model": Readiness}}, response_model_exclude_none=True)
async def readyz(ready: ReadinessDep, response: Response) -> Readiness:
    """200 only when the broker and the database are reachable and this process dispatches
    (a cluster's standby answers 503: send it no traffic); 503 otherwise."""
    checks = Readiness(**await ready())
    if not (checks.broker and checks.database) or checks.role == "standby":
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return checks


@api.post(
    "/lines/{line_id}/validations",
    responses=AUTH_ERRORS | NOT_FOUND | CONFLICT | UNAVAILABLE | TOO_MANY,
)
async def validate_code(
    line_id: str,
    body: ValidationIn,
    network: NetworkDep,
    intake: IntakeDep,
    caller: DriverOrOperator,
    limits: CallerDep,
) -> RideRequestOut:
    """A signed-in driver sends the rider's code: the rider is on board (an operator may
    validate on a driver's behalf; the trip then names the operator). 429 past the wrong-code
    budgets."""
    line = line_of(network, line_id)
    driver = acting_driver(caller)
    outcome = await limits.validate(intake, line.id, body.code, driver, identity=driver)
    if isinstance(outcome, Rejected):
        if outcome.reason is RejectionReason.UNKNOWN_CODE:
            raise HTTPException(404, f"no waiting rider holds code {body.code} on {line_id}")
        raise HTTPException(409, outcome.detail)
    return RideRequestOut.of(outcome.request, with_code=False)


@api.post(
    "/requests",
    status_code=status.HTTP_201_CREATED,
    responses=AUTH_ERRORS | NOT_FOUND | UNPROCESSABLE | UNAVAILABLE | TOO_MANY,
)
async def create_request(
    body: RideRequestIn,
    network: NetworkDep,
    intake: IntakeDep,
    now: NowDep,
    caller: Rider,
    limits: CallerDep,
) -> RideRequestOut:
    """A signed-in rider asks for a ride from an app; the answer says WAITING (with the code),
    ANNOUNCED when `arriving_in_minutes` says the rider is on the way ("J'arrive"), or REFUSED
    and why. The request carries the account's verified number (429 past the requests allowed
    per phone and per address)."""
    line = line_of(network, body.line_id)
    if line.stop(StopId(body.stop_id)) is None:
        raise HTTPException(404, f"unknown stop {body.stop_id!r} on {body.line_id}")
    assert caller.account is not None  # the Rider guard admits accounts only
    await limits.admit_request(caller.account.phone)
    request_id, _code = new_request_ids()
    outcome = await intake.request_ride(
        line_id=line.id,
        stop_id=StopId(body.stop_id),
        destination_id=StopId(body.destination_id),
        seats=body.seats,
        # Scoped to the account: another account's client_ref never names this request.
        source=Source(Channel.API, f"{caller.account.ref}:{body.client_ref or request_id}"),
        phone=caller.account.phone,
        request_id=request_id,
        arriving_at=None
        if body.arriving_in_minutes is None
        else now + timedelta(minutes=body.arriving_in_minutes),
    )
    if isinstance(outcome, Rejected):
        raise HTTPException(422, "the request could not be placed")
    return RideRequestOut.of(outcome.request)


@api.post("/requests/{request_id}/arrived", responses=AUTH_ERRORS | NOT_FOUND | CONFLICT)
async def rider_arrived(
    request_id: str, live: StateDep, intake: IntakeDep, caller: Rider
) -> RideRequestOut:
    """The signed-in rider who announced their coming is at the stop: WAITING, with the code."""
    assert caller.account is not None  # the Rider guard admits accounts only
    request = live.requests.get(RequestId(request_id))
    if request is None or not request.source.ref.startswith(f"{caller.account.ref}:"):
        raise HTTPException(404, f"no request {request_id!r} of yours")
    if request.state is not RequestState.ANNOUNCED:
        raise HTTPException(409, f"request {request_id} is {request.state.value}, not announced")
    outcome = await intake.arrived(request)
    if isinstance(outcome, Rejected):
        raise HTTPException(409, outcome.detail)
    return RideRequestOut.of(outcome.request)


def _estimates_of(
    estimator: WaitEstimator | None,
    line: Line,
    stops: list[StopId],
    weekday: int,
    hour: int,
    announced: Callable[[], tuple[list[PlannedTrip], datetime]] | None = None,
) -> list[LiveWaitEstimateOut]:
    """Every destination of `stops` at a local hour of a weekday (those with an estimate);
    with `announced` (now: the trips drivers announced), the drivers coming within each."""
    if estimator is None:
        return []
    trips, now = announced() if announced is not None else ([], None)
    found = []
    for stop_id in stops:
        for destination in line.destinations_from(stop_id):
            estimate = estimator.estimate(line, stop_id, destination.id, weekday, hour)
            if estimate is None:
                continue
            found.append(
                LiveWaitEstimateOut(
                    stop_id=stop_id,
                    destination_id=destination.id,
                    weekday=weekday,
                    hour=hour,
                    median_minutes=round(estimate.median.total_seconds() / 60, 1),
                    p90_minutes=round(estimate.p90.total_seconds() / 60, 1),
                    source=estimate.source.value,
                    observations=estimate.observations,
                    announced_driver_minutes=None
                    if now is None
                    else _driver_minutes(trips, stop_id, destination.id, now, estimate),
                )
            )
    return found


def _driver_minutes(
    trips: list[PlannedTrip],
    stop_id: StopId,
    destination_id: StopId,
    now: datetime,
    estimate: WaitEstimate,
) -> int | None:
    passes_at = next_pass(trips, stop_id, destination_id, now)
    return announced_driver_minutes(estimate, None if passes_at is None else passes_at - now)


def _local(line: Line, now: datetime) -> datetime:
    return now.astimezone(ZoneInfo(line.timezone))


@api.get("/lines/{line_id}/stops/{stop_id}/wait-estimates", responses=NOT_FOUND)
async def wait_estimates(
    line_id: str,
    stop_id: str,
    network: NetworkDep,
    estimator: EstimatesDep,
    now: NowDep,
    weekday: Annotated[int | None, Query(ge=0, le=6, description="0 = Monday")] = None,
    hour: Annotated[int | None, Query(ge=0, le=23, description="local hour")] = None,
) -> list[WaitEstimateOut]:
    """The wait to expect from this stop to each destination (default: now, local time)."""
    line = line_of(network, line_id)
    if line.stop(StopId(stop_id)) is None:
        raise HTTPException(404, f"unknown stop {stop_id!r} on {line_id}")
    local = _local(line, now)
    found = await asyncio.to_thread(
        _estimates_of,
        estimator,
        line,
        [StopId(stop_id)],
        local.weekday() if weekday is None else weekday,
        local.hour if hour is None else hour,
    )
    return [
        WaitEstimateOut.model_validate(item.model_dump(exclude={"announced_driver_minutes"}))
        for item in found
    ]


@api.get("/lines/{line_id}/live", responses=NOT_FOUND)
async def live_line(
    line_id: str,
    network: NetworkDep,
    state: StateDep,
    now: NowDep,
    estimator: EstimatesDep,
    driver_trips: AnnouncedTripsDep,
) -> LiveLineOut:
    """Waiting riders, what every sign shows, active alerts, and the waits to expect now (with
    a driver announced to pass within them)."""
    line = line_of(network, line_id)
    local = _local(line, now)
    boarding = [stop.id for d in line.directions for stop in d.stops[:-1]]

    def announced() -> tuple[list[PlannedTrip], datetime]:
        return ([] if driver_trips is None else driver_trips.planned(line)), now

    estimates = await asyncio.to_thread(
        _estimates_of, estimator, line, boarding, local.weekday(), local.hour, announced
    )
    signs = [sign_out(state, stop, spec, now) for stop in line.all_stops() for spec in stop.signs]
    return LiveLineOut(
        line_id=line.id,
        waiting=[
            RideRequestOut.of(request, with_code=False) for request in waiting_on(line, state)
        ],
        signs=signs,
        alerts=[alert.message for alert in state.alerts.values() if alert.line_id == line.id],
        wait_estimates=estimates,
    )
