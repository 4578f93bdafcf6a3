"""Leaving WAITING: cancel, departure, code validation, deadline and fallback; signs follow."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from dispatcher.effects import (
    DisarmDeadline,
    DispatchFallback,
    RejectEvent,
    RejectionReason,
    SaveRequest,
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
    LeaseRefreshDue,
    RideCancelled,
)
from dispatcher.model import Network, RequestId
from dispatcher.request_machine import Cause, DeviceRequestId, RequestState
from tests.core.core_kit import (
    CALAIS,
    DUNKERQUE,
    GRAVELINES,
    HEADING,
    LINE,
    MARCK,
    OTHER_LINE,
    PMV_CALAIS_1,
    PMV_CALAIS_2,
    T0,
    T_CALAIS,
    Core,
    api,
    ms,
    only,
    pages_by_sign,
    press,
    sms,
    terminal_source,
)

LEASE = timedelta(seconds=90)
RESULT_SCREEN = timedelta(seconds=30)
R1 = RequestId("r1")
T1 = T0 + timedelta(minutes=2)


def blank(at_seq: int, at: datetime) -> SignDisplay:
    return SignDisplay(seq=at_seq, pages=(), expires_at=at + LEASE)


def waiting_core(network: Network) -> Core:
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "r1", code="4821"), T0)
    return core


def screen(state: ScreenState, lines: tuple[str, ...], code: str | None = None) -> TerminalScreen:
    return TerminalScreen(
        seq=ms(T1),
        state=state,
        device_request_id=DeviceRequestId("r1"),
        code=code,
        lines=lines,
        expires_at=T1 + RESULT_SCREEN,
    )


@pytest.mark.parametrize(
    ("cancel", "cause"),
    [
        (
            RideCancelled(LINE, Actor.RIDER, source=terminal_source(T_CALAIS, "r1")),
            Cause.RIDER_CANCELLED,
        ),
        (RideCancelled(LINE, Actor.RIDER, request_id=R1), Cause.RIDER_CANCELLED),
        (RideCancelled(LINE, Actor.OPERATOR, request_id=R1), Cause.OPERATOR_CANCELLED),
    ],
    ids=["terminal-source", "request-id", "operator"],
)
def test_a_cancel_blanks_the_signs_and_tells_the_terminal(
    cancel: RideCancelled, cause: Cause, network: Network
) -> None:
    core = waiting_core(network)
    waiting = core.request("r1")

    effects = core.run(cancel, T1)

    cancelled = replace(waiting, state=RequestState.CANCELLED, cause=cause, updated_at=T1)
    assert effects == [
        SaveRequest(cancelled, previous_state=RequestState.WAITING),
        DisarmDeadline(R1),
        ShowOnSign(LINE, PMV_CALAIS_1, blank(ms(T1), T1)),
        ShowOnSign(LINE, PMV_CALAIS_2, blank(ms(T1), T1)),
        ShowOnTerminal(LINE, T_CALAIS, screen(ScreenState.CANCELLED, ("Demande annulee",))),
    ]
    assert core.state.waiting() == ()
    assert core.state.codes == {}
    assert core.armed == {}


def test_the_rider_reporting_departure_is_picked_up(network: Network) -> None:
    core = waiting_core(network)
    departed = RideCancelled(
        LINE, Actor.RIDER, departed=True, source=terminal_source(T_CALAIS, "r1")
    )

    effects = core.run(departed, T1)

    done = core.request("r1")
    assert done.state is RequestState.PICKED_UP
    assert done.cause is Cause.RIDER_DEPARTED
    assert done.driver_ref is None
    assert effects[-1] == ShowOnTerminal(
        LINE, T_CALAIS, screen(ScreenState.PICKED_UP, ("Bon voyage !", "Vers Dunkerque"))
    )
    assert pages_by_sign(effects) == {PMV_CALAIS_1: (), PMV_CALAIS_2: ()}


@pytest.mark.parametrize("typed", ["4821", " 4821 ", "4821\n"])
def test_a_driver_validating_the_code_picks_the_rider_up_and_frees_the_code(
    typed: str, network: Network
) -> None:
    core = waiting_core(network)
    waiting = core.request("r1")

    effects = core.run(CodeValidated(LINE, typed, "+33699999999"), T1)

    done = replace(
        waiting,
        state=RequestState.PICKED_UP,
        cause=Cause.CODE_VALIDATED,
        updated_at=T1,
        driver_ref="+33699999999",
    )
    assert effects == [
        SaveRequest(done, previous_state=RequestState.WAITING),
        DisarmDeadline(R1),
        ShowOnSign(LINE, PMV_CALAIS_1, blank(ms(T1), T1)),
        ShowOnSign(LINE, PMV_CALAIS_2, blank(ms(T1), T1)),
        ShowOnTerminal(
            LINE, T_CALAIS, screen(ScreenState.PICKED_UP, ("Bon voyage !", "Vers Dunkerque"))
        ),
    ]
    assert core.state.request_by_code(LINE, "4821") is None
    core.run(api(MARCK, DUNKERQUE, "r2", code="4821"), T1)
    assert core.request("r2").code == "4821"


def test_a_code_validated_twice_is_rejected_the_second_time(network: Network) -> None:
    core = waiting_core(network)
    core.run(CodeValidated(LINE, "4821", "driver-1"), T1)
    before = core.state
    assert core.run(CodeValidated(LINE, "4821", "driver-2"), T1) == [
        RejectEvent(RejectionReason.UNKNOWN_CODE, "4821")
    ]
    assert core.state is before


@pytest.mark.parametrize(
    "event",
    [
        CodeValidated(LINE, "0000", "driver-1"),
        CodeValidated(OTHER_LINE, "4821", "driver-1"),
        CodeValidated(LINE, "", "driver-1"),
    ],
)
def test_an_unknown_code_is_rejected(event: CodeValidated, network: Network) -> None:
    core = waiting_core(network)
    before = core.state
    (rejected,) = core.run(event, T1)
    assert rejected == RejectEvent(RejectionReason.UNKNOWN_CODE, event.code[:8])
    assert core.state is before


@pytest.mark.parametrize(
    "event",
    [
        RideCancelled(LINE, Actor.RIDER, request_id=RequestId("ghost")),
        RideCancelled(LINE, Actor.RIDER, source=terminal_source(T_CALAIS, "ghost")),
        RideCancelled(LINE, Actor.RIDER),
        RideCancelled(OTHER_LINE, Actor.OPERATOR, request_id=R1),
    ],
    ids=["unknown-id", "unknown-source", "no-reference", "other-line"],
)
def test_a_cancel_of_an_unknown_request_is_rejected(event: RideCancelled, network: Network) -> None:
    core = waiting_core(network)
    before = core.state
    (rejected,) = core.run(event, T1)
    assert isinstance(rejected, RejectEvent)
    assert rejected.reason is RejectionReason.UNKNOWN_REQUEST
    assert core.state is before


def test_the_deadline_without_fallback_expires_the_request(network: Network) -> None:
    core = waiting_core(network)
    waiting = core.request("r1")
    at = T0 + timedelta(minutes=30)

    effects = core.run(DeadlineReached(R1), at)

    expired = replace(
        waiting, state=RequestState.EXPIRED, cause=Cause.DEADLINE_REACHED, updated_at=at
    )
    assert effects == [
        SaveRequest(expired, previous_state=RequestState.WAITING),
        DisarmDeadline(R1),
        ShowOnSign(LINE, PMV_CALAIS_1, blank(ms(at), at)),
        ShowOnSign(LINE, PMV_CALAIS_2, blank(ms(at), at)),
        ShowOnTerminal(
            LINE,
            T_CALAIS,
            TerminalScreen(
                seq=ms(at),
                state=ScreenState.EXPIRED,
                device_request_id=DeviceRequestId("r1"),
                code=None,
                lines=("Aucun conducteur ne s'est arrete", "Demande terminee"),
                expires_at=at + RESULT_SCREEN,
            ),
        ),
    ]
    assert only(effects, DispatchFallback) == []
    assert core.state.codes == {}


def test_the_wait_guarantee_dispatches_the_fallback(fallback_network: Network) -> None:
    core = waiting_core(fallback_network)
    waiting = core.request("r1")
    at = T0 + timedelta(minutes=15)

    effects = core.run(DeadlineReached(R1), at)

    fallback = replace(
        waiting, state=RequestState.FALLBACK, cause=Cause.GUARANTEE_REACHED, updated_at=at
    )
    assert effects == [
        SaveRequest(fallback, previous_state=RequestState.WAITING),
        DisarmDeadline(R1),
        ShowOnSign(LINE, PMV_CALAIS_1, blank(ms(at), at)),
        ShowOnSign(LINE, PMV_CALAIS_2, blank(ms(at), at)),
        DispatchFallback(fallback),
        ShowOnTerminal(
            LINE,
            T_CALAIS,
            TerminalScreen(
                seq=ms(at),
                state=ScreenState.FALLBACK,
                device_request_id=DeviceRequestId("r1"),
                code="4821",
                lines=("Un taxi est en route", "Vers Dunkerque", "Votre code : 4821"),
                expires_at=at + RESULT_SCREEN,
            ),
        ),
    ]
    # The code stays valid: a driver stopping before the taxi still validates the trip.
    assert core.state.request_by_code(LINE, "4821") == fallback
    core.run(api(MARCK, DUNKERQUE, "r2", code="4821"), at)
    assert core.request("r2").code == "4822"

    later = at + timedelta(minutes=3)
    effects = core.run(CodeValidated(LINE, "4821", "taxi-12"), later)
    done = replace(
        fallback,
        state=RequestState.PICKED_UP,
        cause=Cause.CODE_VALIDATED,
        updated_at=later,
        driver_ref="taxi-12",
    )
    assert effects[0] == SaveRequest(done, previous_state=RequestState.FALLBACK)
    assert [type(effect) for effect in effects] == [SaveRequest, ShowOnTerminal]


@pytest.mark.parametrize(
    "event",
    [
        DeadlineReached(R1),
        RideCancelled(LINE, Actor.RIDER, request_id=R1),
        RideCancelled(LINE, Actor.OPERATOR, request_id=R1),
        RideCancelled(LINE, Actor.RIDER, departed=True, request_id=R1),
    ],
)
def test_a_fallback_request_takes_only_a_code(
    event: DeadlineReached | RideCancelled, fallback_network: Network
) -> None:
    core = waiting_core(fallback_network)
    core.run(DeadlineReached(R1), T0 + timedelta(minutes=15))
    before = core.state
    (rejected,) = core.run(event, T0 + timedelta(minutes=16))
    assert rejected == RejectEvent(RejectionReason.NOT_WAITING, "r1 is fallback")
    assert core.state is before


@pytest.mark.parametrize(
    "finish",
    [
        CodeValidated(LINE, "4821", "driver-1"),
        RideCancelled(LINE, Actor.RIDER, request_id=R1),
        RideCancelled(LINE, Actor.RIDER, departed=True, request_id=R1),
    ],
)
def test_a_stale_deadline_after_the_request_left_is_rejected(
    finish: CodeValidated | RideCancelled, network: Network
) -> None:
    core = waiting_core(network)
    core.run(finish, T1)
    before = core.state
    effects = core.run(DeadlineReached(R1), T0 + timedelta(minutes=30))
    assert len(effects) == 1
    assert isinstance(effects[0], RejectEvent)
    assert effects[0].reason is RejectionReason.NOT_WAITING
    assert core.state is before


def test_a_deadline_for_an_unknown_request_is_rejected(network: Network) -> None:
    core = waiting_core(network)
    assert core.run(DeadlineReached(RequestId("ghost")), T1) == [
        RejectEvent(RejectionReason.UNKNOWN_REQUEST, "ghost")
    ]


def test_signs_stay_lit_with_the_destinations_still_waiting(network: Network) -> None:
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "r1", code="0001"), T0)
    core.run(sms(CALAIS, MARCK, "r2", "+33600000002", code="0002"), T0)
    core.run(api(CALAIS, MARCK, "r3", code="0003"), T0)

    effects = core.run(CodeValidated(LINE, "0001", "driver-1"), T1)
    marck = ((HEADING, "MARCK"),)
    assert pages_by_sign(effects) == {PMV_CALAIS_1: marck, PMV_CALAIS_2: marck}
    assert [effect.display.expires_at for effect in only(effects, ShowOnSign)] == [T1 + LEASE] * 2

    # One of two riders for Marck leaves: the signs need no new display.
    effects = core.run(RideCancelled(LINE, Actor.RIDER, request_id=RequestId("r2")), T1)
    assert only(effects, ShowOnSign) == []
    assert core.state.signs[PMV_CALAIS_1].pages == marck

    effects = core.run(RideCancelled(LINE, Actor.OPERATOR, request_id=RequestId("r3")), T1)
    assert pages_by_sign(effects) == {PMV_CALAIS_1: (), PMV_CALAIS_2: ()}
    assert only(effects, ShowOnTerminal) == []  # r3 came through the API


def test_finished_requests_are_forgotten_after_their_retention(network: Network) -> None:
    core = waiting_core(network)
    core.run(RideCancelled(LINE, Actor.RIDER, request_id=R1), T1)
    core.run(LeaseRefreshDue(), T1 + timedelta(minutes=60))
    assert R1 in core.state.requests  # retention is 2 × max_wait = 60 min
    core.run(LeaseRefreshDue(), T1 + timedelta(minutes=60, seconds=1))
    assert core.state.requests == {}
    assert core.state.by_source == {}


def test_a_fallback_request_is_forgotten_after_its_retention_and_frees_its_code(
    fallback_network: Network,
) -> None:
    core = waiting_core(fallback_network)
    at = T0 + timedelta(minutes=15)
    core.run(DeadlineReached(R1), at)
    core.run(api(GRAVELINES, DUNKERQUE, "r2", code="4821"), at)
    core.run(LeaseRefreshDue(), at + timedelta(minutes=60))
    assert core.state.request_by_code(LINE, "4821") == core.request("r1")

    core.run(LeaseRefreshDue(), at + timedelta(minutes=61))

    assert R1 not in core.state.requests
    assert core.state.codes == {(LINE, "4822"): RequestId("r2")}
    assert core.run(CodeValidated(LINE, "4821", "late-driver"), at + timedelta(minutes=62)) == [
        RejectEvent(RejectionReason.UNKNOWN_CODE, "4821")
    ]
