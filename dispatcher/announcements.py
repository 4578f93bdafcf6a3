"""Pure: riders on their way ("J'arrive") — announced, then at the stop or lapsed.

An announcement is a request born ANNOUNCED (see `request_machine`): it holds its code, lights
its stop's signs with the minutes left (`sign_pages.announced_pages`) and touches no terminal.
Its deadline is the announced time plus the line's grace (the time is cut to `max_announce`
ahead); `step` lapses it there. `arrive` makes it WAITING with the line's usual wait limit,
counted from the arrival.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from dispatcher import displays
from dispatcher.effects import ArmDeadline, Effect, RejectionReason, SaveRequest
from dispatcher.events import RiderArrived, RideRequested
from dispatcher.model import Line, TerminalId
from dispatcher.request_machine import Cause, RequestState, RideRequest, Source, transition
from dispatcher.state import DispatcherState, Step, reject


def announce(
    state: DispatcherState, line: Line, event: RideRequested, code: str | None, now: datetime
) -> Step:
    """A rider on the way: ANNOUNCED until they come, lapsed at the announced time + grace."""
    assert code is not None
    assert event.arriving_at is not None
    arriving_at = min(max(event.arriving_at, now), now + line.tuning.max_announce)
    request = RideRequest(
        id=event.request_id,
        line_id=line.id,
        stop_id=event.stop_id,
        destination_id=event.destination_id,
        seats=event.seats,
        source=event.source,
        terminal_id=None,
        phone=event.phone,
        code=code,
        state=RequestState.ANNOUNCED,
        cause=Cause.RIDER_ANNOUNCED,
        created_at=now,
        deadline_at=arriving_at + line.tuning.announce_grace,
        updated_at=now,
    )
    stop = line.stop(event.stop_id)
    assert stop is not None
    announced = (*state.announced_by_stop.get(stop.id, ()), request.id)
    state = replace(
        state,
        requests=state.requests.set(request.id, request),
        by_source=state.by_source.set(request.source, request.id),
        announced_by_stop=state.announced_by_stop.set(stop.id, announced),
        codes=state.codes.set((line.id, code), request.id),
    )
    effects: list[Effect] = [
        SaveRequest(request, previous_state=None),
        ArmDeadline(request.id, request.deadline_at),
    ]
    state, lit = displays.relight_stop(state, line, stop, now)
    return state, effects + lit


def rider_arrived(
    state: DispatcherState, event: RiderArrived, now: datetime, wait_limit: timedelta
) -> Step:
    """SMS ICI, the app: an announced rider says they are at the stop."""
    request = state.requests.get(event.request_id)
    if request is None or request.line_id != event.line_id:
        return reject(state, RejectionReason.UNKNOWN_REQUEST, event.request_id)
    if not request.is_announced:
        return reject(state, RejectionReason.NOT_WAITING, f"{request.id} is {request.state}")
    return arrive(state, request, now, wait_limit)


def arrive(
    state: DispatcherState,
    request: RideRequest,
    now: datetime,
    wait_limit: timedelta,
    terminal_id: TerminalId | None = None,
    asked_by: Source | None = None,
) -> Step:
    """An announced rider is at the stop: WAITING from now, with a fresh wait limit.

    Their wait counts from now (`created_at`): the line's waits measure the road, not the walk,
    and at the stop they come after the riders already there.
    """
    line = state.network.line(request.line_id)
    stop = line.stop(request.stop_id) if line else None
    assert line is not None, "requests only exist on configured lines"
    assert stop is not None, "requests only exist on configured stops"
    arrived = replace(
        transition(request, Cause.RIDER_ARRIVED, now),
        created_at=now,
        deadline_at=now + wait_limit,
        terminal_id=terminal_id or request.terminal_id,
    )
    announced = tuple(r for r in state.announced_by_stop.get(stop.id, ()) if r != request.id)
    state = replace(
        state,
        requests=state.requests.set(arrived.id, arrived),
        announced_by_stop=state.announced_by_stop.set(stop.id, announced),
        waiting_by_stop=state.waiting_by_stop.set(
            stop.id, (*state.waiting_by_stop.get(stop.id, ()), arrived.id)
        ),
    )
    effects: list[Effect] = [
        SaveRequest(arrived, previous_state=RequestState.ANNOUNCED),
        ArmDeadline(arrived.id, arrived.deadline_at),
    ]
    state, lit = displays.relight_stop(state, line, stop, now)
    state, shown = displays.show_request(state, line, arrived, now, answering=asked_by)
    return state, effects + lit + shown
