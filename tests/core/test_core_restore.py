"""restore() after a restart, and DevicesResyncRequested: every device told its desired state.

A restart is restore() (requests back, deadlines re-armed), then the broker connection's
DevicesResyncRequested (every device re-asserted once): `Core.restart` does both.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from dispatcher.effects import (
    ArmDeadline,
    Effect,
    ScreenState,
    ShowOnSign,
    ShowOnTerminal,
    SignDisplay,
    TerminalScreen,
)
from dispatcher.events import (
    Actor,
    CodeValidated,
    DeadlineReached,
    DevicesResyncRequested,
    RideCancelled,
)
from dispatcher.model import DeviceKind, Network, RequestId, TerminalId
from dispatcher.persistent_map import PersistentMap
from dispatcher.request_machine import RequestState, RideRequest
from dispatcher.state import DispatcherState
from dispatcher.step import restore, step
from tests.core.core_kit import (
    BOULOGNE,
    CALAIS,
    DUNKERQUE,
    DUNKERQUE_OUEST,
    FRETHUN,
    GRAVELINES,
    HEADING,
    LINE,
    MARCK,
    OTHER_LINE,
    PMV_BOULOGNE,
    PMV_CALAIS_1,
    PMV_CALAIS_2,
    PMV_DUNKERQUE_OUEST,
    PMV_FRETHUN,
    PMV_GRAVELINES,
    PMV_GRAVELINES_SUD,
    PMV_MARCK,
    T0,
    T_BOULOGNE,
    T_CALAIS,
    T_DUNKERQUE,
    T_DUNKERQUE_OUEST,
    T_MARCK,
    WIMEREUX,
    Core,
    api,
    ms,
    only,
    press,
)

LEASE = timedelta(seconds=90)
MAX_WAIT = timedelta(minutes=30)
RESTART = T0 + timedelta(minutes=5)


def a_morning(network: Network) -> Core:
    """Riders at three stops of two lines; one picked up, one refused."""
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "r1", code="0001"), T0)
    core.run(api(CALAIS, MARCK, "r2", code="0002"), T0 + timedelta(seconds=1))
    core.run(press(MARCK, GRAVELINES, "r3", code="0003"), T0)
    core.run(CodeValidated(LINE, "0003", "driver-3"), T0 + timedelta(minutes=1))
    core.run(press(DUNKERQUE_OUEST, FRETHUN, "r4", code="0004"), T0 + timedelta(seconds=2))
    core.run(press(BOULOGNE, WIMEREUX, "r5", code="0001"), T0 + timedelta(seconds=3))
    core.run(press(MARCK, CALAIS, "r6"), T0)  # refused: upstream
    return core


def idle(terminal: TerminalId, at: datetime) -> ShowOnTerminal:
    line = OTHER_LINE if terminal == T_BOULOGNE else LINE
    screen = TerminalScreen(
        seq=ms(at),
        state=ScreenState.IDLE,
        device_request_id=None,
        code=None,
        lines=("Choisissez votre destination",),
        expires_at=at + LEASE,
    )
    return ShowOnTerminal(line, terminal, screen)


def waiting_screen(request: RideRequest, place: str, at: datetime) -> TerminalScreen:
    return TerminalScreen(
        seq=ms(at),
        state=ScreenState.WAITING,
        device_request_id=request.source.device_request_id,
        code=request.code,
        lines=(f"Vers {place}", f"Votre code : {request.code}", "Les panneaux sont allumes"),
        expires_at=request.deadline_at,
        destination_id=request.destination_id,
    )


def test_restore_rebuilds_waiting_requests_rearms_and_reasserts_every_device(
    network: Network,
) -> None:
    before = a_morning(network)
    rows = sorted(before.state.requests.values(), key=lambda request: request.id, reverse=True)
    core = Core(network)

    effects = core.restart(rows, RESTART)

    r1, r2, r4, r5 = (before.request(rid) for rid in ("r1", "r2", "r4", "r5"))

    def lit(*names: str) -> SignDisplay:
        return SignDisplay(ms(RESTART), ((HEADING, *names),), RESTART + LEASE)

    dark = SignDisplay(ms(RESTART), (), RESTART + LEASE)
    expected: list[Effect] = [
        ArmDeadline(r1.id, T0 + MAX_WAIT),
        ArmDeadline(r2.id, T0 + timedelta(seconds=1) + MAX_WAIT),
        ArmDeadline(r4.id, T0 + timedelta(seconds=2) + MAX_WAIT),
        ArmDeadline(r5.id, T0 + timedelta(seconds=3) + MAX_WAIT),
        ShowOnSign(LINE, PMV_CALAIS_1, lit("DUNKERQUE", "MARCK")),
        ShowOnSign(LINE, PMV_CALAIS_2, lit("DUNKERQUE", "MARCK")),
        ShowOnTerminal(LINE, T_CALAIS, waiting_screen(r1, "Dunkerque", RESTART)),
        ShowOnSign(LINE, PMV_MARCK, dark),
        idle(T_MARCK, RESTART),
        ShowOnSign(LINE, PMV_GRAVELINES, dark),
        idle(T_DUNKERQUE, RESTART),
        ShowOnSign(LINE, PMV_DUNKERQUE_OUEST, lit("FRETHUN")),
        ShowOnTerminal(LINE, T_DUNKERQUE_OUEST, waiting_screen(r4, "Fréthun", RESTART)),
        ShowOnSign(LINE, PMV_GRAVELINES_SUD, dark),
        ShowOnSign(LINE, PMV_FRETHUN, dark),
        ShowOnSign(OTHER_LINE, PMV_BOULOGNE, lit("WIMEREUX")),
        ShowOnTerminal(OTHER_LINE, T_BOULOGNE, waiting_screen(r5, "Wimereux", RESTART)),
    ]
    assert effects == expected

    # Every configured device is covered, signs and terminals alike.
    shown = {effect.sign_id for effect in only(effects, ShowOnSign)}
    shown_terminals = {effect.terminal_id for effect in only(effects, ShowOnTerminal)}
    devices = network.devices()
    assert shown == {device for kind, device in devices if kind is DeviceKind.SIGN}
    assert shown_terminals == {device for kind, device in devices if kind is DeviceKind.TERMINAL}

    # The indexes match the ones the live dispatcher had.
    assert core.state.requests == before.state.requests
    assert core.state.codes == before.state.codes
    assert core.state.waiting() == before.state.waiting()
    assert core.state.waiting_by_stop[CALAIS] == (r1.id, r2.id)
    assert core.armed == before.armed


def test_a_restored_request_goes_on_as_before(network: Network) -> None:
    core = Core(network)
    core.restart(list(a_morning(network).state.requests.values()), RESTART)

    core.run(CodeValidated(LINE, "0001", "driver-1"), RESTART)
    assert core.request("r1").state is RequestState.PICKED_UP
    assert core.state.signs[PMV_CALAIS_1].pages == ((HEADING, "MARCK"),)
    core.run(DeadlineReached(RequestId("r2")), T0 + timedelta(seconds=1) + MAX_WAIT)
    assert core.request("r2").state is RequestState.EXPIRED
    assert core.state.signs[PMV_CALAIS_1].pages == ()
    # The same terminal press redelivered after the restart is still the same request.
    assert len(core.run(press(DUNKERQUE_OUEST, FRETHUN, "r4-again", press_id="r4"), RESTART)) == 1
    assert RequestId("r4-again") not in core.state.requests


def test_restore_of_nothing_blanks_every_sign_and_idles_every_terminal(network: Network) -> None:
    core = Core(network)
    effects = core.restart([], RESTART)
    assert only(effects, ArmDeadline) == []
    assert all(effect.display.pages == () for effect in only(effects, ShowOnSign))
    assert len(only(effects, ShowOnSign)) == 8
    screens = only(effects, ShowOnTerminal)
    assert [effect.screen.state for effect in screens] == [ScreenState.IDLE] * 5


def test_restore_alone_tells_no_device_anything_and_rearms_every_deadline(
    network: Network,
) -> None:
    before = a_morning(network)
    state, effects = restore(DispatcherState(network), list(before.state.requests.values()))
    assert only(effects, ShowOnSign) == []
    assert only(effects, ShowOnTerminal) == []
    assert {effect.request_id for effect in only(effects, ArmDeadline)} == {
        RequestId(rid) for rid in ("r1", "r2", "r4", "r5")
    }
    assert state.waiting() == before.state.waiting()


def test_riders_of_the_same_instant_come_back_in_one_order_whatever_the_database_gives(
    network: Network,
) -> None:
    same_instant = [
        replace(request, created_at=T0) for request in a_morning(network).state.requests.values()
    ]
    orders = [same_instant, same_instant[::-1], [*same_instant[1:], same_instant[0]]]
    waiting = {
        tuple(r.id for r in restore(DispatcherState(network), o)[0].waiting()) for o in orders
    }
    assert len(waiting) == 1
    [order] = waiting
    assert len(order) > 1
    assert list(order) == sorted(order)


def test_restore_keeps_sign_seqs_increasing_within_the_same_millisecond(
    network: Network,
) -> None:
    core = a_morning(network)
    seqs = dict(core.state.signs)
    state, _ = restore(core.state, list(core.state.requests.values()))
    _, effects = step(state, DevicesResyncRequested(), T0)
    shown = only(effects, ShowOnSign)
    assert {effect.sign_id for effect in shown} >= set(seqs)
    for effect in shown:
        if effect.sign_id in seqs:
            assert effect.display.seq > seqs[effect.sign_id].seq
    assert state.requests == core.state.requests


def test_restore_keeps_known_device_presence(network: Network) -> None:
    known: dict[tuple[DeviceKind, str], bool] = {(DeviceKind.SIGN, PMV_MARCK): False}
    state = DispatcherState(network, online=PersistentMap(known))
    restored, _ = restore(state, [])
    assert restored.online == {(DeviceKind.SIGN, PMV_MARCK): False}


def test_resync_resends_every_display_with_newer_seqs(network: Network) -> None:
    core = a_morning(network)
    core.run(RideCancelled(LINE, Actor.RIDER, request_id=RequestId("r2")), T0)
    before = dict(core.state.signs)
    at = T0 + timedelta(minutes=1, seconds=10)

    effects = core.run(DevicesResyncRequested(), at)

    signs = only(effects, ShowOnSign)
    assert len(signs) == 8
    for effect in signs:
        if effect.sign_id in before:
            assert effect.display.seq > before[effect.sign_id].seq
            assert effect.display.pages == before[effect.sign_id].pages
        assert effect.display.seq >= ms(at)
    screens = {effect.terminal_id: effect.screen for effect in only(effects, ShowOnTerminal)}
    assert screens[T_CALAIS].state is ScreenState.WAITING
    assert screens[T_CALAIS].code == "0001"
    # Marck's "bon voyage" screen (shown at T0 + 1 min for 30 s) has ended.
    assert screens[T_MARCK].state is ScreenState.IDLE
