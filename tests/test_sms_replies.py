"""French replies: segment counting (GSM-7 vs UCS-2) and every template fits one SMS segment."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from dispatcher.model import Network, StopId
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest, Source
from line_service.network.lines_file import load_network
from sms_gateway import replies
from sms_gateway.gsm7 import is_gsm7, to_gsm7
from sms_gateway.replies import segments
from tests.support.requests import ride_request

REPO = Path(__file__).resolve().parents[1]
NETWORK: Network = load_network(REPO / "config" / "lines.yaml")
LINE = NETWORK.lines[0]
AT = datetime(2026, 11, 23, 6, 45, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("é" * 160, 1),  # é, è, à, ù are in GSM-7
        ("€" * 80, 1),  # extension table: two septets each
        ("€" * 81, 2),
        ("ê" + "a" * 69, 1),  # ê is not: UCS-2, 70 per segment
        ("ç" + "a" * 70, 2),
        ("🚗" * 35, 1),  # an emoji is two UTF-16 units
        ("🚗" * 36, 2),
        ("a" * 133 + "ô", 2),
        ("a" * 134 + "ô", 3),
    ],
)
def test_segments_count_gsm7_and_ucs2(text: str, expected: int) -> None:
    assert segments(text) == expected


def test_names_are_folded_to_gsm7() -> None:
    assert to_gsm7("Saint-Pôl-sur-Mêr ⇄ Ça") == "Saint-Pol-sur-Mer ? Ça"  # Ç (upper case) is GSM-7


def longest_stop_pairs() -> list[tuple[StopId, StopId]]:
    """Every (stop, destination) pair, the longest names first."""
    pairs = [
        (stop.id, destination.id)
        for stop in LINE.all_stops()
        for destination in LINE.destinations_from(stop.id)
    ]
    names = {stop.id: stop.name for stop in LINE.all_stops()}
    return sorted(pairs, key=lambda p: -(len(names[p[0]]) + len(names[p[1]])))


def request(stop: StopId, destination: StopId, state: RequestState, cause: Cause) -> RideRequest:
    return ride_request(
        "f" * 32,
        AT,
        line=LINE.id,
        stop=stop,
        destination=destination,
        state=state,
        cause=cause,
        phone="+33612345678",
        source=Source(Channel.SMS, "SM" + "0" * 32),
        code="9999",
        wait=timedelta(minutes=30),
    )


def every_reply() -> list[str]:
    texts = [
        replies.HELP,
        replies.NOT_UNDERSTOOD,
        replies.CANCELLED,
        replies.DEPARTED,
        replies.NOTHING_WAITING,
        replies.CODE_VALIDATED,
        replies.OWN_CODE,
        replies.RATE_LIMITED,
        replies.BAD_NUMBER,
        replies.UNAVAILABLE,
        replies.STOP_FULL,
        replies.NO_FREE_CODE,
        replies.unknown_stop("ABCDEFGHIJ"),
        replies.code_unknown("99999999"),
        replies.TERMS,
        replies.NAME_KEPT,
        replies.ADULT_KEPT,
        replies.ATTESTATION_HOW,
        replies.TRIP_LINKED,
        replies.TRIP_LINK_HOW,
        replies.no_trip_to_link(24),
    ]
    for each in LINE.all_stops():
        texts.append(replies.need_destination(NETWORK, LINE.id, each.id))
        texts.append(replies.no_ride_from(NETWORK, LINE.id, each.id))
    stop, destination = longest_stop_pairs()[0]
    outcomes = [
        (RequestState.WAITING, Cause.REQUESTED),
        (RequestState.PICKED_UP, Cause.CODE_VALIDATED),
        (RequestState.FALLBACK, Cause.GUARANTEE_REACHED),
        (RequestState.EXPIRED, Cause.DEADLINE_REACHED),
        (RequestState.CANCELLED, Cause.OPERATOR_CANCELLED),
        *((RequestState.REFUSED, cause) for cause in Cause),
    ]
    for state, cause in outcomes:
        done = request(stop, destination, state, cause)
        texts.append(replies.ride_outcome(NETWORK, done))
        texts.append(replies.notification(NETWORK, done) or "")
    texts.append(replies.already_waiting(NETWORK, request(stop, destination, *outcomes[0])))
    waiting = request(stop, destination, *outcomes[0])
    texts.append(replies.ride_outcome(NETWORK, waiting, wait_minutes=15))
    texts.append(replies.ride_outcome(NETWORK, waiting, wait_minutes=15, driver_minutes=12))
    return [text for text in texts if text]


@pytest.mark.parametrize("text", every_reply())
def test_every_reply_fits_one_gsm7_segment_with_the_longest_names(text: str) -> None:
    assert is_gsm7(text), text
    assert segments(text) == 1, (len(text), text)


def test_a_closed_line_says_its_hours() -> None:
    stop, destination = longest_stop_pairs()[0]
    text = replies.ride_outcome(
        NETWORK, request(stop, destination, RequestState.REFUSED, Cause.CLOSED)
    )
    assert "lun-ven 06:30-09:30 16:00-19:30" in text


def test_the_destination_list_is_cut_to_fit_one_segment_on_a_long_line() -> None:
    direction = LINE.directions[0]
    long_stops = tuple(
        replace(stop, id=StopId(f"s{i}"), code=f"S{i:02d}", name=f"Saint-Martin-Bellevue {i}")
        for i, stop in enumerate(direction.stops * 3)
    )
    long_line = replace(LINE, directions=(replace(direction, stops=long_stops),))
    network = Network((long_line,))
    text = replies.need_destination(network, long_line.id, long_stops[0].id)
    assert segments(text) == 1, text
    assert "etc" in text
    assert "Saint-Martin-Bellevue 1" in text


def test_a_waiting_rider_is_told_the_expected_wait() -> None:
    stop, destination = longest_stop_pairs()[0]
    waiting = request(stop, destination, RequestState.WAITING, Cause.REQUESTED)
    assert "Attente estimée: 4 min." in replies.ride_outcome(NETWORK, waiting, wait_minutes=4)
    assert "Attente" not in replies.ride_outcome(NETWORK, waiting)
