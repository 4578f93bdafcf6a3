"""Pure: the dispatcher's transition function, `step(state, event, now) -> (state, effects)`.

Theory of operation
-------------------
The shell owns one `DispatcherState` and feeds it every event in arrival order, with the time.
`step` never raises for bad input from outside: an event that cannot apply (unknown code, request
no longer waiting, unknown device…) returns the state unchanged with one `RejectEvent` effect.

Invariants kept by every step:
- A stop's signs show exactly the destinations of its WAITING requests (pages per sign_arbiter).
- A request accepted WAITING is saved (`SaveRequest`) and its deadline armed in the same step.
- A repeated source (terminal request_id, SMS MessageSid) never makes a second request; neither
  does the same terminal or phone asking again for a destination it already waits for.
- Codes are unique among the line's requests that can still be validated.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from dispatcher import sign_arbiter, terminal_screens
from dispatcher.effects import (
    Alert,
    AlertKind,
    ArmDeadline,
    ClearAlert,
    DisarmDeadline,
    DispatchFallback,
    Effect,
    RaiseAlert,
    RejectEvent,
    RejectionReason,
    SaveRequest,
    ShowOnSign,
    ShowOnTerminal,
    TerminalScreen,
)
from dispatcher.events import (
    Actor,
    CodeValidated,
    DeadlineReached,
    DevicesResyncRequested,
    DeviceStatusReported,
    Event,
    LeaseRefreshDue,
    RideCancelled,
    RideRequested,
    SignReported,
)
from dispatcher.model import DeviceKind, Line, LineId, RequestId, SignId, Stop, TerminalId
from dispatcher.request_machine import (
    Cause,
    Channel,
    RequestState,
    RideRequest,
    Source,
    next_state,
    transition,
)
from dispatcher.service_calendar import is_open
from dispatcher.state import CODE_HOLDING_STATES, DispatcherState, SignReport, index_requests

Step = tuple[DispatcherState, list[Effect]]
CODE_SPACE = 10_000


def step(state: DispatcherState, event: Event, now: datetime) -> Step:
    """Apply one event at time `now` (aware UTC); return the new state and what to do."""
    match event:
        case RideRequested():
            return _ride_requested(state, event, now)
        case RideCancelled():
            return _ride_cancelled(state, event, now)
        case CodeValidated():
            return _code_validated(state, event, now)
        case DeadlineReached():
            return _deadline_reached(state, event, now)
        case LeaseRefreshDue():
            return _refresh_leases(state, now)
        case DevicesResyncRequested():
            return _resync(state, now)
        case SignReported():
            return _sign_reported(state, event, now)
        case DeviceStatusReported():
            return _device_status(state, event, now)


def restore(state: DispatcherState, requests: list[RideRequest], now: datetime) -> Step:
    """Rebuild from requests read back after a restart: re-arm deadlines, re-assert every device."""
    indexed = index_requests(state.network, requests)
    # Keep what the given state knows of devices: seqs stay increasing, alerts are not re-raised.
    restored = replace(
        state,
        requests=indexed.requests,
        by_source=indexed.by_source,
        waiting_by_stop=indexed.waiting_by_stop,
        codes=indexed.codes,
    )
    effects: list[Effect] = [
        ArmDeadline(request.id, request.deadline_at) for request in restored.waiting()
    ]
    restored, resync = _resync(restored, now)
    return restored, effects + resync


def _reject(state: DispatcherState, reason: RejectionReason, detail: str) -> Step:
    return state, [RejectEvent(reason, detail)]


# --- requests -------------------------------------------------------------------------------


def _ride_requested(state: DispatcherState, event: RideRequested, now: datetime) -> Step:
    line = state.network.line(event.line_id)
    if line is None:
        return _reject(state, RejectionReason.UNKNOWN_LINE, event.line_id)
    stop = line.stop(event.stop_id)
    if stop is None:
        return _reject(state, RejectionReason.UNKNOWN_STOP, event.stop_id)
    known = state.request_by_source(event.source)
    if known is not None:
        return _show_again(state, known, event.source, now)
    same = _same_rider_same_trip(state, event)
    if same is not None:
        state = replace(state, by_source={**state.by_source, event.source: same.id})
        return _show_again(state, same, event.source, now)

    cause = _refusal(state, line, event, now)
    code = None if cause else _free_code(state, line.id, event.code_candidate)
    if cause is None and code is None:
        cause = Cause.NO_FREE_CODE
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
        requests={**state.requests, request.id: request},
        by_source={**state.by_source, request.source: request.id},
    )
    effects: list[Effect] = [SaveRequest(request, previous_state=None)]
    if waiting:
        assert code is not None
        state = replace(
            state,
            waiting_by_stop={
                **state.waiting_by_stop,
                stop.id: (*state.waiting_by_stop.get(stop.id, ()), request.id),
            },
            codes={**state.codes, (line.id, code): request.id},
        )
        effects.append(ArmDeadline(request.id, request.deadline_at))
        state, lit = _relight_stop(state, line, stop, now)
        effects += lit
    state, shown = _show_request(state, line, request, now)
    return state, effects + shown


def _refusal(
    state: DispatcherState, line: Line, event: RideRequested, now: datetime
) -> Cause | None:
    if not is_open(line, now):
        return Cause.CLOSED
    if event.destination_id not in {stop.id for stop in line.destinations_from(event.stop_id)}:
        return Cause.UNKNOWN_DESTINATION
    if len(state.waiting_by_stop.get(event.stop_id, ())) >= line.tuning.max_waiting_per_stop:
        return Cause.STOP_FULL
    return None


def _same_rider_same_trip(state: DispatcherState, event: RideRequested) -> RideRequest | None:
    """A waiting request of the same terminal (or phone) to the same destination, if any."""
    for request in state.waiting_at(event.stop_id):
        if request.destination_id != event.destination_id:
            continue
        same_terminal = event.terminal_id is not None and request.terminal_id == event.terminal_id
        same_phone = event.phone is not None and request.phone == event.phone
        if same_terminal or same_phone:
            return request
    return None


def _free_code(state: DispatcherState, line_id: LineId, candidate: str) -> str | None:
    # isdigit() accepts "²" or "١", which int() refuses or reads as another number.
    usable = candidate.isascii() and candidate.isdecimal()
    start = int(candidate) % CODE_SPACE if usable else 0
    for offset in range(CODE_SPACE):
        code = f"{(start + offset) % CODE_SPACE:04d}"
        if (line_id, code) not in state.codes:
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
        return _reject(state, RejectionReason.UNKNOWN_REQUEST, detail)
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
        return _reject(state, RejectionReason.UNKNOWN_CODE, event.code[:8])
    return _finish(state, request, Cause.CODE_VALIDATED, now, driver_ref=event.driver_ref)


def _deadline_reached(state: DispatcherState, event: DeadlineReached, now: datetime) -> Step:
    request = state.requests.get(event.request_id)
    if request is None:
        return _reject(state, RejectionReason.UNKNOWN_REQUEST, event.request_id)
    line = state.network.line(request.line_id)
    fallback = line is not None and line.has_fallback and line.tuning.wait_guarantee is not None
    cause = Cause.GUARANTEE_REACHED if fallback else Cause.DEADLINE_REACHED
    return _finish(state, request, cause, now)


def _finish(
    state: DispatcherState,
    request: RideRequest,
    cause: Cause,
    now: datetime,
    driver_ref: str | None = None,
) -> Step:
    """Move a request out of WAITING (or FALLBACK) and put signs, screen and timers in line."""
    if next_state(request.state, cause) is None:
        return _reject(state, RejectionReason.NOT_WAITING, f"{request.id} is {request.state}")
    line = state.network.line(request.line_id)
    stop = line.stop(request.stop_id) if line else None
    assert line is not None, "requests only exist on configured lines"
    assert stop is not None, "requests only exist on configured stops"
    done = transition(request, cause, now, driver_ref)
    codes = dict(state.codes)
    if done.state not in CODE_HOLDING_STATES and request.code is not None:
        codes.pop((request.line_id, request.code), None)
    waiting_by_stop = dict(state.waiting_by_stop)
    if request.is_waiting:
        remaining = tuple(rid for rid in waiting_by_stop.get(stop.id, ()) if rid != request.id)
        waiting_by_stop[stop.id] = remaining
    state = replace(
        state,
        requests={**state.requests, done.id: done},
        codes=codes,
        waiting_by_stop=waiting_by_stop,
    )
    effects: list[Effect] = [SaveRequest(done, previous_state=request.state.value)]
    if request.is_waiting:
        effects.append(DisarmDeadline(done.id))
        state, lit = _relight_stop(state, line, stop, now)
        effects += lit
    if done.state is RequestState.FALLBACK:
        effects.append(DispatchFallback(done))
    state, shown = _show_request(state, line, done, now)
    return state, effects + shown


# --- signs and screens ----------------------------------------------------------------------


def _relight_stop(state: DispatcherState, line: Line, stop: Stop, now: datetime) -> Step:
    """New displays for the signs of `stop` whose pages changed."""
    waiting = state.waiting_at(stop.id)
    names = [_destination_name(line, request) for request in waiting]
    deadlines = [request.deadline_at for request in waiting]
    signs = dict(state.signs)
    effects: list[Effect] = []
    for spec in stop.signs:
        pages = sign_arbiter.compose_pages(names, spec.geometry, line.tuning.max_pages)
        previous = signs.get(spec.id)
        if previous is not None and previous.pages == pages and pages == ():
            continue
        # Same pages under a live lease that the new bound does not shorten: nothing to send.
        # A lapsed lease means the sign has blanked itself, so it must be lit again.
        if (
            previous is not None
            and previous.pages == pages
            and now < previous.expires_at <= min([now + line.tuning.sign_lease, *deadlines])
        ):
            continue
        shown = sign_arbiter.display(
            previous.seq if previous else 0, now, pages, line.tuning.sign_lease, deadlines
        )
        signs[spec.id] = shown
        effects.append(ShowOnSign(line.id, spec.id, shown))
    return replace(state, signs=signs), effects


def _destination_name(line: Line, request: RideRequest) -> str:
    destination = line.stop(request.destination_id)
    return destination.name if destination else request.destination_id


def _show_request(
    state: DispatcherState,
    line: Line,
    request: RideRequest,
    now: datetime,
    answering: Source | None = None,
) -> Step:
    if request.terminal_id is None:
        return state, []
    previous = state.screens.get(request.terminal_id)
    seq = sign_arbiter.next_seq(previous.seq if previous else 0, now)
    screen = terminal_screens.screen_for(request, line, seq, now)
    if answering is not None and answering.channel is Channel.TERMINAL:
        # The terminal correlates a screen with the press it answers, not with the first press.
        screen = replace(screen, device_request_id=answering.ref.partition("/")[2] or None)
    state = replace(state, screens={**state.screens, request.terminal_id: screen})
    return state, [ShowOnTerminal(line.id, request.terminal_id, screen)]


def _show_again(
    state: DispatcherState, request: RideRequest, asked_by: Source, now: datetime
) -> Step:
    """A repeated ask: tell the terminal again where its request stands; change nothing else."""
    line = state.network.line(request.line_id)
    assert line is not None
    return _show_request(state, line, request, now, answering=asked_by)


def _refresh_leases(state: DispatcherState, now: datetime) -> Step:
    """Renew every lit sign's lease; forget finished requests past their retention."""
    effects: list[Effect] = []
    for line in state.network.lines:
        for stop in line.all_stops():
            waiting = state.waiting_at(stop.id)
            if not waiting:
                continue
            deadlines = [request.deadline_at for request in waiting]
            signs = dict(state.signs)
            for spec in stop.signs:
                previous = signs.get(spec.id)
                if previous is None or not previous.pages:
                    continue
                shown = sign_arbiter.display(
                    previous.seq, now, previous.pages, line.tuning.sign_lease, deadlines
                )
                signs[spec.id] = shown
                effects.append(ShowOnSign(line.id, spec.id, shown))
            state = replace(state, signs=signs)
    return _forget_finished(state, now), effects


def _forget_finished(state: DispatcherState, now: datetime) -> DispatcherState:
    # FALLBACK requests are forgotten too once past retention: the taxi has long come, and a
    # code held forever would leak the line's 10,000 codes and memory.
    stale = [
        request
        for request in state.requests.values()
        if not request.is_waiting and now - request.updated_at > _retention(state, request.line_id)
    ]
    if not stale:
        return state
    gone = {request.id for request in stale}
    return replace(
        state,
        requests={rid: r for rid, r in state.requests.items() if rid not in gone},
        by_source={src: rid for src, rid in state.by_source.items() if rid not in gone},
        codes={key: rid for key, rid in state.codes.items() if rid not in gone},
    )


def _retention(state: DispatcherState, line_id: LineId) -> timedelta:
    line = state.network.line(line_id)
    return line.tuning.max_wait * 2 if line else timedelta(hours=1)


def _resync(state: DispatcherState, now: datetime) -> Step:
    """Send every configured sign and terminal its desired display again, with fresh seqs."""
    effects: list[Effect] = []
    signs = dict(state.signs)
    screens = dict(state.screens)
    for line in state.network.lines:
        for stop in line.all_stops():
            waiting = state.waiting_at(stop.id)
            names = [_destination_name(line, request) for request in waiting]
            deadlines = [request.deadline_at for request in waiting]
            for spec in stop.signs:
                pages = sign_arbiter.compose_pages(names, spec.geometry, line.tuning.max_pages)
                previous = signs.get(spec.id)
                shown = sign_arbiter.display(
                    previous.seq if previous else 0, now, pages, line.tuning.sign_lease, deadlines
                )
                signs[spec.id] = shown
                effects.append(ShowOnSign(line.id, spec.id, shown))
            if stop.terminal is not None:
                screens[stop.terminal] = _current_screen(state, line, stop, stop.terminal, now)
                effects.append(ShowOnTerminal(line.id, stop.terminal, screens[stop.terminal]))
    return replace(state, signs=signs, screens=screens), effects


def _current_screen(
    state: DispatcherState, line: Line, stop: Stop, terminal: TerminalId, now: datetime
) -> TerminalScreen:
    previous = state.screens.get(terminal)
    seq = sign_arbiter.next_seq(previous.seq if previous else 0, now)
    if previous is not None and previous.expires_at > now:
        return replace(previous, seq=seq)
    # After a restart no screen is remembered: a rider still waiting must see their code again.
    mine = [request for request in state.waiting_at(stop.id) if request.terminal_id == terminal]
    if mine:
        return terminal_screens.screen_for(mine[-1], line, seq, now)
    return terminal_screens.idle_screen(seq, now, line)


# --- device reports -------------------------------------------------------------------------


def _sign_reported(state: DispatcherState, event: SignReported, now: datetime) -> Step:
    place = state.network.device(DeviceKind.SIGN, event.sign_id)
    if place is None or place.line_id != event.line_id:
        return _reject(state, RejectionReason.UNKNOWN_DEVICE, event.sign_id)
    state = replace(
        state,
        sign_reports={**state.sign_reports, event.sign_id: SignReport(event.seq, event.pages, now)},
    )
    desired = state.signs.get(event.sign_id)
    if desired is None or event.seq < desired.seq:
        return state, []
    lapsed_and_blank = event.pages == () and now >= desired.expires_at
    if event.seq == desired.seq and (event.pages == desired.pages or lapsed_and_blank):
        return _clear_alert(state, AlertKind.SIGN_MISMATCH, event.line_id, event.sign_id)
    message = (
        f"shows {list(map(list, event.pages))} (seq {event.seq}), "
        f"asked {list(map(list, desired.pages))} (seq {desired.seq})"
    )
    return _raise_alert(
        state, AlertKind.SIGN_MISMATCH, event.line_id, DeviceKind.SIGN, event.sign_id, message, now
    )


def _device_status(state: DispatcherState, event: DeviceStatusReported, now: datetime) -> Step:
    place = state.network.device(event.kind, event.device_id)
    if place is None or place.line_id != event.line_id:
        return _reject(state, RejectionReason.UNKNOWN_DEVICE, event.device_id)
    was_online = state.online.get((event.kind, event.device_id), False)
    state = replace(state, online={**state.online, (event.kind, event.device_id): event.online})
    if not event.online:
        message = f"{event.kind.value} {event.device_id} is offline"
        return _raise_alert(
            state,
            AlertKind.DEVICE_OFFLINE,
            event.line_id,
            event.kind,
            event.device_id,
            message,
            now,
        )
    state, effects = _clear_alert(state, AlertKind.DEVICE_OFFLINE, event.line_id, event.device_id)
    if was_online:
        # A repeated "online" (a heartbeat) changes nothing: re-sending would flood the signs.
        return state, effects
    sign_id = SignId(event.device_id)
    desired = state.signs.get(sign_id) if event.kind is DeviceKind.SIGN else None
    if desired is not None:
        line = state.network.line(event.line_id)
        assert line is not None
        # A fresh lease: the one sent before the sign went away may have lapsed meanwhile.
        deadlines = [request.deadline_at for request in state.waiting_at(place.stop_id)]
        shown = sign_arbiter.display(
            desired.seq,
            now,
            desired.pages,
            line.tuning.sign_lease,
            deadlines if desired.pages else [],
        )
        state = replace(state, signs={**state.signs, sign_id: shown})
        effects.append(ShowOnSign(event.line_id, sign_id, shown))
    return state, effects


def _raise_alert(
    state: DispatcherState,
    kind: AlertKind,
    line_id: LineId,
    device_kind: DeviceKind,
    device_id: str,
    message: str,
    now: datetime,
) -> Step:
    if (kind, device_id) in state.alerts:
        return state, []
    alert = Alert(kind, line_id, device_kind, device_id, message, now)
    return replace(state, alerts={**state.alerts, (kind, device_id): alert}), [RaiseAlert(alert)]


def _clear_alert(state: DispatcherState, kind: AlertKind, line_id: LineId, device_id: str) -> Step:
    if (kind, device_id) not in state.alerts:
        return state, []
    alerts = {key: alert for key, alert in state.alerts.items() if key != (kind, device_id)}
    return replace(state, alerts=alerts), [ClearAlert(kind, line_id, device_id)]


__all__ = ["RequestId", "Step", "restore", "step"]
