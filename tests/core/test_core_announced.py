"""The core: "J'arrive" — a rider on the way lights signs with the time, then waits or lapses."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from dispatcher.effects import (
    ArmDeadline,
    DisarmDeadline,
    Effect,
    NotifyRider,
    RejectEvent,
    RejectionReason,
    SaveRequest,
    ShowOnSign,
    ShowOnTerminal,
)
from dispatcher.events import CodeValidated, DeadlineReached, LeaseRefreshDue, RiderArrived
from dispatcher.model import Network, RequestId, SignGeometry, StopId
from dispatcher.request_machine import Cause, RequestState
from dispatcher.sign_pages import announced_pages
from tests.core.core_kit import (
    CALAIS,
    DUNKERQUE,
    GRAVELINES,
    HEADING,
    LINE,
    MARCK,
    PMV_CALAIS_1,
    PMV_CALAIS_2,
    PMV_GRAVELINES,
    T0,
    T_CALAIS,
    Core,
    only,
    pages_by_sign,
    press,
    sms,
)

RIDER = "+33612345678"
GRACE = timedelta(minutes=10)
MAX_WAIT = timedelta(minutes=30)
R1 = RequestId("r1")


def coming(
    core: Core, minutes: int = 10, stop: StopId = CALAIS, destination: StopId = DUNKERQUE
) -> list[Effect]:
    """Rider r1 texts at T0 that they will be at `stop` in `minutes`."""
    arriving_at = T0 + timedelta(minutes=minutes)
    return core.run(replace(sms(stop, destination, "r1", RIDER), arriving_at=arriving_at), T0)


def test_an_announcement_lights_the_signs_with_the_time_and_no_screen(network: Network) -> None:
    core = Core(network)
    effects = coming(core, minutes=10)
    announced = core.request("r1")
    assert (announced.state, announced.cause) == (RequestState.ANNOUNCED, Cause.RIDER_ANNOUNCED)
    assert announced.code == "4821"  # held already: given by SMS, valid once on board
    assert announced.deadline_at == T0 + timedelta(minutes=10) + GRACE
    assert ArmDeadline(R1, announced.deadline_at) in effects
    page = (HEADING, "DUNKERQUE", "DANS 10 MIN")  # 3 units, 5 words
    assert pages_by_sign(effects) == {PMV_CALAIS_1: (page,), PMV_CALAIS_2: (page,)}
    assert only(effects, ShowOnTerminal) == []  # the terminal is left alone until a press
    assert core.state.waiting_at(CALAIS) == ()
    # The minutes count down at each lease refresh.
    later = core.run(LeaseRefreshDue(), T0 + timedelta(minutes=4, seconds=30))
    assert pages_by_sign(later)[PMV_CALAIS_1] == ((HEADING, "DUNKERQUE", "DANS 6 MIN"),)


def test_a_press_for_that_destination_there_is_the_rider_arriving(network: Network) -> None:
    core = Core(network)
    coming(core)
    at = T0 + timedelta(minutes=8)
    effects = core.run(press(CALAIS, DUNKERQUE, "r2", code="9999"), at)
    waiting = core.request("r1")
    assert (waiting.state, waiting.cause) == (RequestState.WAITING, Cause.RIDER_ARRIVED)
    assert waiting.created_at == at  # the wait counts from the stop
    assert waiting.deadline_at == at + MAX_WAIT
    assert RequestId("r2") not in core.state.requests  # no second request
    assert SaveRequest(waiting, previous_state=RequestState.ANNOUNCED) in effects
    assert ArmDeadline(R1, at + MAX_WAIT) in effects
    assert pages_by_sign(effects)[PMV_CALAIS_1] == ((HEADING, "DUNKERQUE"),)
    [screen] = only(effects, ShowOnTerminal)
    assert screen.terminal_id == T_CALAIS
    assert screen.screen.code == "4821"
    assert screen.screen.device_request_id == "r2"  # it answers the press


def test_the_same_phone_asking_again_or_ici_is_arriving(network: Network) -> None:
    core = Core(network)
    coming(core)
    core.run(sms(CALAIS, DUNKERQUE, "r2", RIDER, sid="SM-again"), T0 + timedelta(minutes=3))
    assert core.request("r1").state is RequestState.WAITING
    other = Core(network)
    coming(other)
    effects = other.run(RiderArrived(LINE, R1), T0 + timedelta(minutes=3))
    assert other.request("r1").state is RequestState.WAITING
    assert only(effects, SaveRequest)[0].previous_state is RequestState.ANNOUNCED
    # ICI once waiting changes nothing.
    again = other.run(RiderArrived(LINE, R1), T0 + timedelta(minutes=4))
    assert [e.reason for e in only(again, RejectEvent)] == [RejectionReason.NOT_WAITING]


def test_a_lapsed_announcement_dims_its_signs_at_its_time(network: Network) -> None:
    core = Core(network)
    effects = coming(core, minutes=10)
    lapse_at = T0 + timedelta(minutes=10) + GRACE
    # Every display it lights expires by then: a dead dispatcher leaves no phantom either.
    assert all(e.display.expires_at <= lapse_at for e in only(effects, ShowOnSign))
    effects = core.run(DeadlineReached(R1), lapse_at)
    lapsed = core.request("r1")
    assert (lapsed.state, lapsed.cause) == (RequestState.EXPIRED, Cause.ANNOUNCEMENT_LAPSED)
    assert pages_by_sign(effects) == {PMV_CALAIS_1: (), PMV_CALAIS_2: ()}
    assert DisarmDeadline(R1) in effects
    assert NotifyRider(lapsed) in effects
    assert core.state.request_by_code(LINE, "4821") is None  # its code is free again


def test_a_driver_may_take_an_announced_rider_met_on_the_way(network: Network) -> None:
    core = Core(network)
    coming(core)
    core.run(CodeValidated(LINE, "4821", "driver-1"), T0 + timedelta(minutes=2))
    assert core.request("r1").state is RequestState.PICKED_UP


def test_waiting_riders_come_first_and_a_destination_is_not_said_twice(network: Network) -> None:
    core = Core(network)
    core.run(press(CALAIS, MARCK, "w1", code="1000"), T0)
    coming(core, minutes=30)
    pages = pages_by_sign(core.run(LeaseRefreshDue(), T0))[PMV_CALAIS_1]
    assert pages == ((HEADING, "MARCK"), (HEADING, "DUNKERQUE", "DANS 30 MIN"))
    core.run(press(CALAIS, DUNKERQUE, "w2", code="2000"), T0 + timedelta(seconds=1))
    # The press was the announced rider arriving: Dunkerque is a waiting destination now.
    assert core.request("r1").state is RequestState.WAITING


def test_small_signs_keep_the_time() -> None:
    two_rows = announced_pages([("Dunkerque", 10)], SignGeometry(rows=2, columns=12), 3)
    assert two_rows == (("DUNKERQUE", "DANS 10 MIN"),)
    one_row = announced_pages([("Grande-Synthe Centre", 5)], SignGeometry(rows=1, columns=16), 3)
    assert one_row == (("GRANDE-SYN 5 MIN",),)
    assert announced_pages([("Dunkerque", 1)], SignGeometry(), 3, already=["Dunkerque"]) == ()


def test_a_small_sign_at_a_stop_shows_the_announcement(network: Network) -> None:
    core = Core(network)
    effects = coming(core, minutes=1, stop=GRAVELINES, destination=DUNKERQUE)
    assert pages_by_sign(effects)[PMV_GRAVELINES] == (("DUNKERQUE", "DANS 1 MIN"),)
