"""Pure: the lifecycle of one ride request.

Theory of operation
-------------------
A request is born WAITING (the rider asked, the line is open, the destination lies downstream)
or REFUSED (it never lights a sign; a stop in commissioning refuses every rider), or ANNOUNCED
when the rider said they are coming ("J'arrive": `CAL DUNKERQUE 10` by SMS). An announcement
lights the stop's signs with the time left ("DANS 10 MIN") and holds its code; its deadline is
the announced arrival plus the line's grace:

    ANNOUNCED --the rider is at the stop (press, SMS ICI, the same ask)-> WAITING
    ANNOUNCED --announced time + grace passed, never came-------------> EXPIRED (lapsed)
    ANNOUNCED --cancelled / left with a driver / code validated-------> CANCELLED / PICKED_UP

From WAITING exactly one way out is taken:

    WAITING --driver validated the code / rider reported departure--> PICKED_UP
    WAITING --rider or operator cancelled---------------------------> CANCELLED
    WAITING --guarantee reached in service hours, line has a fallback-> FALLBACK
    WAITING --an operator sends the fallback now---------------------> FALLBACK
    WAITING --its creation could not be stored in time----------------> REFUSED
    WAITING --deadline reached, no fallback--------------------------> EXPIRED
    FALLBACK --driver validated the code before the taxi came--------> PICKED_UP

Every other state is final. Invariants: only WAITING and ANNOUNCED requests are shown on signs
(ANNOUNCED ones with their time, never on a terminal's screen); a final state
never changes; a transition not in `TRANSITIONS` is rejected and leaves the request unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import NewType

from dispatcher.model import LineId, RequestId, StopId, TerminalId


class RequestState(StrEnum):
    """Where a request stands."""

    WAITING = "waiting"
    ANNOUNCED = "announced"  # the rider is on the way ("J'arrive"): not at the stop yet
    PICKED_UP = "picked_up"
    CANCELLED = "cancelled"
    FALLBACK = "fallback"
    EXPIRED = "expired"
    REFUSED = "refused"


class Channel(StrEnum):
    """How the rider asked."""

    TERMINAL = "terminal"
    SMS = "sms"
    API = "api"
    VOICE = "voice"  # a phone call (keypad menu); the caller's number gets the SMS updates


class Cause(StrEnum):
    """Why a request changed state (recorded in its history)."""

    REQUESTED = "requested"
    CODE_VALIDATED = "code_validated"
    RIDER_DEPARTED = "rider_departed"
    RIDER_CANCELLED = "rider_cancelled"
    OPERATOR_CANCELLED = "operator_cancelled"
    GUARANTEE_REACHED = "guarantee_reached"
    OPERATOR_FALLBACK = "operator_fallback"
    DEADLINE_REACHED = "deadline_reached"
    CLOSED = "closed"
    COMMISSIONING = "commissioning"
    UNKNOWN_DESTINATION = "unknown_destination"
    STOP_FULL = "stop_full"
    REMOTE_FULL = "remote_full"
    NO_FREE_CODE = "no_free_code"
    ALREADY_WAITING = "already_waiting"
    STORAGE_FAILED = "storage_failed"
    RIDER_ANNOUNCED = "rider_announced"
    RIDER_ARRIVED = "rider_arrived"
    ANNOUNCEMENT_LAPSED = "announcement_lapsed"


TRANSITIONS: dict[RequestState, dict[Cause, RequestState]] = {
    RequestState.WAITING: {
        Cause.CODE_VALIDATED: RequestState.PICKED_UP,
        Cause.RIDER_DEPARTED: RequestState.PICKED_UP,
        Cause.RIDER_CANCELLED: RequestState.CANCELLED,
        Cause.OPERATOR_CANCELLED: RequestState.CANCELLED,
        Cause.GUARANTEE_REACHED: RequestState.FALLBACK,
        Cause.OPERATOR_FALLBACK: RequestState.FALLBACK,
        Cause.DEADLINE_REACHED: RequestState.EXPIRED,
        Cause.STORAGE_FAILED: RequestState.REFUSED,
    },
    RequestState.ANNOUNCED: {
        Cause.RIDER_ARRIVED: RequestState.WAITING,
        Cause.CODE_VALIDATED: RequestState.PICKED_UP,
        Cause.RIDER_DEPARTED: RequestState.PICKED_UP,
        Cause.RIDER_CANCELLED: RequestState.CANCELLED,
        Cause.OPERATOR_CANCELLED: RequestState.CANCELLED,
        Cause.ANNOUNCEMENT_LAPSED: RequestState.EXPIRED,
        Cause.STORAGE_FAILED: RequestState.REFUSED,
    },
    RequestState.FALLBACK: {Cause.CODE_VALIDATED: RequestState.PICKED_UP},
    RequestState.PICKED_UP: {},
    RequestState.CANCELLED: {},
    RequestState.EXPIRED: {},
    RequestState.REFUSED: {},
}

LIVE_STATES = frozenset({RequestState.WAITING, RequestState.ANNOUNCED})
FINAL_STATES = frozenset(state for state, way_out in TRANSITIONS.items() if not way_out)


class IllegalTransition(Exception):  # noqa: N818 (public name, kept for callers)
    """A transition not in `TRANSITIONS` was attempted; the request is unchanged."""


DeviceRequestId = NewType("DeviceRequestId", str)
"""A terminal's own id of one press (MQTT `request_id`), echoed on its screen."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where a request came from, for idempotency: a terminal's press, an SMS MessageSid…

    A terminal's presses are numbered by the terminal itself, so its ref is
    `<terminal id>/<device request id>`: built and read here only (`of_terminal`,
    `device_request_id`).
    """

    channel: Channel
    ref: str

    @classmethod
    def of_terminal(cls, terminal_id: TerminalId, request_id: DeviceRequestId) -> Source:
        """The source of a press on a terminal, under the terminal's own id of it."""
        return cls(Channel.TERMINAL, f"{terminal_id}/{request_id}")

    @property
    def device_request_id(self) -> DeviceRequestId | None:
        """The terminal's own id of the press (None for every other channel)."""
        if self.channel is not Channel.TERMINAL:
            return None
        return DeviceRequestId(self.ref.partition("/")[2]) or None


@dataclass(frozen=True, slots=True, kw_only=True)
class RideRequest:
    """One rider's request at one stop, for one destination."""

    id: RequestId
    line_id: LineId
    stop_id: StopId
    destination_id: StopId
    seats: int
    source: Source
    terminal_id: TerminalId | None
    phone: str | None
    code: str | None
    state: RequestState
    cause: Cause
    created_at: datetime
    deadline_at: datetime
    updated_at: datetime
    driver_ref: str | None = None

    @property
    def is_waiting(self) -> bool:
        """True while the rider waits at the stop."""
        return self.state is RequestState.WAITING

    @property
    def is_announced(self) -> bool:
        """True while the rider is on the way (signs say when they come)."""
        return self.state is RequestState.ANNOUNCED

    @property
    def is_live(self) -> bool:
        """True while the request may still light signs (waiting or announced)."""
        return self.state in LIVE_STATES


def next_state(state: RequestState, cause: Cause) -> RequestState | None:
    """The state `cause` leads to from `state`, or None when the transition is illegal."""
    return TRANSITIONS[state].get(cause)


def transition(
    request: RideRequest, cause: Cause, at: datetime, driver_ref: str | None = None
) -> RideRequest:
    """The request after `cause`; raises IllegalTransition (request untouched) when not allowed."""
    target = next_state(request.state, cause)
    if target is None:
        raise IllegalTransition(f"{request.id}: {cause} is not allowed in {request.state}")
    return replace(
        request,
        state=target,
        cause=cause,
        updated_at=at,
        driver_ref=driver_ref if driver_ref is not None else request.driver_ref,
    )
