"""Pure: what every sign and terminal must show now, and the effects that tell them.

A sign shows, in this order of precedence:
1. the active operator message on it (highest priority, then newest), until its expiry;
2. else the destinations of its stop's waiting requests (sign_pages pages);
3. else nothing (blank).
Every display is a lease: it expires at `now + sign_lease`, never after the earliest deadline
of a request it shows, nor after the operator message's expiry.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime

from dispatcher import sign_pages, terminal_screens
from dispatcher.effects import (
    ArmMessageExpiry,
    Effect,
    Page,
    RejectionReason,
    ShowOnSign,
    ShowOnTerminal,
    SignDisplay,
    TerminalScreen,
)
from dispatcher.events import OperatorMessageCleared, OperatorMessagePosted
from dispatcher.model import Line, LineId, SignSpec, Stop, TerminalId
from dispatcher.request_machine import Channel, RideRequest, Source
from dispatcher.state import DispatcherState, OperatorMessage, Step, reject


def desired(
    state: DispatcherState, line: Line, stop: Stop, spec: SignSpec, now: datetime
) -> tuple[tuple[Page, ...], list[datetime]]:
    """The pages a sign must show now, and the instants its lease may not outlive."""
    message = state.operator_message(spec.id, now)
    if message is not None:
        return message.pages, [message.expires_at]
    waiting = state.waiting_at(stop.id)
    names = [destination_name(line, request) for request in waiting]
    pages = sign_pages.compose_pages(names, spec.geometry, line.tuning.max_pages)
    announced = state.announced_at(stop.id)
    if announced and len(pages) < line.tuning.max_pages:
        grace = line.tuning.announce_grace
        coming = [
            (destination_name(line, r), sign_pages.minutes_left(now, r.deadline_at - grace))
            for r in announced
        ]
        room = line.tuning.max_pages - len(pages)
        pages += sign_pages.announced_pages(coming, spec.geometry, room, already=names)
    bounds = [request.deadline_at for request in (*waiting, *announced)]
    return pages, bounds


def _fresh(
    previous: SignDisplay | None,
    now: datetime,
    line: Line,
    pages: tuple[Page, ...],
    bounds: list[datetime],
) -> SignDisplay:
    return sign_pages.display(
        previous.seq if previous else 0, now, pages, line.tuning.sign_lease, bounds
    )


def relight_stop(state: DispatcherState, line: Line, stop: Stop, now: datetime) -> Step:
    """New displays for the signs of `stop` whose desired pages changed."""
    signs = state.signs
    effects: list[Effect] = []
    for spec in stop.signs:
        pages, bounds = desired(state, line, stop, spec, now)
        previous = signs.get(spec.id)
        if previous is not None and previous.pages == pages == ():
            continue
        # Same pages under a live lease that the new bound does not shorten: nothing to send.
        # A lapsed lease means the sign has blanked itself, so it must be lit again.
        if (
            previous is not None
            and previous.pages == pages
            and now < previous.expires_at <= min([now + line.tuning.sign_lease, *bounds])
        ):
            continue
        shown = _fresh(previous, now, line, pages, bounds)
        signs = signs.set(spec.id, shown)
        effects.append(ShowOnSign(line.id, spec.id, shown))
    return replace(state, signs=signs), effects


def refresh_leases(state: DispatcherState, now: datetime) -> Step:
    """Renew the lease of every lit sign (pages recomputed: an expired message falls away)."""
    signs = state.signs
    effects: list[Effect] = []
    for line in state.network.lines:
        for stop in line.all_stops():
            for spec in stop.signs:
                previous = signs.get(spec.id)
                pages, bounds = desired(state, line, stop, spec, now)
                if not pages and (previous is None or not previous.pages):
                    continue
                shown = _fresh(previous, now, line, pages, bounds)
                signs = signs.set(spec.id, shown)
                effects.append(ShowOnSign(line.id, spec.id, shown))
    return replace(state, signs=signs), effects


def resync(state: DispatcherState, now: datetime, lines: Iterable[Line] | None = None) -> Step:
    """Send every sign and terminal of `lines` (by default every owned line) its desired display
    again, with fresh seqs."""
    effects: list[Effect] = []
    signs = state.signs
    screens = state.screens
    for line in state.network.lines if lines is None else lines:
        for stop in line.all_stops():
            for spec in stop.signs:
                pages, bounds = desired(state, line, stop, spec, now)
                shown = _fresh(signs.get(spec.id), now, line, pages, bounds)
                signs = signs.set(spec.id, shown)
                effects.append(ShowOnSign(line.id, spec.id, shown))
            if stop.terminal is not None:
                screen = current_screen(state, line, stop, stop.terminal, now)
                screens = screens.set(stop.terminal, screen)
                effects.append(ShowOnTerminal(line.id, stop.terminal, screen))
    return replace(state, signs=signs, screens=screens), effects


def resend_sign(
    state: DispatcherState, line: Line, stop: Stop, spec: SignSpec, now: datetime
) -> Step:
    """The sign's desired display again with a fresh lease (it came back online)."""
    pages, bounds = desired(state, line, stop, spec, now)
    shown = _fresh(state.signs.get(spec.id), now, line, pages, bounds)
    return replace(state, signs=state.signs.set(spec.id, shown)), [
        ShowOnSign(line.id, spec.id, shown)
    ]


def destination_name(line: Line, request: RideRequest) -> str:
    """The place name a request goes to."""
    destination = line.stop(request.destination_id)
    return destination.name if destination else request.destination_id


def show_request(
    state: DispatcherState,
    line: Line,
    request: RideRequest,
    now: datetime,
    answering: Source | None = None,
) -> Step:
    """Tell the request's terminal (if any) where the request stands."""
    if request.terminal_id is None:
        return state, []
    previous = state.screens.get(request.terminal_id)
    seq = sign_pages.next_seq(previous.seq if previous else 0, now)
    screen = terminal_screens.screen_for(request, line, seq, now)
    if answering is not None and answering.channel is Channel.TERMINAL:
        # The terminal correlates a screen with the press it answers, not with the first press.
        screen = replace(screen, device_request_id=answering.device_request_id)
    state = replace(state, screens=state.screens.set(request.terminal_id, screen))
    return state, [ShowOnTerminal(line.id, request.terminal_id, screen)]


def current_screen(
    state: DispatcherState, line: Line, stop: Stop, terminal: TerminalId, now: datetime
) -> TerminalScreen:
    """What a terminal should show now (for a resync)."""
    previous = state.screens.get(terminal)
    seq = sign_pages.next_seq(previous.seq if previous else 0, now)
    if line.in_commissioning(stop):
        press = state.commissioning_presses.get(terminal)
        return terminal_screens.commissioning_screen(seq, now, line, press)
    if previous is not None and previous.expires_at > now:
        return replace(previous, seq=seq)
    # After a restart no screen is remembered: a rider still waiting must see their code again.
    mine = [request for request in state.waiting_at(stop.id) if request.terminal_id == terminal]
    if mine:
        return terminal_screens.screen_for(mine[-1], line, seq, now)
    return terminal_screens.idle_screen(seq, now, line)


def show_commissioning(
    state: DispatcherState, line: Line, terminal: TerminalId, now: datetime
) -> Step:
    """Send a commissioning terminal its screen (with its last test press) again."""
    previous = state.screens.get(terminal)
    seq = sign_pages.next_seq(previous.seq if previous else 0, now)
    press = state.commissioning_presses.get(terminal)
    screen = terminal_screens.commissioning_screen(seq, now, line, press)
    state = replace(state, screens=state.screens.set(terminal, screen))
    return state, [ShowOnTerminal(line.id, terminal, screen)]


def refresh_commissioning_screens(state: DispatcherState, now: datetime) -> Step:
    """Renew the commissioning screens that have lived half their time (lease refresh)."""
    effects: list[Effect] = []
    half = terminal_screens.COMMISSIONING_SCREEN_TIME / 2
    for line in state.network.lines:
        for stop in line.all_stops():
            if stop.terminal is None or not line.in_commissioning(stop):
                continue
            shown = state.screens.get(stop.terminal)
            if shown is not None and shown.expires_at - now > half:
                continue
            state, sent = show_commissioning(state, line, stop.terminal, now)
            effects += sent
    return state, effects


def post_operator_message(
    state: DispatcherState, event: OperatorMessagePosted, now: datetime
) -> Step:
    """Put an operator message on a sign (it replaces one with the same id)."""
    found = _sign_of(state, event.line_id, event.sign_id)
    if found is None:
        return reject(state, RejectionReason.UNKNOWN_DEVICE, event.sign_id)
    line, stop, spec = found
    if event.expires_at <= now:
        return reject(state, RejectionReason.INVALID_MESSAGE, "expires_at is not in the future")
    pages = sign_pages.free_text_pages(event.pages, spec.geometry, line.tuning.max_pages)
    if event.pages and not pages:
        return reject(state, RejectionReason.INVALID_MESSAGE, "nothing printable in the message")
    message = OperatorMessage(event.message_id, pages, event.priority, now, event.expires_at)
    kept = tuple(
        m for m in state.operator_messages.get(spec.id, ()) if m.message_id != event.message_id
    )
    state = replace(state, operator_messages={**state.operator_messages, spec.id: (*kept, message)})
    state, effects = relight_stop(state, line, stop, now)
    return state, [ArmMessageExpiry(line.id, spec.id, event.message_id, event.expires_at), *effects]


def clear_operator_message(
    state: DispatcherState, event: OperatorMessageCleared, now: datetime
) -> Step:
    """Withdraw an operator message; the sign goes back to riders' destinations (or blank)."""
    found = _sign_of(state, event.line_id, event.sign_id)
    messages = state.operator_messages.get(event.sign_id, ())
    if found is None or all(m.message_id != event.message_id for m in messages):
        return reject(state, RejectionReason.UNKNOWN_MESSAGE, f"{event.sign_id}/{event.message_id}")
    line, stop, _spec = found
    kept = tuple(m for m in messages if m.message_id != event.message_id)
    operator_messages = {**state.operator_messages, event.sign_id: kept}
    if not kept:
        del operator_messages[event.sign_id]
    return relight_stop(replace(state, operator_messages=operator_messages), line, stop, now)


def _sign_of(
    state: DispatcherState, line_id: str, sign_id: str
) -> tuple[Line, Stop, SignSpec] | None:
    line = state.network.line(LineId(line_id))
    found = line.sign(sign_id) if line else None
    if line is None or found is None:
        return None
    return line, *found
