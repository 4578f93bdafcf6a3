"""Adapter: the public REST routes (health, readiness, rides and validations, public line state)."""

from __future__ import annotations

import asyncio
from typing import Annotated

import phonenumbers
from fastapi import APIRouter, Depends, HTTPException, Request, Response, status

from dispatcher.effects import Effect, RejectEvent, RejectionReason, SaveRequest
from dispatcher.events import CodeValidated, Event, RideRequested
from dispatcher.model import LineId, StopId
from dispatcher.request_machine import Channel, RideRequest, Source
from line_service.dispatch.device_gateway import new_request_ids
from line_service.runtime import Runtime
from line_service.web.models import (
    LiveLineOut,
    Problem,
    Readiness,
    RideRequestIn,
    RideRequestOut,
    ValidationIn,
)
from line_service.web.views import sign_out, waiting_on

SUBMIT_TIMEOUT_SECONDS = 10.0


def _e164(raw: str) -> str:
    try:
        number = phonenumbers.parse(raw, "FR")
    except phonenumbers.NumberParseException as exc:
        raise HTTPException(422, f"phone: not a phone number ({exc})") from exc
    if not phonenumbers.is_valid_number(number):
        raise HTTPException(422, "phone: not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def get_runtime(request: Request) -> Runtime:
    """The running service, from the lifespan state."""
    runtime: Runtime = request.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]

health = APIRouter(tags=["health"])
api = APIRouter(prefix="/api/v1", tags=["rides"])


@health.get("/healthz")
async def healthz() -> dict[str, str]:
    """200 as soon as the process serves HTTP."""
    return {"status": "ok"}


@health.get("/readyz", responses={503: {"model": Readiness}})
async def readyz(runtime: RuntimeDep, response: Response) -> Readiness:
    """200 only when the broker and the database are reachable; 503 otherwise."""
    checks = Readiness(**await runtime.ready())
    if not (checks.broker and checks.database):
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return checks


async def submit(runtime: Runtime, event: Event) -> list[Effect]:
    """Hand an event to the engine; its effects once stored (503 if that takes too long)."""
    try:
        return await asyncio.wait_for(runtime.engine.submit(event), SUBMIT_TIMEOUT_SECONDS)
    except TimeoutError as exc:
        raise HTTPException(
            503,
            "the database is not answering: the change was not stored in time and a new ride "
            "is refused (CARPOOL_STORAGE_REFUSE_SECONDS); try again shortly",
            headers={"Retry-After": "10"},
        ) from exc


def saved(effects: list[Effect]) -> RideRequest | None:
    return next((e.request for e in effects if isinstance(e, SaveRequest)), None)


def rejection(effects: list[Effect]) -> RejectEvent | None:
    return next((e for e in effects if isinstance(e, RejectEvent)), None)


@api.post(
    "/lines/{line_id}/validations",
    responses={404: {"model": Problem}, 409: {"model": Problem}},
)
async def validate_code(line_id: str, body: ValidationIn, runtime: RuntimeDep) -> RideRequestOut:
    """A driver sends the rider's code: the rider is on board."""
    if runtime.network.line(LineId(line_id)) is None:
        raise HTTPException(404, f"unknown line {line_id!r}")
    effects = await submit(runtime, CodeValidated(LineId(line_id), body.code, body.driver_ref))
    rejected = rejection(effects)
    if rejected is not None:
        if rejected.reason is RejectionReason.UNKNOWN_CODE:
            raise HTTPException(404, f"no waiting rider holds code {body.code} on {line_id}")
        raise HTTPException(409, rejected.detail)
    request = saved(effects)
    assert request is not None
    return RideRequestOut.of(request, with_code=False)


@api.post(
    "/requests",
    status_code=status.HTTP_201_CREATED,
    responses={404: {"model": Problem}, 422: {"model": Problem}},
)
async def create_request(body: RideRequestIn, runtime: RuntimeDep) -> RideRequestOut:
    """Ask for a ride from an app; the answer says WAITING (with the code) or REFUSED and why."""
    line = runtime.network.line(LineId(body.line_id))
    if line is None:
        raise HTTPException(404, f"unknown line {body.line_id!r}")
    if line.stop(StopId(body.stop_id)) is None:
        raise HTTPException(404, f"unknown stop {body.stop_id!r} on {body.line_id}")
    phone = _e164(body.phone) if body.phone else None
    request_id, code = new_request_ids()
    source = Source(Channel.API, body.client_ref or request_id)
    effects = await submit(
        runtime,
        RideRequested(
            request_id=request_id,
            line_id=line.id,
            stop_id=StopId(body.stop_id),
            destination_id=StopId(body.destination_id),
            seats=body.seats,
            source=source,
            code_candidate=code,
            phone=phone,
        ),
    )
    request = saved(effects) or runtime.engine.state.request_by_source(source)
    if request is None:
        raise HTTPException(422, "the request could not be placed")
    return RideRequestOut.of(request)


@api.get("/lines/{line_id}/live", responses={404: {"model": Problem}})
async def live_line(line_id: str, runtime: RuntimeDep) -> LiveLineOut:
    """Waiting riders, what every sign shows, and active alerts."""
    line = runtime.network.line(LineId(line_id))
    if line is None:
        raise HTTPException(404, f"unknown line {line_id!r}")
    state = runtime.engine.state
    now = runtime.clock()
    signs = [sign_out(state, stop, spec, now) for stop in line.all_stops() for spec in stop.signs]
    waiting = waiting_on(line, state)
    return LiveLineOut(
        line_id=line.id,
        waiting=[RideRequestOut.of(request, with_code=False) for request in waiting],
        signs=signs,
        alerts=[alert.message for alert in state.alerts.values() if alert.line_id == line.id],
    )
