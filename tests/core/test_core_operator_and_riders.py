"""Core rules for operators and riders with phones: sign messages, fallback now, one request per
phone, notifications, guarantee only in service hours, holiday closures."""

from __future__ import annotations

from datetime import date, timedelta

from dispatcher.effects import (
    ArmMessageExpiry,
    DispatchFallback,
    NotifyRider,
    RejectEvent,
    RejectionReason,
    SaveSourceAlias,
    ShowOnSign,
    ShowOnTerminal,
)
from dispatcher.events import (
    Actor,
    CodeValidated,
    DeadlineReached,
    FallbackRequested,
    LeaseRefreshDue,
    OperatorMessageCleared,
    OperatorMessagePosted,
    RideCancelled,
    StorageFailed,
)
from dispatcher.model import Network, RequestId, ServiceHours, SignId
from dispatcher.request_machine import Cause, Channel, RequestState, Source
from dispatcher.service_calendar import is_open
from tests.core.conftest import WEEKDAY_PEAKS, build_network
from tests.core.core_kit import (
    CALAIS,
    DUNKERQUE,
    GRAVELINES,
    LINE,
    MARCK,
    PMV_CALAIS_1,
    PMV_CALAIS_2,
    PMV_GRAVELINES,
    T0,
    Core,
    only,
    pages_by_sign,
    press,
    sms,
)

PHONE = "+33612345678"
ROADWORKS = (("TRAVAUX", "DEVIATION"),)


def post(
    message_id: str, pages: tuple[tuple[str, ...], ...], priority: int, minutes: int
) -> OperatorMessagePosted:
    return OperatorMessagePosted(
        LINE, PMV_CALAIS_1, message_id, pages, priority, T0 + timedelta(minutes=minutes)
    )


def test_an_operator_message_wins_over_riders_until_cleared(network: Network) -> None:
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "r1"), T0)
    effects = core.run(post("m1", ROADWORKS, 100, minutes=10), T0 + timedelta(seconds=1))
    assert pages_by_sign(effects) == {PMV_CALAIS_1: ROADWORKS}  # the other sign keeps the rider
    [expiry] = only(effects, ArmMessageExpiry)
    assert expiry.at == T0 + timedelta(minutes=10)
    [shown] = only(effects, ShowOnSign)
    assert shown.display.expires_at <= T0 + timedelta(minutes=10)

    cleared = core.run(OperatorMessageCleared(LINE, PMV_CALAIS_1, "m1"), T0 + timedelta(minutes=2))
    assert pages_by_sign(cleared)[PMV_CALAIS_1] == (("COVOITURAGE", "DUNKERQUE"),)


def test_an_operator_can_blank_a_sign_and_the_blank_outlives_rider_changes(
    network: Network,
) -> None:
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "r1"), T0)
    blanked = core.run(post("blank", (), 100, minutes=5), T0)
    assert pages_by_sign(blanked) == {PMV_CALAIS_1: ()}
    later = core.run(press(CALAIS, GRAVELINES, "r2", code="1111"), T0 + timedelta(seconds=5))
    assert pages_by_sign(later) == {PMV_CALAIS_2: (("COVOITURAGE", "DUNKERQUE", "GRAVELINES"),)}


def test_highest_priority_then_newest_operator_message_is_shown(network: Network) -> None:
    core = Core(network)
    core.run(post("info", (("INFO",),), 10, minutes=30), T0)
    urgent = core.run(post("urgent", (("ACCIDENT",),), 200, minutes=30), T0 + timedelta(seconds=1))
    assert pages_by_sign(urgent) == {PMV_CALAIS_1: (("ACCIDENT",),)}
    newer_low = core.run(post("info2", (("INFO 2",),), 10, minutes=30), T0 + timedelta(seconds=2))
    assert pages_by_sign(newer_low) == {}  # still the urgent one
    back = core.run(OperatorMessageCleared(LINE, PMV_CALAIS_1, "urgent"), T0 + timedelta(seconds=3))
    assert pages_by_sign(back) == {PMV_CALAIS_1: (("INFO 2",),)}


def test_operator_text_is_fitted_to_the_sign(network: Network) -> None:
    core = Core(network)
    long_rows = (("Déviation par la RD 940 jusqu'à nouvel ordre", "b", "c", "d"),)
    effects = core.run(
        OperatorMessagePosted(LINE, PMV_GRAVELINES, "m", long_rows, 100, T0 + timedelta(hours=1)),
        T0,
    )
    [page] = pages_by_sign(effects)[PMV_GRAVELINES]
    assert page == ("DEVIATION PA", "B")  # 2 rows of 12 columns, upper case, no accents


def test_bad_operator_messages_are_rejected_without_change(network: Network) -> None:
    core = Core(network)
    before = core.state
    unknown = core.run(
        OperatorMessagePosted(
            LINE, SignId("pmv-nowhere"), "m", ROADWORKS, 1, T0 + timedelta(hours=1)
        ),
        T0,
    )
    past = core.run(post("m", ROADWORKS, 1, minutes=-1), T0)
    not_there = core.run(OperatorMessageCleared(LINE, PMV_CALAIS_1, "never-posted"), T0)
    assert [e.reason for e in only(unknown + past + not_there, RejectEvent)] == [
        RejectionReason.UNKNOWN_DEVICE,
        RejectionReason.INVALID_MESSAGE,
        RejectionReason.UNKNOWN_MESSAGE,
    ]
    assert core.state is before


def test_an_expired_operator_message_falls_away_at_the_next_lease_refresh(network: Network) -> None:
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "r1"), T0)
    core.run(post("m1", ROADWORKS, 100, minutes=1), T0)
    refreshed = core.run(LeaseRefreshDue(), T0 + timedelta(minutes=2))
    assert pages_by_sign(refreshed)[PMV_CALAIS_1] == (("COVOITURAGE", "DUNKERQUE"),)


def test_an_operator_sends_the_fallback_now(network: Network) -> None:
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "r1"), T0)
    effects = core.run(FallbackRequested(LINE, RequestId("r1")), T0 + timedelta(minutes=3))
    assert core.request("r1").state is RequestState.FALLBACK
    assert core.request("r1").cause is Cause.OPERATOR_FALLBACK
    assert len(only(effects, DispatchFallback)) == 1
    assert pages_by_sign(effects) == {PMV_CALAIS_1: (), PMV_CALAIS_2: ()}
    again = core.run(FallbackRequested(LINE, RequestId("r1")), T0 + timedelta(minutes=4))
    assert [e.reason for e in only(again, RejectEvent)] == [RejectionReason.NOT_WAITING]
    unknown = core.run(FallbackRequested(LINE, RequestId("nope")), T0)
    assert [e.reason for e in only(unknown, RejectEvent)] == [RejectionReason.UNKNOWN_REQUEST]


def test_a_phone_has_one_waiting_request(network: Network) -> None:
    core = Core(network)
    core.run(sms(CALAIS, DUNKERQUE, "r1", PHONE), T0)
    same_trip = core.run(sms(CALAIS, DUNKERQUE, "r2", PHONE, code="1111"), T0)
    assert RequestId("r2") not in core.state.requests  # the same ride asked again
    # No terminal to tell (the SMS adapter answers from the state); the new sid is remembered.
    assert same_trip == [SaveSourceAlias(Source(Channel.SMS, "SMr2"), RequestId("r1"))]
    other_trip = core.run(sms(MARCK, DUNKERQUE, "r3", PHONE, code="2222"), T0)
    assert core.request("r3").state is RequestState.REFUSED
    assert core.request("r3").cause is Cause.ALREADY_WAITING
    assert pages_by_sign(other_trip) == {}


def test_riders_with_a_phone_are_told_of_every_later_change(fallback_network: Network) -> None:
    core = Core(fallback_network)
    created = core.run(sms(CALAIS, DUNKERQUE, "r1", PHONE), T0)
    assert only(created, NotifyRider) == []  # the webhook's own reply tells the rider
    validated = core.run(CodeValidated(LINE, core.request("r1").code or "", "driver"), T0)
    [told] = only(validated, NotifyRider)
    assert told.request.state is RequestState.PICKED_UP

    core.run(sms(CALAIS, DUNKERQUE, "r2", PHONE, code="5555"), T0)
    fallback = core.run(DeadlineReached(RequestId("r2")), T0 + timedelta(minutes=15))
    assert [n.request.state for n in only(fallback, NotifyRider)] == [RequestState.FALLBACK]

    core.run(sms(CALAIS, DUNKERQUE, "r3", "+33699999999", code="6666"), T0)
    cancelled = core.run(
        RideCancelled(LINE, Actor.OPERATOR, request_id=RequestId("r3")), T0 + timedelta(minutes=1)
    )
    assert [n.request.cause for n in only(cancelled, NotifyRider)] == [Cause.OPERATOR_CANCELLED]

    terminal_rider = core.run(press(CALAIS, GRAVELINES, "r4", code="7777"), T0)
    assert only(terminal_rider, NotifyRider) == []


def test_the_guarantee_sends_a_taxi_only_while_the_line_is_in_service() -> None:
    network = build_network(has_fallback=True, service_hours=WEEKDAY_PEAKS)
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "late"), T0 + timedelta(hours=1, minutes=20))  # 09:20 Paris
    effects = core.run(DeadlineReached(RequestId("late")), T0 + timedelta(hours=1, minutes=35))
    assert core.request("late").state is RequestState.EXPIRED  # 09:35: the peak is over
    assert only(effects, DispatchFallback) == []

    core.run(press(CALAIS, DUNKERQUE, "early"), T0)
    served = core.run(DeadlineReached(RequestId("early")), T0 + timedelta(minutes=15))
    assert core.request("early").state is RequestState.FALLBACK
    assert len(only(served, DispatchFallback)) == 1


def test_a_public_holiday_closes_the_line() -> None:
    christmas = ServiceHours(WEEKDAY_PEAKS.windows, closed_dates=frozenset({date(2025, 3, 4)}))
    network = build_network(service_hours=christmas)
    line = network.lines[0]
    assert not is_open(line, T0)
    assert is_open(line, T0 + timedelta(days=1))
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "r1"), T0)
    assert core.request("r1").cause is Cause.CLOSED


def test_requests_the_database_could_not_store_are_refused_and_go_dark(network: Network) -> None:
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "unstored"), T0)
    core.run(press(MARCK, DUNKERQUE, "served", code="1111"), T0)
    core.run(CodeValidated(LINE, "1111", "driver"), T0 + timedelta(seconds=2))
    effects = core.run(
        StorageFailed((RequestId("unstored"), RequestId("served"), RequestId("ghost"))),
        T0 + timedelta(seconds=5),
    )
    refused = core.request("unstored")
    assert (refused.state, refused.cause) == (RequestState.REFUSED, Cause.STORAGE_FAILED)
    assert core.request("served").state is RequestState.PICKED_UP  # already over: untouched
    assert pages_by_sign(effects) == {PMV_CALAIS_1: (), PMV_CALAIS_2: ()}
    [screen] = [e.screen for e in effects if isinstance(e, ShowOnTerminal)]
    assert screen.lines[0] == "Service momentanement indisponible"
    assert RequestId("unstored") not in core.armed
