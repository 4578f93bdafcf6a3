"""Adapter: the API read models, built from the dispatcher state (pure function of inputs)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from dispatcher.effects import AlertKind
from dispatcher.model import DeviceKind, Direction, Line, SignSpec, Stop
from dispatcher.request_machine import RequestState, RideRequest
from dispatcher.service_calendar import is_open
from dispatcher.state import DispatcherState
from line_service.web.models import (
    AlertKindOut,
    AlertOut,
    ClusterPlaceOut,
    DirectionOut,
    LineOut,
    LineSummaryOut,
    OperatorMessageOut,
    RideRequestOut,
    SignOut,
    StopOut,
    TerminalOut,
    TestPressOut,
)

Placement = Callable[[str], ClusterPlaceOut | None]
"""Who dispatches a line (CARPOOL_CLUSTER), given its id; None outside a cluster."""


def nowhere(_line_id: str) -> ClusterPlaceOut | None:
    """The placement of a service that is not a cluster."""
    return None


RECENT_LIMIT = 20
GUARANTEE_WARNING_SHARE = 0.2
"""A waiting request raises `guarantee_near` in the last 20 % of its wait (deadline_at)."""


def sign_out(state: DispatcherState, stop: Stop, spec: SignSpec, now: datetime) -> SignOut:
    """A sign: asked, reported, online, operator messages."""
    shown = state.signs.get(spec.id)
    report = state.sign_reports.get(spec.id)
    active = state.operator_message(spec.id, now)
    messages = [
        OperatorMessageOut(
            message_id=m.message_id,
            pages=[list(page) for page in m.pages],
            priority=m.priority,
            posted_at=m.posted_at,
            expires_at=m.expires_at,
            shown=active is not None and active.message_id == m.message_id,
        )
        for m in state.operator_messages.get(spec.id, ())
        if m.expires_at > now
    ]
    return SignOut(
        id=spec.id,
        stop_id=stop.id,
        pages=[list(page) for page in shown.pages] if shown else [],
        seq=shown.seq if shown else None,
        expires_at=shown.expires_at if shown else None,
        reported_pages=[list(p) for p in report.pages] if report else None,
        online=state.online.get((DeviceKind.SIGN, spec.id)),
        reported_seq=report.seq if report else None,
        reported_at=report.at if report else None,
        distance_upstream_m=spec.distance_upstream_m,
        rows=spec.geometry.rows,
        columns=spec.geometry.columns,
        mismatch=(AlertKind.SIGN_MISMATCH, spec.id) in state.alerts,
        operator_messages=messages,
    )


def terminal_out(state: DispatcherState, line: Line, stop: Stop) -> TerminalOut | None:
    """A stop's terminal, or None when the stop has none."""
    if stop.terminal is None:
        return None
    screen = state.screens.get(stop.terminal)
    press = state.commissioning_presses.get(stop.terminal)
    return TerminalOut(
        id=stop.terminal,
        stop_id=stop.id,
        online=state.online.get((DeviceKind.TERMINAL, stop.terminal)),
        screen_state=screen.state if screen else None,
        screen_lines=list(screen.lines) if screen else [],
        commissioning=line.in_commissioning(stop),
        last_test_press=None
        if press is None
        else TestPressOut(
            destination_id=press.destination_id,
            known=press.known,
            pressed_at=press.pressed_at,
            request_id=press.device_request_id,
        ),
    )


def stop_out(
    state: DispatcherState, line: Line, direction: Direction, stop: Stop, now: datetime
) -> StopOut:
    """A stop with its devices."""
    return StopOut(
        id=stop.id,
        name=stop.name,
        code=stop.code,
        km=stop.km,
        lat=stop.lat,
        lon=stop.lon,
        direction_id=direction.id,
        terminal=terminal_out(state, line, stop),
        signs=[sign_out(state, stop, spec, now) for spec in stop.signs],
        waiting=len(state.waiting_by_stop.get(stop.id, ())),
        commissioning=line.in_commissioning(stop),
    )


def request_out(request: RideRequest, with_phone: bool) -> RideRequestOut:
    """A request for a signed-in caller (code shown; phone to operators only)."""
    return RideRequestOut.of(request, with_code=True, with_phone=with_phone)


def alerts_out(line: Line, state: DispatcherState, now: datetime) -> list[AlertOut]:
    """Device alerts from the core, and requests in the last part of their guaranteed wait."""
    found = [
        AlertOut(
            kind=AlertKindOut(alert.kind.value),
            device_kind=alert.device_kind,
            device_id=alert.device_id,
            message=alert.message,
            raised_at=alert.raised_at,
        )
        for alert in state.alerts.values()
        if alert.line_id == line.id
    ]
    for request in waiting_on(line, state):
        total = request.deadline_at - request.created_at
        left = request.deadline_at - now
        if left <= total * GUARANTEE_WARNING_SHARE:
            stop = line.stop(request.stop_id)
            minutes = max(0, int(left.total_seconds() // 60))
            found.append(
                AlertOut(
                    kind=AlertKindOut.GUARANTEE_NEAR,
                    device_kind=None,
                    device_id=None,
                    request_id=request.id,
                    message=(
                        f"request {request.id[:8]} at {stop.name if stop else request.stop_id}: "
                        f"guarantee in {minutes} min"
                    ),
                    raised_at=request.deadline_at - total * GUARANTEE_WARNING_SHARE,
                )
            )
    return sorted(found, key=lambda alert: alert.raised_at)


def waiting_on(line: Line, state: DispatcherState) -> list[RideRequest]:
    """The line's waiting requests, oldest first."""
    return sorted((r for r in state.waiting() if r.line_id == line.id), key=lambda r: r.created_at)


def recent_on(
    line: Line, state: DispatcherState, picked_up_only: bool = False
) -> list[RideRequest]:
    """The line's finished requests still held in memory, newest first."""
    done = [
        r
        for r in state.requests.values()
        if r.line_id == line.id
        and not r.is_live
        and r.state is not RequestState.REFUSED
        and (r.state is RequestState.PICKED_UP or not picked_up_only)
    ]
    return sorted(done, key=lambda r: r.updated_at, reverse=True)[:RECENT_LIMIT]


def line_out(
    line: Line,
    state: DispatcherState,
    now: datetime,
    with_phone: bool,
    cluster: ClusterPlaceOut | None = None,
) -> LineOut:
    """Everything the dashboard shows about one line (`cluster`: who dispatches it)."""
    guarantee = line.tuning.wait_guarantee
    return LineOut(
        id=line.id,
        name=line.name,
        timezone=line.timezone,
        now=now,
        open_now=is_open(line, now),
        wait_guarantee_minutes=guarantee.total_seconds() / 60 if guarantee else None,
        has_fallback=line.has_fallback,
        commissioning=line.commissioning,
        directions=[
            DirectionOut(
                id=direction.id,
                name=direction.name,
                stops=[stop_out(state, line, direction, stop, now) for stop in direction.stops],
            )
            for direction in line.directions
        ],
        waiting=[request_out(r, with_phone) for r in waiting_on(line, state)],
        recent=[request_out(r, with_phone) for r in recent_on(line, state)],
        alerts=alerts_out(line, state, now),
        cluster=cluster,
    )


def line_summary(
    line: Line, state: DispatcherState, now: datetime, cluster: ClusterPlaceOut | None = None
) -> LineSummaryOut:
    """A line in the list of lines."""
    return LineSummaryOut(
        id=line.id,
        name=line.name,
        open_now=is_open(line, now),
        waiting=len(waiting_on(line, state)),
        alerts=len(alerts_out(line, state, now)),
        commissioning=line.commissioning,
        cluster=cluster,
    )
