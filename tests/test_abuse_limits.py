"""The abuse policies with a manual clock: wrong-code budgets, request rates, client addresses."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from dispatcher.events import CodeGuessingReported, Event
from dispatcher.model import LineId
from line_service.abuse.code_guesses import CodeGuesses, GuessLimits, Locked, Ticket, judge
from line_service.abuse.gate import AbuseGate
from line_service.abuse.ledger import Charge, MemoryLedger
from line_service.abuse.request_rates import (
    RequestLimiter,
    RequestRates,
    judge_request,
    limited_keys,
)
from line_service.abuse.windows import free_in, within
from line_service.web.abuse_guard import client_address
from sms_gateway import replies
from sms_gateway.gsm7 import is_gsm7, segments

AT = datetime(2026, 11, 23, 6, 45, tzinfo=UTC)
LINE = LineId("calais-dunkerque")
OTHER = LineId("boulogne-calais")
LIMITS = GuessLimits(identity_budget=3, line_alarm=5, line_budget=8, window=timedelta(hours=1))


def wrong(
    guesses: CodeGuesses, identity: str, at: datetime, lines: tuple[LineId, ...] = (LINE,)
) -> Ticket | Locked:
    """One wrong code: charged and never refunded; the verdict."""
    return guesses.begin(identity, lines, at)


def test_an_identity_past_its_budget_is_locked_until_its_oldest_failure_ages_out() -> None:
    guesses = CodeGuesses(LIMITS)
    for minute in range(3):
        assert isinstance(wrong(guesses, "phone:a", AT + timedelta(minutes=minute)), Ticket)
    locked = wrong(guesses, "phone:a", AT + timedelta(minutes=10))
    assert locked == Locked(timedelta(minutes=50), "identity")
    # Another identity is not concerned, and the first is free again after the window.
    assert isinstance(wrong(guesses, "phone:b", AT + timedelta(minutes=10)), Ticket)
    assert isinstance(wrong(guesses, "phone:a", AT + timedelta(hours=1)), Ticket)


def test_a_right_code_is_refunded_and_never_uses_the_budget() -> None:
    guesses = CodeGuesses(LIMITS)
    for _ in range(10):
        ticket = guesses.begin("phone:driver", (LINE,), AT)
        assert isinstance(ticket, Ticket)
        guesses.refund(ticket)
    assert guesses.wrong_codes(LINE, AT) == 0


def test_many_identities_share_the_line_budget_alarm_then_closure() -> None:
    guesses = CodeGuesses(LIMITS)
    for n in range(5):
        assert isinstance(wrong(guesses, f"phone:{n}", AT), Ticket)
    opened, closed = guesses.alarms(AT)
    assert [(alarm.line_id, alarm.wrong_codes) for alarm in opened] == [(LINE, 5)]
    assert opened[0].sources == tuple(f"phone:{n}" for n in range(5))
    assert closed == []
    # Alarmed: who failed already is refused on the line; a fresh identity is still checked.
    refused = wrong(guesses, "phone:0", AT + timedelta(minutes=1))
    assert isinstance(refused, Locked)
    assert refused.reason == "line"
    honest = guesses.begin("phone:honest", (LINE,), AT + timedelta(minutes=1))
    assert isinstance(honest, Ticket)
    guesses.refund(honest)
    # Three more fresh identities reach the budget: the line checks no code, for anyone.
    for n in range(5, 8):
        assert isinstance(wrong(guesses, f"phone:{n}", AT + timedelta(minutes=2)), Ticket)
    closed_line = guesses.begin("phone:honest", (LINE,), AT + timedelta(minutes=3))
    assert closed_line == Locked(timedelta(minutes=57), "line")
    # A thousand identities change nothing: no more wrong codes are counted on the line.
    for n in range(1000):
        assert isinstance(wrong(guesses, f"phone:x{n}", AT + timedelta(minutes=4)), Locked)
    assert guesses.wrong_codes(LINE, AT + timedelta(minutes=4)) == 8
    # Once the window passed, the alarm closes and codes are checked again.
    later = AT + timedelta(hours=1, minutes=3)
    assert guesses.alarms(later) == ([], [LINE])
    assert isinstance(guesses.begin("phone:honest", (LINE,), later), Ticket)


def test_a_code_by_sms_probes_every_open_line_and_skips_the_closed_ones() -> None:
    guesses = CodeGuesses(LIMITS)
    for n in range(8):
        wrong(guesses, f"addr:10.0.0.{n}", AT, (LINE,))
    ticket = guesses.begin("phone:driver", (LINE, OTHER), AT)
    assert isinstance(ticket, Ticket)
    assert ticket.lines == (OTHER,)
    assert guesses.wrong_codes(OTHER, AT) == 1


def test_concurrent_guesses_are_charged_before_they_are_checked() -> None:
    guesses = CodeGuesses(LIMITS)
    verdicts = [guesses.begin("addr:1.2.3.4", (LINE,), AT) for _ in range(10)]
    assert sum(isinstance(verdict, Ticket) for verdict in verdicts) == 3


def test_the_alarm_may_not_pass_the_budget() -> None:
    with pytest.raises(ValueError, match="budget"):
        GuessLimits(line_alarm=30, line_budget=20)


def test_request_rates_count_identity_and_address_together() -> None:
    limiter = RequestLimiter(
        RequestRates(per_identity=2, per_address=3, window=timedelta(minutes=15))
    )
    assert limiter.admit(AT, "phone:a", "1.2.3.4") is None
    assert limiter.admit(AT, "phone:a", "1.2.3.4") is None
    assert limiter.admit(AT, "phone:a", "1.2.3.4") == timedelta(minutes=15)
    assert limiter.admit(AT, "phone:b", "1.2.3.4") is None  # the identity refusal was not counted
    assert limiter.admit(AT, "phone:c", "1.2.3.4") == timedelta(minutes=15)  # address full
    assert limiter.admit(AT, "phone:c", "5.6.7.8") is None
    assert limiter.admit(AT + timedelta(minutes=15), "phone:a", "1.2.3.4") is None


PROXIES = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1/128"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", None, "203.0.113.9"),
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),  # not a proxy: the header is ignored
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "1.1.1.1, 198.51.100.1, 10.0.0.7", "198.51.100.1"),  # left hops: the client's
        ("10.0.0.2", "garbage", "10.0.0.2"),
        ("10.0.0.2", "10.0.0.3", "10.0.0.3"),
        ("::1", "2001:db8::5", "2001:db8::5"),
        ("10.0.0.2", None, "10.0.0.2"),
        (None, "198.51.100.1", "unknown"),
    ],
)
def test_the_client_address_believes_forwarded_for_only_from_a_trusted_proxy(
    peer: str | None, forwarded: str | None, expected: str
) -> None:
    assert client_address(peer, forwarded, PROXIES) == expected
    assert client_address(peer, forwarded, ()) == (peer or "unknown")


@pytest.mark.parametrize("seconds", [1, 59, 600, 7199, 7200, 86_400])
def test_refusal_texts_are_one_gsm7_segment(seconds: int) -> None:
    texts = (
        replies.codes_locked(seconds),
        replies.requests_limited(seconds),
        replies.code_unknown_or_suspended("123456"),
    )
    for text in texts:
        assert is_gsm7(text), text
        assert segments(text) == 1, text
    assert replies.wait_words(59) == "1 min"
    assert replies.wait_words(7200) == "2 h"
    assert replies.wait_words(86_400) == "24 h"


class Clock:
    """A clock moved by hand."""

    def __init__(self) -> None:
        self.now = AT

    def __call__(self) -> datetime:
        return self.now


async def test_the_gate_tells_the_core_when_an_alarm_opens_and_when_its_sweep_closes_it() -> None:
    clock = Clock()
    told: list[Event] = []
    gate = AbuseGate(LIMITS, RequestRates(), clock, told.append, lambda phone: f"h({phone})")
    for n in range(5):
        ticket = await gate.begin_guess(f"addr:10.0.0.{n}", (LINE,))
        assert isinstance(ticket, Ticket)
        await gate.guess_was_wrong(ticket)
    sources = tuple(f"addr:10.0.0.{n}" for n in range(5))
    assert told == [CodeGuessingReported(LINE, True, 5, sources)]
    await gate.sweep()  # nothing aged out yet: no second report
    assert len(told) == 1
    clock.now += timedelta(hours=1)
    await gate.sweep()
    assert told[-1] == CodeGuessingReported(LINE, False)
    assert (gate.wrong_codes, gate.refused_guesses) == (5, 0)


def test_a_refusal_is_told_once_until_its_wait_is_over() -> None:
    clock = Clock()
    gate = AbuseGate(LIMITS, RequestRates(), clock, lambda _event: None, lambda phone: phone)
    assert gate.phone_identity("+33612345678") == "phone:+33612345678"
    assert gate.first_refusal("phone:a", "code", timedelta(minutes=5))
    assert not gate.first_refusal("phone:a", "code", timedelta(minutes=5))
    assert gate.first_refusal("phone:a", "request", timedelta(minutes=5))  # another kind
    clock.now += timedelta(minutes=5)
    assert gate.first_refusal("phone:a", "code", timedelta(minutes=5))


def seen_at(*minutes: int, tag: str = "") -> tuple[tuple[datetime, str], ...]:
    return tuple((AT + timedelta(minutes=m), tag) for m in minutes)


def test_a_window_counts_events_younger_than_it_and_says_when_one_frees() -> None:
    window = timedelta(hours=1)
    events = seen_at(50, 0, 10)  # any order: a database may give them so
    assert within(events, window, AT + timedelta(minutes=60)) == seen_at(10, 50)
    assert free_in(events, 3, window, AT + timedelta(minutes=55)) == timedelta(minutes=5)
    assert free_in(events, 2, window, AT + timedelta(minutes=60)) == timedelta(minutes=10)
    assert free_in(events, 3, window, AT + timedelta(minutes=60)) == timedelta(0)


def test_judging_a_guess_is_pure_and_charges_the_identity_and_each_open_line() -> None:
    identity, line, other = "phone:a", "code-line:calais-dunkerque", "code-line:boulogne-calais"
    now = AT + timedelta(minutes=30)
    closed_line = {line: seen_at(*range(8), tag="phone:x")}  # LIMITS.line_budget wrong codes
    verdict, charges = judge(LIMITS, identity, (LINE, OTHER), closed_line, now, "c1")
    assert verdict == Ticket(identity, (OTHER,), now, "c1")
    assert charges == (Charge("code:phone:a"), Charge(other, identity))
    # Its own budget spent: refused, nothing charged; the wait ends with its oldest failure.
    spent = {"code:phone:a": seen_at(0, 5, 10)}
    assert judge(LIMITS, identity, (LINE,), spent, now, "c2") == (
        Locked(timedelta(minutes=30), "identity"),
        (),
    )
    # An alarmed line refuses who failed on it, and checks a fresh identity.
    alarmed = {line: (*seen_at(0, 1, 2, 3, tag="phone:x"), *seen_at(4, tag=identity))}
    locked, nothing = judge(LIMITS, identity, (LINE,), alarmed, now, "c3")
    assert (locked, nothing) == (Locked(timedelta(minutes=30), "line"), ())
    fresh, _charges = judge(LIMITS, "phone:b", (LINE,), alarmed, now, "c4")
    assert isinstance(fresh, Ticket)


def test_judging_a_request_charges_every_key_or_none() -> None:
    rates = RequestRates(per_identity=2, per_address=3, window=timedelta(minutes=15))
    keys = limited_keys(rates, "phone:a", "1.2.3.4")
    assert keys == (("request:phone:a", 2), ("request-address:1.2.3.4", 3))
    assert judge_request(rates, keys, {}, AT) == (
        None,
        (Charge("request:phone:a"), Charge("request-address:1.2.3.4")),
    )
    full = {"request-address:1.2.3.4": seen_at(0, 1, 2)}
    assert judge_request(rates, keys, full, AT + timedelta(minutes=5)) == (
        timedelta(minutes=10),
        (),
    )


def test_the_memory_ledger_refunds_a_charge_whole_and_forgets_old_events() -> None:
    ledger = MemoryLedger()
    decide = lambda _seen: ("ok", [Charge("k1"), Charge("k2", "t")])  # noqa: E731
    assert ledger.charge(["k1", "k2"], AT - timedelta(hours=1), AT, "c1", decide) == "ok"
    ledger.charge(["k1"], AT, AT + timedelta(minutes=1), "c2", lambda _s: (None, [Charge("k1")]))
    assert ledger.seen("k1", AT - timedelta(hours=1)) == ((AT, ""), (AT + timedelta(minutes=1), ""))
    ledger.refund("c1")
    assert ledger.seen("k2", AT - timedelta(hours=1)) == ()
    assert ledger.forget_before(AT + timedelta(minutes=2)) == 1
    assert ledger.seen("k1", AT - timedelta(hours=1)) == ()


class BrokenLedger(MemoryLedger):
    """A ledger whose database is gone."""

    def charge(self, *args: object, **kwargs: object) -> Any:
        raise OSError("connection refused")


async def test_a_ledger_that_fails_refuses_codes_and_admits_requests() -> None:
    told: list[Event] = []
    gate = AbuseGate(LIMITS, RequestRates(), Clock(), told.append, str, ledger=BrokenLedger())
    assert await gate.begin_guess("phone:a", (LINE,)) == Locked(timedelta(minutes=1), "unavailable")
    assert await gate.admit_request("phone:a", "1.2.3.4") is None
    assert told == []
