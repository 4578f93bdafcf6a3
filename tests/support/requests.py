"""Test support: ride requests as the core makes them — one builder for every test."""

from __future__ import annotations

from datetime import datetime, timedelta

from dispatcher.model import LineId, RequestId, StopId, TerminalId
from dispatcher.request_machine import (
    Cause,
    Channel,
    DeviceRequestId,
    RequestState,
    RideRequest,
    Source,
)


def ride_request(
    request_id: str,
    at: datetime,
    *,
    line: str = "calais-dunkerque",
    stop: str = "marck-est",
    destination: str = "dunkerque-est",
    state: RequestState = RequestState.WAITING,
    cause: Cause = Cause.REQUESTED,
    phone: str | None = None,
    terminal: str | None = None,
    source: Source | None = None,
    code: str | None = "4821",
    seats: int = 1,
    created_at: datetime | None = None,
    wait: timedelta = timedelta(minutes=15),
    driver_ref: str | None = None,
) -> RideRequest:
    """A request last changed at `at` (asked then, unless `created_at` says otherwise).

    Its source defaults to the press of `terminal`, else the SMS of `phone`, else the API.
    """
    if source is None:
        if terminal is not None:
            source = Source.of_terminal(TerminalId(terminal), DeviceRequestId(request_id))
        elif phone is not None:
            source = Source(Channel.SMS, f"SM{request_id}")
        else:
            source = Source(Channel.API, request_id)
    asked = at if created_at is None else created_at
    return RideRequest(
        id=RequestId(request_id),
        line_id=LineId(line),
        stop_id=StopId(stop),
        destination_id=StopId(destination),
        seats=seats,
        source=source,
        terminal_id=TerminalId(terminal) if terminal else None,
        phone=phone,
        code=code,
        state=state,
        cause=cause,
        created_at=asked,
        deadline_at=asked + wait,
        updated_at=at,
        driver_ref=driver_ref,
    )


def waiting_request(
    request_id: str,
    at: datetime,
    *,
    phone: str | None = None,
    terminal: str | None = None,
    seats: int = 1,
    wait: timedelta = timedelta(minutes=15),
) -> RideRequest:
    """A request waiting at Marck for Dunkerque since `at` (by SMS, or at `terminal`)."""
    source = None if terminal else Source(Channel.SMS, f"SM{request_id}")
    return ride_request(
        request_id, at, phone=phone, terminal=terminal, source=source, seats=seats, wait=wait
    )
