"""Pure: the dispatcher's transition function, `step(state, event, now) -> (state, effects)`.

Theory of operation
-------------------
The shell owns one `DispatcherState` and feeds it every event in arrival order, with the time.
`step` never raises for bad input from outside: an event that cannot apply (unknown code, request
no longer waiting, unknown device…) returns the state unchanged with one `RejectEvent` effect.
Request rules live here; what signs and terminals show is in `displays`, device presence and
readback in `device_reports`, the lifecycle table in `request_machine`.

Invariants kept by every step:
- A stop's signs show the destinations of its WAITING requests, unless an operator message is
  active on the sign (see `displays`).
- A request accepted WAITING is saved (`SaveRequest`) and its deadline armed in the same step.
- A repeated source (terminal request_id, SMS MessageSid) never makes a second request; neither
  does the same terminal or phone asking again for a destination it already waits for. A phone
  has at most one waiting request.
- Codes are unique among the network's requests that can still be validated: a driver's SMS
  names a code and no line (one number serves every line), so it must find one rider only.
- A rider who gave a phone number is told (`NotifyRider`) of every later change of their request.
- The fallback is dispatched at the wait guarantee only while the line is in service.
- Remote asks (SMS, app: anything but the stop's terminal) hold at most the stop's cap less
  the line's `terminal_reserve` while the stop has a terminal (REMOTE_FULL beyond; riders
  announced on their way count as remote): a flood of remote asks cannot refuse a rider
  pressing the terminal at the stop.
- A rider who announced their coming ("J'arrive", `arriving_at`) is ANNOUNCED: signs say when,
  no screen changes. They become WAITING when at the stop: a press for that destination there,
  the same phone asking again, or `RiderArrived`; else their deadline (the announced time plus
  the line's grace) lapses them (EXPIRED) and the signs go dark at that time.
- Each process of a cluster drives the lines it owns, `state.network`: lines are adopted with
  their stored riders and dropped whole (`line_handover`); an event about a line not owned is
  rejected as unknown.
- A stop in commissioning (itself or its whole line) serves no rider: SMS and API asks are
  REFUSED (`COMMISSIONING`); a press on its terminal is a test, recorded in
  `commissioning_presses` and answered on the terminal's screen, and makes no request.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime, timedelta

from dispatcher import announcements, displays, line_alarms, line_handover
from dispatcher.device_reports import (
    device_flood,
    device_status,
    settle_devices,
    sign_reported,
)
from dispatcher.effects import (
    ArmDeadline,
    DisarmDeadline,
    DispatchFallback,
    Effect,
    NotifyRider,
    RejectionReason,
    SaveRequest,
    SaveSourceAlias,
)
from dispatcher.events import (
    Actor,
    CodeGuessingReported,
    CodeValidated,
    DeadlineReached,
    DeviceFloodReported,
    DevicesResyncRequested,
    DeviceStatusReported,
    Event,
    FallbackRequested,
    ForeignCodesSeen,
    LeaseRefreshDue,
    LinesAdopted,
    LinesDropped,
    OperatorMessageCleared,
    OperatorMessagePosted,
    RideCancelled,
    RiderArrived,
    RideRequested,
    SignReported,
    StorageFailed,
)
from dispatcher.model import Line, LineId, RequestId, TerminalId
from dispatcher.request_machine import (
    Cause,
    RequestState,
    RideRequest,
    Source,
    next_state,
    transition,
)
from dispatcher.service_calendar import is_open
from dispatcher.state import (
    CODE_HOLDING_STATES,
    CommissioningPress,
    DispatcherState,
    Step,
    index_requests,
    reject,
)

CODE_SPACE = 10_000


def step(state: DispatcherState, event: Event, now: datetime) -> Step:
    """Apply one event at time `now` (aware UTC); return the new state and what to do."""
    match event:
        case RideRequested():
            return _ride_requested(state, event, now)
        case RiderArrived():
            line = state.network.line(event.line_id)
            limit = _wait_limit(line) if line else timedelta()
            return announcements.rider_arrived(state, event, now, limit)
        case RideCancelled():
            return _ride_cancelled(state, event, now)
        case CodeValidated():
            return _code_validated(state, event, now)
        case DeadlineReached():
            return _deadline_reached(state, event, now)
        case FallbackRequested():
            return _fallback_requested(state, event, now)
        case LeaseRefreshDue():
            state, cleared = settle_devices(state, now)
            state, effects = displays.refresh_leases(state, now)
            state, screens = displays.refresh_commissioning_screens(state, now)
            return _forget_finished(state, now), cleared + effects + screens
        case DevicesResyncRequested():
            return displays.resync(state, now)
        case SignReported():
            return sign_reported(state, event, now)
        case DeviceStatusReported():
            return device_status(state, event, now)
        case DeviceFloodReported():
            return device_flood(state, event, now)
        case CodeGuessingReported():
            return line_alarms.code_guessing(state, event, now)
        case OperatorMessagePosted():
            return displays.post_operator_message(state, event, now)
        case OperatorMessageCleared():
            return displays.clear_operator_message(state, event, now)
        case ForeignCodesSeen():
            return replace(state, foreign_codes=event.codes), []
        case StorageFailed():
            return _storage_failed(state, event, now)
        case LinesAdopted():
            return line_handover.lines_adopted(state, event, now)
        case LinesDropped():
            return line_handover.lines_dropped(state, event)


def restore(
    state: DispatcherState,
    requests: list[RideRequest],
    aliases: Iterable[tuple[Source, RequestId]] = (),
) -> Step:
    """Rebuild from requests read back after a restart and re-arm their deadlines.

    `aliases` are the other sources stored for those requests (repeated presses). Devices are
    not told anything here: they cannot hear before the broker connection, and every connection
    is followed by `DevicesResyncRequested`, which re-asserts every sign and terminal once.
    """
    indexed = index_requests(state.network, requests, aliases)
    # Keep what the given state knows of devices: seqs stay increasing, alerts are not re-raised.
    restored = replace(
        state,
        requests=indexed.requests,
        by_source=indexed.by_source,
        waiting_by_stop=indexed.waiting_by_stop,
        announced_by_stop=indexed.announced_by_stop,
        codes=indexed.codes,
    )
    effects: list[Effect] = [
        ArmDeadline(request.id, request.deadline_at)
        for request in (*restored.waiting(), *restored.announced())
    ]
    return restored, effects


# --- requests -------------------------------------------------------------------------------


def _ride_requested(state: DispatcherState, event: RideRequested, now: datetime) -> Step:
    line = state.network.line(event.line_id)
    if line is None:
        return reject(state, RejectionReason.UNKNOWN_LINE, event.line_id)
    stop = line.stop(event.stop_id)
    if stop is None:
        return reject(state, RejectionReason.UNKNOWN_STOP, event.stop_id)
    if event.terminal_id is not None and line.in_commissioning(stop):
        return _test_press(state, line, event, event.terminal_id, now)
    known = state.request_by_source(event.source)
    if known is not None:
        return _show_again(state, known, event.source, now)
    same = _same_rider_same_trip(state, event)
    if same is not None:
        state = replace(state, by_source=state.by_source.set(event.source, same.id))
        alias: list[Effect] = [SaveSourceAlias(event.source, same.id)]
        if same.is_announced and event.arriving_at is None:  # on the way, now at the stop
            state, arrived = announcements.arrive(
                state, same, now, _wait_limit(line), event.terminal_id, event.source
            )
            return state, alias + arrived
        state, shown = _show_again(state, same, event.source, now)
        return state, alias + shown

    cause = _refusal(state, line, event, now)
    code = None if cause else _free_code(state, event.code_candidate)
    if cause is None and code is None:
        cause = Cause.NO_FREE_CODE
    if cause is None and event.arriving_at is not None:
        return announcements.announce(state, line, event, code, now)
    waiting = cause is None
    request = RideRequest(
        id=event.request_id,
        line_id=line.id,
        stop_id=stop.id,
        destination_id=event.destination_id,
        seats=event.seats,
        source=event.source,
        terminal_id=event.terminal_id,
        phone=event.phone,
        code=code,
        state=RequestState.WAITING if waiting else RequestState.REFUSED,
        cause=cause or Cause.REQUESTED,
        created_at=now,
        deadline_at=now + _wait_limit(line) if waiting else now,
        updated_at=now,
    )
    state = replace(
        state,
        requests=state.requests.set(request.id, request),
        by_source=state.by_source.set(request.source, request.id),
    )
    effects: list[Effect] = [SaveRequest(request, previous_state=None)]
    if waiting:
        assert code is not None
        state = replace(
            state,
            waiting_by_stop=state.waiting_by_stop.set(
                stop.id, (*state.waiting_by_stop.get(stop.id, ()), request.id)
            ),
            codes=state.codes.set((line.id, code), request.id),
        )
        effects.append(ArmDeadline(request.id, request.deadline_at))
        state, lit = displays.relight_stop(state, line, stop, now)
        effects += lit
    state, shown = displays.show_request(state, line, request, now)
    return state, effects + shown


def _test_press(
    state: DispatcherState, line: Line, event: RideRequested, terminal: TerminalId, now: datetime
) -> Step:
    """A press on a terminal of a stop in commissioning: recorded and answered, never a ride.

    The same device request id again (a terminal re-sending) keeps the first press's time.
    """
    device_request_id = event.source.device_request_id
    last = state.commissioning_presses.get(terminal)
    if last is None or device_request_id is None or last.device_request_id != device_request_id:
        served = {stop.id for stop in line.destinations_from(event.stop_id)}
        press = CommissioningPress(
            device_request_id=device_request_id,
            destination_id=event.destination_id,
            known=event.destination_id in served,
            pressed_at=now,
        )
        presses = state.commissioning_presses.set(terminal, press)
        state = replace(state, commissioning_presses=presses)
    return displays.show_commissioning(state, line, terminal, now)


def _refusal(
    state: DispatcherState, line: Line, event: RideRequested, now: datetime
) -> Cause | None:
    stop = line.stop(event.stop_id)
    if stop is not None and line.in_commissioning(stop):
        return Cause.COMMISSIONING
    if not is_open(line, now):
        return Cause.CLOSED
    if event.destination_id not in {stop.id for stop in line.destinations_from(event.stop_id)}:
        return Cause.UNKNOWN_DESTINATION
    if event.phone is not None and state.waiting_for_phone(event.phone) is not None:
        return Cause.ALREADY_WAITING
    waiting = state.waiting_at(event.stop_id)
    announced = state.announced_at(event.stop_id)
    if len(waiting) + len(announced) >= line.tuning.max_waiting_per_stop:
        return Cause.STOP_FULL
    if event.terminal_id is None and stop is not None and stop.terminal is not None:
        remote = sum(1 for request in (*waiting, *announced) if request.terminal_id is None)
        if remote >= remote_share(line):
            return Cause.REMOTE_FULL
    return None


def remote_share(line: Line) -> int:
    """How many of a stop's waiting riders may have asked remotely (SMS, app), when the stop
    has a terminal: the cap less the terminal's reserve, so that remote asks, however many,
    never refuse a rider standing at the terminal."""
    return max(0, line.tuning.max_waiting_per_stop - line.tuning.terminal_reserve)


def _same_rider_same_trip(state: DispatcherState, event: RideRequested) -> RideRequest | None:
    """A live request of the same terminal (or phone) to the same destination, if any.

    A press on the stop's terminal for a destination someone announced is that rider arriving
    (the oldest announcement for it): they have no other way to say so at the stop.
    """
    for request in (*state.waiting_at(event.stop_id), *state.announced_at(event.stop_id)):
        if request.destination_id != event.destination_id:
            continue
        same_terminal = event.terminal_id is not None and request.terminal_id == event.terminal_id
        same_phone = event.phone is not None and request.phone == event.phone
        arriving = request.is_announced and event.terminal_id is not None
        if same_terminal or same_phone or arriving:
            return request
    return None


def _free_code(state: DispatcherState, candidate: str) -> str | None:
    # isdigit() accepts "²" or "١", which int() refuses or reads as another number.
    usable = candidate.isascii() and candidate.isdecimal()
    start = int(candidate) % CODE_SPACE if usable else 0
    lines = [line.id for line in state.network.lines]
    for offset in range(CODE_SPACE):
        code = f"{(start + offset) % CODE_SPACE:04d}"
        if code not in state.foreign_codes and all(
            (line_id, code) not in state.codes for line_id in lines
        ):
            return code
    return None


def _wait_limit(line: Line) -> timedelta:
    guarantee = line.tuning.wait_guarantee
    return guarantee if guarantee is not None and line.has_fallback else line.tuning.max_wait


def _ride_cancelled(state: DispatcherState, event: RideCancelled, now: datetime) -> Step:
    request = None
    if event.request_id is not None:
        request = state.requests.get(event.request_id)
    elif event.source is not None:
        request = state.request_by_source(event.source)
    if request is None or request.line_id != event.line_id:
        detail = str(event.request_id or event.source)
        return reject(state, RejectionReason.UNKNOWN_REQUEST, detail)
    if event.departed:
        cause = Cause.RIDER_DEPARTED
    elif event.actor is Actor.OPERATOR:
        cause = Cause.OPERATOR_CANCELLED
    else:
        cause = Cause.RIDER_CANCELLED
    return _finish(state, request, cause, now)


def _code_validated(state: DispatcherState, event: CodeValidated, now: datetime) -> Step:
    request = state.request_by_code(event.line_id, event.code.strip())
    if request is None:
        return reject(state, RejectionReason.UNKNOWN_CODE, event.code[:8])
    return _finish(state, request, Cause.CODE_VALIDATED, now, driver_ref=event.driver_ref)


def _deadline_reached(state: DispatcherState, event: DeadlineReached, now: datetime) -> Step:
    request = state.requests.get(event.request_id)
    if request is None:
        return reject(state, RejectionReason.UNKNOWN_REQUEST, event.request_id)
    line = state.network.line(request.line_id)
    fallback = (
        line is not None
        and line.has_fallback
        and line.tuning.wait_guarantee is not None
        and is_open(line, now)
    )
    cause = Cause.GUARANTEE_REACHED if fallback else Cause.DEADLINE_REACHED
    if request.is_announced:
        cause = Cause.ANNOUNCEMENT_LAPSED  # never came: no taxi for a rider not at the stop
    return _finish(state, request, cause, now)


def _storage_failed(state: DispatcherState, event: StorageFailed, now: datetime) -> Step:
    effects: list[Effect] = []
    for request_id in event.request_ids:
        request = state.requests.get(request_id)
        if request is None or not request.is_live:
            continue  # already over: nothing to take back
        state, refused = _finish(state, request, Cause.STORAGE_FAILED, now)
        effects += refused
    return state, effects


def _fallback_requested(state: DispatcherState, event: FallbackRequested, now: datetime) -> Step:
    request = state.requests.get(event.request_id)
    if request is None or request.line_id != event.line_id:
        return reject(state, RejectionReason.UNKNOWN_REQUEST, event.request_id)
    return _finish(state, request, Cause.OPERATOR_FALLBACK, now)


def _finish(
    state: DispatcherState,
    request: RideRequest,
    cause: Cause,
    now: datetime,
    driver_ref: str | None = None,
) -> Step:
    """Move a request out of WAITING (or FALLBACK) and put signs, screen and timers in line."""
    if next_state(request.state, cause) is None:
        return reject(state, RejectionReason.NOT_WAITING, f"{request.id} is {request.state}")
    line = state.network.line(request.line_id)
    stop = line.stop(request.stop_id) if line else None
    assert line is not None, "requests only exist on configured lines"
    assert stop is not None, "requests only exist on configured stops"
    done = transition(request, cause, now, driver_ref)
    codes = state.codes
    if done.state not in CODE_HOLDING_STATES and request.code is not None:
        codes = codes.delete((request.line_id, request.code))
    waiting_by_stop = state.waiting_by_stop
    if request.is_waiting:
        remaining = tuple(rid for rid in waiting_by_stop.get(stop.id, ()) if rid != request.id)
        waiting_by_stop = waiting_by_stop.set(stop.id, remaining)
    announced_by_stop = state.announced_by_stop
    if request.is_announced:
        remaining = tuple(rid for rid in announced_by_stop.get(stop.id, ()) if rid != request.id)
        announced_by_stop = announced_by_stop.set(stop.id, remaining)
    state = replace(
        state,
        requests=state.requests.set(done.id, done),
        codes=codes,
        waiting_by_stop=waiting_by_stop,
        announced_by_stop=announced_by_stop,
    )
    effects: list[Effect] = [SaveRequest(done, previous_state=request.state)]
    if request.is_live:
        effects.append(DisarmDeadline(done.id))
        state, lit = displays.relight_stop(state, line, stop, now)
        effects += lit
    if done.state is RequestState.FALLBACK:
        effects.append(DispatchFallback(done))
    if done.phone is not None:
        effects.append(NotifyRider(done))
    state, shown = displays.show_request(state, line, done, now)
    return state, effects + shown


def _show_again(
    state: DispatcherState, request: RideRequest, asked_by: Source, now: datetime
) -> Step:
    """A repeated ask: tell the terminal again where its request stands; change nothing else."""
    line = state.network.line(request.line_id)
    assert line is not None
    return displays.show_request(state, line, request, now, answering=asked_by)


def _forget_finished(state: DispatcherState, now: datetime) -> DispatcherState:
    # FALLBACK requests are forgotten too once past retention: the taxi has long come, and a
    # code held forever would leak the line's 10,000 codes and memory.
    stale = [
        request
        for request in state.requests.values()
        if not request.is_live and now - request.updated_at > _retention(state, request.line_id)
    ]
    if not stale:
        return state
    gone = {request.id for request in stale}
    return replace(
        state,
        requests=state.requests.discard(gone),
        by_source=state.by_source.discard(
            [src for src, rid in state.by_source.items() if rid in gone]
        ),
        codes=state.codes.discard([key for key, rid in state.codes.items() if rid in gone]),
    )


def _retention(state: DispatcherState, line_id: LineId) -> timedelta:
    line = state.network.line(line_id)
    return line.tuning.max_wait * 2 if line else timedelta(hours=1)


__all__ = ["RequestId", "Step", "restore", "step"]
