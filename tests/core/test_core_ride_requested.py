"""RideRequested: accepted, refused, deduplicated, capped; codes drawn without collision."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from dispatcher.effects import (
    ArmDeadline,
    RejectEvent,
    RejectionReason,
    SaveRequest,
    SaveSourceAlias,
    ScreenState,
    ShowOnSign,
    ShowOnTerminal,
    SignDisplay,
    TerminalScreen,
)
from dispatcher.events import Actor, RideCancelled, RideRequested
from dispatcher.model import LineId, Network, RequestId, StopId
from dispatcher.request_machine import (
    Cause,
    Channel,
    DeviceRequestId,
    RequestState,
    RideRequest,
    Source,
)
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
    NOON,
    PMV_CALAIS_1,
    PMV_CALAIS_2,
    SATURDAY,
    T0,
    T_CALAIS,
    WIMEREUX,
    Core,
    api,
    ms,
    only,
    press,
    sms,
    terminal_source,
)
from tests.support.requests import ride_request

LEASE = timedelta(seconds=90)
MAX_WAIT = timedelta(minutes=30)
GUARANTEE = timedelta(minutes=15)


def waiting_request(deadline_at_offset: timedelta) -> RideRequest:
    return ride_request(
        "r1",
        T0,
        line=LINE,
        stop=CALAIS,
        destination=DUNKERQUE,
        terminal=T_CALAIS,
        wait=deadline_at_offset,
    )


@pytest.mark.parametrize(
    ("fallback", "wait_limit"), [(False, MAX_WAIT), (True, GUARANTEE)], ids=["plain", "fallback"]
)
def test_a_press_waits_arms_its_deadline_and_lights_every_sign_of_the_stop(
    fallback: bool, wait_limit: timedelta, network: Network, fallback_network: Network
) -> None:
    core = Core(fallback_network if fallback else network)

    effects = core.run(press(CALAIS, DUNKERQUE, "r1", code="4821"), T0)

    request = waiting_request(wait_limit)
    lit = SignDisplay(seq=ms(T0), pages=((HEADING, "DUNKERQUE"),), expires_at=T0 + LEASE)
    assert effects == [
        SaveRequest(request, previous_state=None),
        ArmDeadline(RequestId("r1"), T0 + wait_limit),
        ShowOnSign(LINE, PMV_CALAIS_1, lit),
        ShowOnSign(LINE, PMV_CALAIS_2, lit),
        ShowOnTerminal(
            LINE,
            T_CALAIS,
            TerminalScreen(
                seq=ms(T0),
                state=ScreenState.WAITING,
                device_request_id=DeviceRequestId("r1"),
                code="4821",
                lines=("Vers Dunkerque", "Votre code : 4821", "Les panneaux sont allumes"),
                expires_at=T0 + wait_limit,
                destination_id=DUNKERQUE,
            ),
        ),
    ]
    assert core.request("r1") == request
    assert re.fullmatch(r"\d{4}", request.code or "")
    assert core.state.waiting_at(CALAIS) == (request,)
    assert core.state.request_by_code(LINE, "4821") == request


def test_a_request_by_sms_lights_signs_but_shows_no_terminal(network: Network) -> None:
    core = Core(network)
    effects = core.run(sms(MARCK, GRAVELINES, "r1", "+33612345678", code="0042"), T0)
    assert [type(effect) for effect in effects] == [SaveRequest, ArmDeadline, ShowOnSign]
    assert core.request("r1").code == "0042"
    assert core.request("r1").phone == "+33612345678"
    assert core.state.waiting_for_phone("+33612345678") == core.request("r1")


@pytest.mark.parametrize("at", [NOON, SATURDAY, T0 - timedelta(hours=2)], ids=str)
def test_closed_hours_refuse_without_lighting_a_sign(at: datetime, peak_network: Network) -> None:
    core = Core(peak_network)

    effects = core.run(press(CALAIS, DUNKERQUE, "r1"), at)

    refused = core.request("r1")
    assert refused.state is RequestState.REFUSED
    assert refused.cause is Cause.CLOSED
    assert refused.code is None
    assert effects == [
        SaveRequest(refused, previous_state=None),
        ShowOnTerminal(
            LINE,
            T_CALAIS,
            TerminalScreen(
                seq=ms(at),
                state=ScreenState.CLOSED,
                device_request_id=DeviceRequestId("r1"),
                code=None,
                lines=("Service ferme", "lun-ven 06:30-09:30 16:00-19:30"),
                expires_at=at + timedelta(seconds=30),
            ),
        ),
    ]
    assert core.state.waiting() == ()
    assert core.armed == {}


def test_peak_hours_accept(peak_network: Network) -> None:
    core = Core(peak_network)
    core.run(press(CALAIS, DUNKERQUE, "r1"), T0)
    assert core.request("r1").state is RequestState.WAITING


@pytest.mark.parametrize(
    ("stop", "destination"),
    [
        (MARCK, CALAIS),  # upstream
        (MARCK, MARCK),  # the same stop
        (CALAIS, FRETHUN),  # a stop of the other direction
        (CALAIS, DUNKERQUE_OUEST),  # the other direction's first stop
        (CALAIS, WIMEREUX),  # a stop of another line
        (CALAIS, StopId("nowhere")),  # no such stop
    ],
)
def test_a_destination_not_downstream_is_refused(
    stop: StopId, destination: StopId, network: Network
) -> None:
    core = Core(network)

    effects = core.run(press(stop, destination, "r1"), T0)

    refused = core.request("r1")
    assert refused.state is RequestState.REFUSED
    assert refused.cause is Cause.UNKNOWN_DESTINATION
    assert only(effects, ShowOnSign) == []
    assert only(effects, ArmDeadline) == []
    assert effects[0] == SaveRequest(refused, previous_state=None)
    (shown,) = only(effects, ShowOnTerminal)
    assert shown.screen.state is ScreenState.REFUSED
    assert shown.screen.lines == ("Destination non desservie", "depuis cet arret")
    assert core.state.signs == {}


def test_unknown_line_or_stop_is_rejected_unchanged(network: Network) -> None:
    core = Core(network)
    before = core.state
    wrong_line = RideRequested(
        RequestId("r1"),
        LineId("nope"),
        CALAIS,
        DUNKERQUE,
        1,
        terminal_source(T_CALAIS, "r1"),
        "1111",
    )
    assert core.run(wrong_line, T0) == [RejectEvent(RejectionReason.UNKNOWN_LINE, "nope")]
    # boulogne exists, but on the other line.
    wrong_stop = replace(api(BOULOGNE, WIMEREUX, "r2"), line_id=LINE)
    assert core.run(wrong_stop, T0) == [RejectEvent(RejectionReason.UNKNOWN_STOP, "boulogne")]
    assert core.state is before


def test_the_same_source_twice_is_one_request(network: Network) -> None:
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "r1", code="4821"), T0)
    state_before = core.state
    later = T0 + timedelta(seconds=2)

    # The MQTT broker redelivers (QoS 1): same terminal request id, new core id from the shell.
    again = press(CALAIS, DUNKERQUE, "r1-redelivered", code="9999", press_id="r1")
    effects = core.run(again, later)

    assert effects == [
        ShowOnTerminal(
            LINE,
            T_CALAIS,
            TerminalScreen(
                seq=ms(later),
                state=ScreenState.WAITING,
                device_request_id=DeviceRequestId("r1"),
                code="4821",
                lines=("Vers Dunkerque", "Votre code : 4821", "Les panneaux sont allumes"),
                expires_at=T0 + MAX_WAIT,
                destination_id=DUNKERQUE,
            ),
        )
    ]
    assert core.state.requests == state_before.requests
    assert core.state.waiting_by_stop == state_before.waiting_by_stop
    assert core.state.codes == state_before.codes
    assert core.state.signs == state_before.signs


def test_the_same_sms_twice_is_one_request(network: Network) -> None:
    core = Core(network)
    core.run(sms(CALAIS, MARCK, "r1", "+33600000001", sid="SM1"), T0)
    effects = core.run(sms(CALAIS, MARCK, "r2", "+33600000001", sid="SM1"), T0)
    assert effects == []
    assert list(core.state.requests) == [RequestId("r1")]


def test_the_same_phone_asking_again_is_one_request(network: Network) -> None:
    core = Core(network)
    core.run(sms(CALAIS, MARCK, "r1", "+33600000001", sid="SM1"), T0)
    again = core.run(sms(CALAIS, MARCK, "r2", "+33600000001", sid="SM2"), T0)
    # Only the new MessageSid is stored as another name of the same request.
    assert again == [SaveSourceAlias(Source(Channel.SMS, "SM2"), RequestId("r1"))]
    assert [request.id for request in core.state.waiting()] == [RequestId("r1")]


def test_a_terminal_pressed_again_and_again_makes_no_phantom_passenger(network: Network) -> None:
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "r1", code="4821"), T0)
    signs_before = core.state.signs

    for n in range(2, 40):
        at = T0 + timedelta(seconds=n)
        effects = core.run(press(CALAIS, DUNKERQUE, f"r{n}", code=f"{n:04d}"), at)
        alias, shown = effects
        # The press is stored as another name of r1, so a cancel naming it survives a restart.
        assert alias == SaveSourceAlias(terminal_source(T_CALAIS, f"r{n}"), RequestId("r1"))
        assert isinstance(shown, ShowOnTerminal)
        assert shown.screen.code == "4821"
        assert shown.screen.state is ScreenState.WAITING
        # The screen answers the press the terminal just made.
        assert shown.screen.device_request_id == f"r{n}"

    assert [request.id for request in core.state.waiting()] == [RequestId("r1")]
    assert list(core.state.requests) == [RequestId("r1")]
    assert core.state.signs == signs_before
    assert core.armed == {RequestId("r1"): T0 + MAX_WAIT}

    # Cancelling with the id of any of those presses cancels the one request.
    cancel = RideCancelled(LINE, Actor.RIDER, source=terminal_source(T_CALAIS, "r17"))
    core.run(cancel, T0 + timedelta(minutes=1))
    assert core.request("r1").state is RequestState.CANCELLED
    assert core.state.waiting() == ()


def test_the_same_terminal_may_ask_for_another_destination(network: Network) -> None:
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "r1", code="1000"), T0)
    core.run(press(CALAIS, MARCK, "r2", code="2000"), T0)
    assert [request.id for request in core.state.waiting()] == [RequestId("r1"), RequestId("r2")]


def fill_calais(core: Core) -> None:
    """Six riders at Calais-Est, its cap: four asked from the app (the remote share), two at
    the terminal."""
    for n in range(4):
        core.run(api(CALAIS, DUNKERQUE, f"r{n}", code=f"{n:04d}"), T0)
    core.run(press(CALAIS, DUNKERQUE, "r4", code="0004"), T0)
    core.run(press(CALAIS, GRAVELINES, "r5", code="0005"), T0)


def test_a_full_stop_refuses_more_riders(network: Network) -> None:
    core = Core(network)
    fill_calais(core)
    assert len(core.state.waiting_at(CALAIS)) == 6
    signs_before = core.state.signs

    effects = core.run(api(CALAIS, MARCK, "r6"), T0 + timedelta(seconds=1))

    refused = core.request("r6")
    assert refused.state is RequestState.REFUSED
    assert refused.cause is Cause.STOP_FULL
    assert effects == [SaveRequest(refused, previous_state=None)]
    assert core.state.signs == signs_before
    assert len(core.state.waiting_at(CALAIS)) == 6
    # Another stop still takes riders, and the stop takes one again once a rider leaves.
    core.run(api(MARCK, DUNKERQUE, "r7"), T0)
    assert core.request("r7").state is RequestState.WAITING
    core.run(RideCancelled(LINE, Actor.RIDER, request_id=RequestId("r0")), T0)
    core.run(api(CALAIS, MARCK, "r8"), T0)
    assert core.request("r8").state is RequestState.WAITING


def test_a_full_stop_shows_why_on_the_terminal(network: Network) -> None:
    core = Core(network)
    fill_calais(core)
    (shown,) = only(core.run(press(CALAIS, MARCK, "p1"), T0), ShowOnTerminal)
    assert shown.screen.state is ScreenState.REFUSED
    assert shown.screen.lines == ("Trop de demandes ici", "Reessayez dans un instant")


def test_a_taken_code_gives_the_next_free_one(network: Network) -> None:
    core = Core(network)
    core.run(api(CALAIS, DUNKERQUE, "r1", code="4821"), T0)
    core.run(api(CALAIS, DUNKERQUE, "r2", code="4821"), T0)
    core.run(api(MARCK, DUNKERQUE, "r3", code="4821"), T0)
    core.run(api(CALAIS, MARCK, "r4", code="4822"), T0)
    assert [core.request(rid).code for rid in ("r1", "r2", "r3", "r4")] == [
        "4821",
        "4822",
        "4823",
        "4824",
    ]


def test_codes_are_unique_over_the_network_not_only_the_line(network: Network) -> None:
    # One SMS number serves every line: a driver's code must name one rider of the network.
    core = Core(network)
    core.run(api(CALAIS, DUNKERQUE, "r1", code="4821"), T0)
    core.run(api(BOULOGNE, WIMEREUX, "r2", code="4821"), T0)
    assert core.request("r1").line_id != core.request("r2").line_id
    assert [core.request(rid).code for rid in ("r1", "r2")] == ["4821", "4822"]
    assert [r.id for r in core.state.requests_holding("4822")] == ["r2"]


def test_codes_wrap_around_after_9999(network: Network) -> None:
    core = Core(network)
    core.run(api(CALAIS, DUNKERQUE, "r1", code="9999"), T0)
    core.run(api(CALAIS, DUNKERQUE, "r2", code="9999"), T0)
    assert core.request("r2").code == "0000"


@pytest.mark.parametrize("candidate", ["", "abcd", "²", "١٢٣٤", "-1", "12345678"])
def test_any_code_candidate_gives_a_four_digit_code(candidate: str, network: Network) -> None:
    core = Core(network)
    core.run(api(CALAIS, DUNKERQUE, "r1", code=candidate), T0)
    assert re.fullmatch(r"\d{4}", core.request("r1").code or "")


def test_codes_stay_unique_among_waiting_requests_and_are_freed(network: Network) -> None:
    core = Core(network)
    for n in range(4):  # the remote share of a stop with a terminal (6 - 2)
        core.run(api(CALAIS, DUNKERQUE, f"a{n}", code="0007"), T0)
        core.run(api(MARCK, GRAVELINES, f"b{n}", code="0007"), T0)
    codes = [request.code for request in core.state.waiting()]
    assert len(codes) == 8
    assert len(set(codes)) == 8
    assert set(codes) == {f"{n:04d}" for n in range(7, 15)}

    core.run(RideCancelled(LINE, Actor.RIDER, request_id=RequestId("a0")), T0)
    core.run(api(GRAVELINES, DUNKERQUE, "c", code="0007"), T0)
    assert core.request("c").code == "0007"
