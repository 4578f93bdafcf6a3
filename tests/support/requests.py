"""Test support: ride requests as the core makes them, for seeding stores."""

from __future__ import annotations

from datetime import datetime, timedelta

from dispatcher.model import LineId, RequestId, StopId, TerminalId
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest, Source


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
    source = (
        Source(Channel.TERMINAL, f"{terminal}/{request_id}")
        if terminal
        else Source(Channel.SMS, f"SM{request_id}")
    )
    return RideRequest(
        id=RequestId(request_id),
        line_id=LineId("calais-dunkerque"),
        stop_id=StopId("marck-est"),
        destination_id=StopId("dunkerque-est"),
        seats=seats,
        source=source,
        terminal_id=TerminalId(terminal) if terminal else None,
        phone=phone,
        code="4821",
        state=RequestState.WAITING,
        cause=Cause.REQUESTED,
        created_at=at,
        deadline_at=at + wait,
        updated_at=at,
    )
