"""The abuse limits' ledger in the database, on SQLite and PostgreSQL: what a restart or another
process of a cluster finds, and charges made at once from two engines that never both get the
last try."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from dispatcher.events import CodeGuessingReported, Event
from dispatcher.model import LineId
from line_service.abuse.code_guesses import CodeGuesses, GuessLimits, Locked, Ticket
from line_service.abuse.gate import AbuseGate
from line_service.abuse.ledger import Charge
from line_service.abuse.request_rates import RequestLimiter, RequestRates
from line_service.abuse.windows import Seen
from line_service.storage.abuse_ledger import KEY_LENGTH, DatabaseLedger
from line_service.storage.store import Store

AT = datetime(2026, 11, 23, 6, 45, tzinfo=UTC)
LINE = LineId("calais-dunkerque")
LIMITS = GuessLimits(identity_budget=5, line_alarm=10, line_budget=20)
SENDERS = 2  # engines, as two processes of a cluster would have
TRIES = 12  # per engine, all at once


@pytest.fixture
def stores(database_url: str) -> Iterator[list[Store]]:
    """Two stores (two engines, two connection pools) on one database with the schema made."""
    opened = [Store(database_url) for _ in range(SENDERS)]
    opened[0].create_schema()
    yield opened
    for store in opened:
        store.dispose()


def test_charges_are_read_back_in_their_window_refunded_whole_and_forgotten(
    stores: list[Store],
) -> None:
    first, second = (DatabaseLedger(store.engine) for store in stores)
    two = lambda _seen: ("counted", [Charge("k1"), Charge("k2", "phone:a")])  # noqa: E731
    assert first.charge(["k1", "k2"], AT - timedelta(days=1), AT, "c1", two) == "counted"
    later = AT + timedelta(minutes=1)
    first.charge(["k1"], AT, later, "c2", lambda _seen: (None, [Charge("k1")]))
    # Another engine (another process) reads the same counts, in order, aware UTC.
    assert second.seen("k1", AT - timedelta(days=1)) == ((AT, ""), (later, ""))
    assert second.seen("k1", AT) == ((later, ""),)  # the window's bound is exclusive
    seen_inside: list[object] = []
    second.charge(["k2", "k3"], AT - timedelta(days=1), later, "c3", _record(seen_inside))
    assert seen_inside == [{"k2": ((AT, "phone:a"),), "k3": ()}]
    second.refund("c1")
    assert first.seen("k2", AT - timedelta(days=1)) == ()
    assert first.seen("k1", AT - timedelta(days=1)) == ((later, ""),)
    assert first.forget_before(later + timedelta(seconds=1)) == 1
    assert second.seen("k1", AT - timedelta(days=1)) == ()


def _record(into: list[object]) -> Callable[[Mapping[str, Seen]], tuple[None, list[Charge]]]:
    def decide(seen: Mapping[str, Seen]) -> tuple[None, list[Charge]]:
        into.append(dict(seen))
        return None, []

    return decide


def test_a_key_longer_than_the_column_is_stored_as_its_digest(stores: list[Store]) -> None:
    ledger = DatabaseLedger(stores[0].engine)
    long = "addr:" + "x" * (KEY_LENGTH + 50)
    ledger.charge([long], AT - timedelta(days=1), AT, "c1", lambda _s: (None, [Charge(long, long)]))
    assert ledger.seen(long, AT - timedelta(days=1))[0][0] == AT
    assert ledger.seen("addr:" + "x" * KEY_LENGTH, AT - timedelta(days=1)) == ()


def test_two_engines_guessing_at_once_get_one_budget_of_five_between_them(
    stores: list[Store],
) -> None:
    guesses = [CodeGuesses(LIMITS, DatabaseLedger(store.engine)) for store in stores]
    start = threading.Barrier(SENDERS * TRIES)

    def guess(n: int) -> Ticket | Locked:
        start.wait()
        return guesses[n % SENDERS].begin("phone:guesser", (LINE,), AT)

    with ThreadPoolExecutor(SENDERS * TRIES) as pool:
        verdicts = list(pool.map(guess, range(SENDERS * TRIES)))
    tickets = [verdict for verdict in verdicts if isinstance(verdict, Ticket)]
    assert len(tickets) == LIMITS.identity_budget
    assert guesses[0].wrong_codes(LINE, AT) == guesses[1].wrong_codes(LINE, AT) == 5
    # A right code's refund is seen by the other engine: one try back, and only one.
    guesses[1].refund(tickets[0])
    assert isinstance(guesses[0].begin("phone:guesser", (LINE,), AT), Ticket)
    assert isinstance(guesses[1].begin("phone:guesser", (LINE,), AT), Locked)


def test_two_engines_admitting_requests_at_once_admit_the_rate_once(stores: list[Store]) -> None:
    rates = RequestRates(per_identity=4, per_address=20)
    limiters = [RequestLimiter(rates, DatabaseLedger(store.engine)) for store in stores]
    start = threading.Barrier(SENDERS * TRIES)

    def ask(n: int) -> timedelta | None:
        start.wait()
        return limiters[n % SENDERS].admit(AT, "phone:rider", "192.0.2.1")

    with ThreadPoolExecutor(SENDERS * TRIES) as pool:
        waits = list(pool.map(ask, range(SENDERS * TRIES)))
    assert waits.count(None) == rates.per_identity


class Clock:
    def __init__(self) -> None:
        self.now = AT

    def __call__(self) -> datetime:
        return self.now


async def test_two_gates_on_one_database_share_the_budgets_and_see_the_line_alarm(
    stores: list[Store],
) -> None:
    clock = Clock()
    told: list[list[Event]] = [[], []]
    gates = [
        AbuseGate(
            LIMITS, RequestRates(), clock, told[n].append, str, ledger=DatabaseLedger(s.engine)
        )
        for n, s in enumerate(stores)
    ]
    for n in range(5):  # three wrong codes through one process, two through the other
        ticket = await gates[n % 2].begin_guess("phone:guesser", (LINE,))
        assert isinstance(ticket, Ticket)
        await gates[n % 2].guess_was_wrong(ticket)
    for gate in gates:
        assert await gate.begin_guess("phone:guesser", (LINE,)) == Locked(
            timedelta(hours=24), "identity"
        )
    # Five more identities through the first gate: the line's alarm; the second gate raises
    # it too as soon as it counts a wrong code on the line itself.
    for n in range(5):
        ticket = await gates[0].begin_guess(f"phone:{n}", (LINE,))
        assert isinstance(ticket, Ticket)
        await gates[0].guess_was_wrong(ticket)
    assert next(event for event in told[0] if isinstance(event, CodeGuessingReported)).alarmed
    ticket = await gates[1].begin_guess("phone:fresh", (LINE,))
    assert isinstance(ticket, Ticket)
    await gates[1].guess_was_wrong(ticket)
    [alarm] = told[1]
    assert isinstance(alarm, CodeGuessingReported)
    assert (alarm.alarmed, alarm.wrong_codes) == (True, 11)
