"""RPC outbox: the service attests every trip itself — once, durably, by the registry's rules.

The registry is the local stand-in (`tests/support/rpc_standin.py`) and the real client; time
is a clock the test moves, jitter a fixed draw: no sleep anywhere.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlmodel import Session

from dispatcher.model import LineId, Network
from dispatcher.request_machine import Cause, RequestState
from line_service.authority.rpc_client import AccessTokens, RpcClient
from line_service.authority.rpc_export import journey_of
from line_service.authority.rpc_outbox import Backoff, RpcOutbox, RpcSender
from line_service.authority.trips import TripBook, draft_trip
from line_service.network.lines_file import load_network
from line_service.storage.party_store import PartyStore
from line_service.storage.store import Store, TripRecord
from tests.support.requests import ride_request
from tests.support.rpc_standin import ACCESS_KEY, SECRET_KEY, Registry
from tests.test_rpc_export import SHIPPED

T0 = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)  # a Monday, 07:30 in Paris
DRIVER = "+33699887766"


@dataclass
class Clock:
    """The test's time: moved by hand."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now

    def advance(self, by: timedelta) -> None:
        self.now += by


@pytest.fixture(scope="module")
def network() -> Network:
    return load_network(SHIPPED)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + timedelta(hours=1))


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def sender(
    store: Store, network: Network, registry: Registry, clock: Clock, http: httpx.AsyncClient
) -> RpcSender:
    """A fresh sender on the database, as a restarted service builds it."""
    tokens = AccessTokens(ACCESS_KEY, SECRET_KEY, clock)
    client = RpcClient(registry.url, tokens, http, max_attempts=1)
    return RpcSender(RpcOutbox(store, network, clock), client, draw=lambda: 0.0)


def record_trip(
    store: Store, network: Network, n: int, at: datetime = T0, **changes: object
) -> TripRecord:
    """A validated ride of the line (rider by SMS, driver's number known) stored as a trip."""
    line = network.line(LineId("calais-dunkerque"))
    assert line is not None
    request = ride_request(
        f"r{n}",
        at,
        state=RequestState.PICKED_UP,
        cause=Cause.CODE_VALIDATED,
        phone=f"+336123456{n:02d}",
        created_at=at - timedelta(minutes=3),
        driver_ref=DRIVER,
    )
    draft = draft_trip(line, request, None)
    assert draft is not None
    return TripBook(store).record(replace(draft, **changes))  # type: ignore[arg-type]


def posts(registry: Registry) -> int:
    return registry.calls.count(("POST", "/v3.4/journeys"))


async def test_every_trip_is_sent_once_across_a_restart(
    store: Store, network: Network, registry: Registry, clock: Clock, http: httpx.AsyncClient
) -> None:
    first = record_trip(store, network, 1)
    second = record_trip(store, network, 2, T0 + timedelta(hours=2))
    await sender(store, network, registry, clock, http).tick()
    assert set(registry.journeys) == {first.id}  # the second is not due before it arrived
    clock.advance(timedelta(hours=2))
    restarted = sender(store, network, registry, clock, http)  # the service was restarted
    await restarted.tick()
    third = record_trip(store, network, 3, T0 + timedelta(hours=2, minutes=30))
    clock.advance(timedelta(hours=1))
    await restarted.tick()
    await sender(store, network, registry, clock, http).tick()
    assert set(registry.journeys) == {first.id, second.id, third.id}
    assert posts(registry) == 3  # each sent once, none again after the restarts
    outbox = RpcOutbox(store, network, clock)
    assert {outbox.status_of(trip.id) for trip in (first, second, third)} == {"pending"}


async def test_a_failing_registry_is_retried_with_growing_waits_then_sent(
    store: Store, network: Network, registry: Registry, clock: Clock, http: httpx.AsyncClient
) -> None:
    trip = record_trip(store, network, 1)
    rpc = sender(store, network, registry, clock, http)
    registry.failures = 2
    await rpc.tick()  # 503
    outbox = rpc.outbox
    row = outbox.get(trip.id)
    assert row is not None
    assert row.next_at is not None
    assert (row.attempts, row.status, row.reason) == (1, "queued", "transport: HTTPError")
    assert row.next_at.astimezone(UTC) - clock.now == Backoff().first / 2
    clock.advance(Backoff().first / 4)
    hits = registry.hits
    await rpc.tick()
    assert registry.hits == hits  # not due yet: nothing asked
    clock.advance(Backoff().first / 4)
    await rpc.tick()  # 503 again: the wait doubles
    row = outbox.get(trip.id)
    assert row is not None
    assert row.next_at is not None
    assert row.next_at.astimezone(UTC) - clock.now == Backoff().first
    clock.advance(Backoff().first)
    await rpc.tick()
    assert list(registry.journeys) == [trip.id]
    assert outbox.status_of(trip.id) == "pending"


def test_the_backoff_has_jitter_and_a_ceiling() -> None:
    backoff = Backoff(timedelta(seconds=30), timedelta(minutes=30))
    assert backoff.delay(1, 0.0) == timedelta(seconds=15)
    assert backoff.delay(1, 0.999) < timedelta(seconds=30)
    assert backoff.delay(3, 0.0) == timedelta(seconds=60)
    assert backoff.delay(20, 0.0) == timedelta(minutes=15)


async def test_a_journey_the_registry_already_has_is_stored_as_sent(
    store: Store, network: Network, registry: Registry, clock: Clock, http: httpx.AsyncClient
) -> None:
    """As after a crash between the registry's 201 and our commit: the retry gets a 409."""
    trip = record_trip(store, network, 1)
    registry.journeys[trip.id] = journey_of(trip, network)
    registry.set_status(trip.id, "pending")
    rpc = sender(store, network, registry, clock, http)
    await rpc.tick()
    row = rpc.outbox.get(trip.id)
    assert row is not None
    assert (row.status, row.reason) == ("pending", "already registered (409)")
    assert row.sent_at is not None
    clock.advance(timedelta(minutes=30))
    await rpc.tick()
    assert posts(registry) == 1


async def test_a_terms_violation_is_stored_with_its_details(
    store: Store, network: Network, registry: Registry, clock: Clock, http: httpx.AsyncClient
) -> None:
    trip = record_trip(store, network, 1)
    mine = journey_of(trip, network)
    for n in range(4):  # the same driver's car runs that day, sent by other operators
        registry.journeys[f"other{n}"] = {**mine, "operator_trip_id": f"elsewhere{n}"}
    rpc = sender(store, network, registry, clock, http)
    await rpc.tick()
    row = rpc.outbox.get(trip.id)
    assert row is not None
    assert row.status == "terms_violation_error"
    assert row.reason == "too_many_trips_by_day (driver 5, passenger 5, limit 4)"
    details = json.loads(row.details)
    assert details["terms_violation_error_details"] == [
        {"label": "too_many_trips_by_day", "metas": {"driver": 5, "passenger": 5, "limit": 4}}
    ]
    assert row.next_at is None  # final: never sent again
    clock.advance(timedelta(hours=1))
    await rpc.tick()
    assert posts(registry) == 1


async def test_a_validation_error_is_fixed_by_patch_once_the_data_is_corrected(
    store: Store, network: Network, registry: Registry, clock: Clock, http: httpx.AsyncClient
) -> None:
    trip = record_trip(store, network, 1)
    rpc = sender(store, network, registry, clock, http)
    await rpc.tick()
    registry.set_status(trip.id, "validation_error")
    clock.advance(timedelta(hours=1))
    await rpc.tick()  # the first look finds the error
    assert rpc.outbox.status_of(trip.id) == "validation_error"
    await rpc.tick()  # nothing changed in the trip: nothing to send
    assert registry.patched == {}
    with Session(store.engine) as session:  # an operator corrects the distance
        stored = session.get(TripRecord, trip.id)
        assert stored is not None
        stored.distance_m = 34000
        session.add(stored)
        session.commit()
    clock.advance(timedelta(minutes=10))
    await rpc.tick()
    assert registry.patched[trip.id]["distance"] == 34000
    assert set(registry.patched[trip.id]) == {
        "operator_trip_id",
        "operator_class",
        "incentives",
        "start",
        "end",
        "distance",
    }
    assert rpc.outbox.status_of(trip.id) == "pending"


async def test_a_journey_marked_as_fraud_is_cancelled_at_the_registry(
    store: Store, network: Network, registry: Registry, clock: Clock, http: httpx.AsyncClient
) -> None:
    sent = record_trip(store, network, 1)
    unsent = record_trip(store, network, 2, T0 + timedelta(hours=3))
    rpc = sender(store, network, registry, clock, http)
    await rpc.tick()
    assert rpc.outbox.cancel_journey(sent.id, "même voiture, deux codes")
    assert rpc.outbox.cancel_journey(unsent.id, "faux trajet")
    assert not rpc.outbox.cancel_journey("f" * 32, "inconnu")
    await rpc.tick()
    assert registry.cancelled == {sent.id: {"code": "fraud", "message": "même voiture, deux codes"}}
    assert rpc.outbox.status_of(sent.id) == "canceled"
    assert rpc.outbox.status_of(unsent.id) == "canceled"
    clock.advance(timedelta(hours=4))
    await rpc.tick()
    assert unsent.id not in registry.journeys  # cancelled before it was due: never sent


async def test_the_status_read_48_hours_after_the_trip_is_stored_as_final(
    store: Store, network: Network, registry: Registry, clock: Clock, http: httpx.AsyncClient
) -> None:
    trip = record_trip(store, network, 1)
    rpc = sender(store, network, registry, clock, http)
    await rpc.tick()
    clock.advance(timedelta(hours=1))
    await rpc.tick()  # the first look: still pending
    registry.set_status(trip.id, "fraud_error")
    clock.now = T0 + timedelta(hours=47)
    await rpc.tick()
    assert rpc.outbox.status_of(trip.id) == "pending"  # not asked again before 48 h
    clock.now = T0 + timedelta(hours=48)
    await rpc.tick()
    row = rpc.outbox.get(trip.id)
    assert row is not None
    assert (row.status, row.final, row.next_at) == ("fraud_error", True, None)
    assert json.loads(row.details) == {
        "fraud_error_labels": [{"label": "interoperator_overlap_trip"}]
    }
    gets = registry.calls.count(("GET", f"/v3.4/journeys/{trip.id}"))
    clock.advance(timedelta(days=3))
    await rpc.tick()
    assert registry.calls.count(("GET", f"/v3.4/journeys/{trip.id}")) == gets


async def test_journeys_breaking_the_rules_are_not_sent_and_say_why(
    store: Store, network: Network, registry: Registry, clock: Clock, http: httpx.AsyncClient
) -> None:
    short = record_trip(store, network, 1, distance_m=900)
    late = record_trip(store, network, 2, T0 - timedelta(hours=30))
    same = record_trip(store, network, 3, T0 + timedelta(minutes=5))
    with Session(store.engine) as session:  # the driver is the rider: class C impossible
        stored = session.get(TripRecord, same.id)
        assert stored is not None
        stored.passenger_identity_key = stored.driver_identity_key
        session.add(stored)
        session.commit()
    rpc = sender(store, network, registry, clock, http)
    await rpc.tick()
    outbox = rpc.outbox
    assert outbox.status_of(short.id) == "not_sent"
    row = outbox.get(short.id)
    assert row is not None
    assert row.reason == "flagged by the anti-abuse rules: short_trip"
    late_row = outbox.get(late.id)
    assert late_row is not None
    assert late_row.status == "expired"
    assert late_row.reason.startswith("expired: more than 24 h after the start")
    same_row = outbox.get(same.id)
    assert same_row is not None
    assert same_row.status == "not_sent"
    assert same_row.reason.startswith("operator_class C: driver and passenger must be two")
    assert registry.journeys == {}


async def test_journeys_held_without_a_registry_go_once_one_is_configured(
    store: Store, network: Network, registry: Registry, clock: Clock, http: httpx.AsyncClient
) -> None:
    trip = record_trip(store, network, 1)
    unconfigured = RpcSender(RpcOutbox(store, network, clock), None)
    await unconfigured.tick()
    row = unconfigured.outbox.get(trip.id)
    assert row is not None
    assert (row.status, row.reason) == ("queued", "registry not configured (CARPOOL_RPC_URL)")
    clock.advance(timedelta(hours=1))
    configured = sender(store, network, registry, clock, http)
    assert configured.outbox.resume_parked() == 1
    await configured.tick()
    assert list(registry.journeys) == [trip.id]


async def test_an_occupant_who_said_majeur_is_sent_as_over_18(
    store: Store, network: Network, registry: Registry, clock: Clock, http: httpx.AsyncClient
) -> None:
    PartyStore(store.engine).give("sms:rider", "+33612345601", T0, over_18=True)
    PartyStore(store.engine).give("sms:driver", DRIVER, T0, over_18=False)
    trip = record_trip(store, network, 1)
    await sender(store, network, registry, clock, http).tick()
    sent = registry.journeys[trip.id]
    assert sent["passenger"]["identity"]["over_18"] is True
    assert sent["driver"]["identity"]["over_18"] is False


async def test_a_journey_refused_as_invalid_is_posted_again_once_its_trip_is_corrected(
    store: Store, network: Network, registry: Registry, clock: Clock, http: httpx.AsyncClient
) -> None:
    trip = record_trip(store, network, 1)
    rpc = sender(store, network, registry, clock, http)
    registry.bad_requests = 1
    await rpc.tick()
    row = rpc.outbox.get(trip.id)
    assert row is not None
    assert row.status == "validation_error"
    assert "refused by the registry's own validator" in row.reason
    clock.advance(timedelta(minutes=10))
    await rpc.tick()  # unchanged: not posted again
    assert posts(registry) == 1
    with Session(store.engine) as session:
        stored = session.get(TripRecord, trip.id)
        assert stored is not None
        stored.distance_m = 34000
        session.add(stored)
        session.commit()
    clock.advance(timedelta(minutes=10))
    await rpc.tick()
    assert registry.journeys[trip.id]["distance"] == 34000
    assert rpc.outbox.status_of(trip.id) == "pending"


async def test_one_journey_that_cannot_be_read_never_holds_the_others_back(
    store: Store, network: Network, registry: Registry, clock: Clock, http: httpx.AsyncClient
) -> None:
    broken = record_trip(store, network, 1)
    fine = record_trip(store, network, 2, T0 + timedelta(minutes=1))
    rpc = sender(store, network, registry, clock, http)
    rpc.outbox.queue_new()
    row = rpc.outbox.get(broken.id)
    assert row is not None
    row.status, row.sent_at, row.payload = "validation_error", T0, "{not json"
    row.next_at = clock.now
    rpc.outbox.save(row)
    await rpc.tick()
    assert list(registry.journeys) == [fine.id]
    after = rpc.outbox.get(broken.id)
    assert after is not None
    assert (after.attempts, after.reason) == (1, "internal error: JSONDecodeError")
