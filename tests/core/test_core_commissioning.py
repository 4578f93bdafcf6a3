"""Stops in commissioning: riders refused without a sign lit, terminal presses are tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from dispatcher.effects import (
    SaveRequest,
    ScreenState,
    ShowOnSign,
    ShowOnTerminal,
    TerminalScreen,
)
from dispatcher.events import DevicesResyncRequested, LeaseRefreshDue
from dispatcher.model import Line, Network, StopId
from dispatcher.request_machine import Cause, DeviceRequestId, RequestState
from dispatcher.state import CommissioningPress
from dispatcher.terminal_screens import COMMISSIONING_SCREEN_TIME
from tests.core.conftest import build_network
from tests.core.core_kit import (
    CALAIS,
    DUNKERQUE,
    LINE,
    MARCK,
    T0,
    T_CALAIS,
    T_MARCK,
    Core,
    api,
    ms,
    only,
    press,
    sms,
)

TITLE = ("MISE EN SERVICE", "Arret pas encore ouvert")


def commissioning(network: Network, *stops: StopId, whole_line: bool = False) -> Network:
    """The network with `stops` (or the whole main line) marked in commissioning."""

    def mark(line: Line) -> Line:
        if line.id != LINE:
            return line
        directions = tuple(
            replace(
                direction,
                stops=tuple(
                    replace(stop, commissioning=stop.id in stops) for stop in direction.stops
                ),
            )
            for direction in line.directions
        )
        return replace(line, directions=directions, commissioning=whole_line)

    return Network(tuple(mark(line) for line in network.lines))


def screen(seq: int, lines: tuple[str, ...], device_request_id: str | None) -> TerminalScreen:
    return TerminalScreen(
        seq=seq,
        state=ScreenState.CLOSED,
        device_request_id=None if device_request_id is None else DeviceRequestId(device_request_id),
        code=None,
        lines=lines,
        expires_at=T0 + COMMISSIONING_SCREEN_TIME,
    )


def test_a_press_at_a_stop_in_commissioning_is_a_test_not_a_ride() -> None:
    core = Core(commissioning(build_network(), CALAIS))
    effects = core.run(press(CALAIS, DUNKERQUE, "b1"), T0)
    assert effects == [
        ShowOnTerminal(LINE, T_CALAIS, screen(ms(T0), ("TEST OK - bouton DUNKERQUE", *TITLE), "b1"))
    ]
    assert len(core.state.requests) == 0
    assert core.state.waiting_at(CALAIS) == ()
    assert core.state.commissioning_presses[T_CALAIS] == CommissioningPress(
        device_request_id=DeviceRequestId("b1"), destination_id=DUNKERQUE, known=True, pressed_at=T0
    )


def test_a_repeated_test_press_keeps_its_first_time_and_a_new_one_replaces_it() -> None:
    core = Core(commissioning(build_network(), CALAIS))
    core.run(press(CALAIS, DUNKERQUE, "b1"), T0)
    later = T0 + timedelta(seconds=3)
    again = core.run(press(CALAIS, DUNKERQUE, "b1"), later)
    assert only(again, ShowOnTerminal)[0].screen.device_request_id == "b1"
    assert core.state.commissioning_presses[T_CALAIS].pressed_at == T0
    core.run(press(CALAIS, MARCK, "b2"), later)
    recorded = core.state.commissioning_presses[T_CALAIS]
    assert (recorded.device_request_id, recorded.destination_id, recorded.pressed_at) == (
        "b2",
        MARCK,
        later,
    )


def test_a_button_naming_no_destination_of_the_stop_shows_it_unknown() -> None:
    core = Core(commissioning(build_network(), MARCK))
    effects = core.run(press(MARCK, CALAIS, "b1"), T0)  # Calais lies upstream of Marck
    assert effects == [
        ShowOnTerminal(
            LINE, T_MARCK, screen(ms(T0), ("TEST - bouton inconnu calais-est", *TITLE), "b1")
        )
    ]
    assert core.state.commissioning_presses[T_MARCK].known is False


def test_sms_and_api_riders_are_refused_and_no_sign_lights() -> None:
    core = Core(commissioning(build_network(), CALAIS))
    by_sms = core.run(sms(CALAIS, DUNKERQUE, "r1", "+33612345678"), T0)
    by_api = core.run(api(CALAIS, DUNKERQUE, "r2"), T0)
    for effects, request_id in ((by_sms, "r1"), (by_api, "r2")):
        saved = only(effects, SaveRequest)
        assert [(s.request.state, s.request.cause) for s in saved] == [
            (RequestState.REFUSED, Cause.COMMISSIONING)
        ]
        assert only(effects, ShowOnSign) == []
        assert core.request(request_id).code is None
    assert core.state.waiting_at(CALAIS) == ()


def test_a_whole_line_in_commissioning_refuses_every_stop() -> None:
    core = Core(commissioning(build_network(), whole_line=True))
    effects = core.run(api(MARCK, DUNKERQUE, "r1"), T0)
    assert only(effects, SaveRequest)[0].request.cause is Cause.COMMISSIONING
    assert only(core.run(press(CALAIS, DUNKERQUE, "b1"), T0), ShowOnTerminal)[0].screen.lines[
        0
    ] == ("TEST OK - bouton DUNKERQUE")


def test_other_stops_serve_riders_as_usual() -> None:
    core = Core(commissioning(build_network(), CALAIS))
    effects = core.run(press(MARCK, DUNKERQUE, "r1"), T0)
    assert core.request("r1").state is RequestState.WAITING
    assert only(effects, ShowOnSign) != []


def test_resync_shows_the_commissioning_screen_with_the_last_test() -> None:
    core = Core(commissioning(build_network(), CALAIS))
    resync = only(core.run(DevicesResyncRequested(), T0), ShowOnTerminal)
    shown = {effect.terminal_id: effect.screen for effect in resync}
    assert shown[T_CALAIS] == screen(ms(T0), TITLE, None)
    assert shown[T_MARCK].state is ScreenState.IDLE
    core.run(press(CALAIS, DUNKERQUE, "b1"), T0)
    again = {
        e.terminal_id: e.screen
        for e in only(core.run(DevicesResyncRequested(), T0), ShowOnTerminal)
    }
    assert again[T_CALAIS].lines == ("TEST OK - bouton DUNKERQUE", *TITLE)


def test_lease_refresh_renews_a_commissioning_screen_once_half_its_time_is_gone() -> None:
    core = Core(commissioning(build_network(), CALAIS))
    core.run(DevicesResyncRequested(), T0)
    early = T0 + COMMISSIONING_SCREEN_TIME / 2 - timedelta(seconds=1)
    assert only(core.run(LeaseRefreshDue(), early), ShowOnTerminal) == []
    late = T0 + COMMISSIONING_SCREEN_TIME / 2
    renewed = only(core.run(LeaseRefreshDue(), late), ShowOnTerminal)
    assert [(e.terminal_id, e.screen.lines, e.screen.expires_at) for e in renewed] == [
        (T_CALAIS, TITLE, late + COMMISSIONING_SCREEN_TIME)
    ]
