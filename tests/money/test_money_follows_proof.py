"""Money follows proof: own rides and unknown drivers unpaid, suspicious validations held until
an operator decides, per-trip amounts counted once per car run (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from dispatcher.model import Network
from line_service.authority.campaigns_file import default_campaigns
from line_service.authority.driver_identity import (
    UNPAID_DRIVER_UNKNOWN,
    UNPAID_OWN_RIDE,
    identify_driver,
)
from line_service.authority.rpc_export import (
    SKIP_HELD,
    SKIP_OWN_RIDE,
    SKIP_REJECTED,
    export_rpc,
)
from line_service.authority.trip_reviews import ReviewError, Standing, TripReviews, standing
from line_service.authority.trips import TripBook
from line_service.authority.validation_checks import (
    FLAG_IMPOSSIBLE_SPEED,
    FLAG_MANY_STOPS,
    FLAG_TOO_SOON,
)
from line_service.storage.store import Store
from tests.money.trips_support import DRIVER, RIDER, SIRET, T0, paying_network, record, validated

NOVEMBER = (date(2026, 11, 1), date(2026, 11, 30))
DECIDED_AT = datetime(2026, 11, 3, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def network() -> Network:
    return paying_network()


@pytest.fixture
def book(store: Store, network: Network) -> TripBook:
    return TripBook(store, network)


def test_identification_is_one_function_accounts_and_numbers_only() -> None:
    assert identify_driver("account:42") is not None
    assert identify_driver("tel:+33699887766") is not None
    assert identify_driver("+33699887766") == identify_driver("tel:+33699887766")
    assert identify_driver("sms:9f86d081884c7d65") is None  # a salted hash pays nobody
    assert identify_driver("demo-driver-3") is None


def test_a_rider_validating_their_own_ride_is_paid_nothing_and_not_exported(
    store: Store, book: TripBook, network: Network
) -> None:
    own = record(book, network, validated("r1", T0, driver=RIDER))
    assert own.unpaid_reason == UNPAID_OWN_RIDE
    assert own.driver_compensation_cents == 0
    export = export_rpc(store, network, *NOVEMBER)
    assert export.journeys == []
    assert export.skipped == {SKIP_OWN_RIDE: 1}


def test_a_driver_who_cannot_be_identified_is_paid_nothing(
    book: TripBook, network: Network
) -> None:
    trip = record(book, network, validated("r1", T0, driver="sms:9f86d081884c7d65"))
    assert (trip.unpaid_reason, trip.driver_compensation_cents) == (UNPAID_DRIVER_UNKNOWN, 0)


def test_two_passengers_of_one_car_run_pay_the_lines_rule_once(
    store: Store, book: TripBook, network: Network
) -> None:
    """Lane's rule: 1 EUR a trip plus 1 EUR a passenger: two riders in one car = 300 cents."""
    first = record(book, network, validated("r1", T0, phone="+33612345601"))
    second = record(book, network, validated("r2", T0 + timedelta(minutes=2), phone="+33612345602"))
    assert first.operator_trip_id == second.operator_trip_id
    assert first.driver_compensation_cents + second.driver_compensation_cents == 300
    export = export_rpc(store, network, *NOVEMBER)
    incentives = [i for journey in export.journeys for i in journey["incentives"]]
    assert sum(i["amount"] for i in incentives) == 300
    assert {i["siret"] for i in incentives} == {SIRET}
    assert sorted(j["driver"]["revenue"] for j in export.journeys) == [100, 200]


def test_a_validation_right_after_the_request_is_held_until_an_operator_approves(
    store: Store, book: TripBook, network: Network
) -> None:
    held = record(book, network, validated("r1", T0, asked_before=timedelta(seconds=10)))
    assert held.flags == FLAG_TOO_SOON
    assert held.driver_compensation_cents == 0
    export = export_rpc(store, network, *NOVEMBER)
    assert (export.journeys, dict(export.skipped)) == ([], {SKIP_HELD: 1})
    reviews = TripReviews(store)
    reviews.decide(held.id, "approve", "le conducteur attendait déjà", "alice", DECIDED_AT)
    review = reviews.of(held.id)
    assert review is not None
    assert (review.decided_by, review.decision) == ("alice", "approve")
    [journey] = export_rpc(store, network, *NOVEMBER).journeys
    assert journey["operator_journey_id"] == held.id
    assert journey["incentives"] == [{"index": 0, "siret": SIRET, "amount": 200}]


def test_a_rejected_trip_stays_unpaid_and_is_marked_fraudulent(
    store: Store, book: TripBook, network: Network
) -> None:
    held = record(book, network, validated("r1", T0, asked_before=timedelta(seconds=10)))
    reviews = TripReviews(store)
    reviews.decide(held.id, "reject", "codes tapés depuis une photo", "alice", DECIDED_AT)
    export = export_rpc(store, network, *NOVEMBER)
    assert (export.journeys, dict(export.skipped)) == ([], {SKIP_REJECTED: 1})
    assert standing(held, "reject") is Standing.REJECTED
    assert [r.trip_id for r in reviews.rejected_since(DECIDED_AT)] == [held.id]


def test_only_held_trips_can_be_reviewed(store: Store, book: TripBook, network: Network) -> None:
    clean = record(book, network, validated("r1", T0))
    reviews = TripReviews(store)
    with pytest.raises(ReviewError) as refused:
        reviews.decide(clean.id, "approve", "", "alice", DECIDED_AT)
    assert refused.value.status == 409
    with pytest.raises(ReviewError) as unknown:
        reviews.decide("nope", "approve", "", "alice", DECIDED_AT)
    assert unknown.value.status == 404


def test_one_driver_at_stops_far_apart_within_minutes_is_held(
    book: TripBook, network: Network
) -> None:
    """Calais then Gravelines (about 20 km) four minutes later: 300 km/h as the crow flies."""
    first = record(book, network, validated("r1", T0, origin="calais-est", phone="+33612345601"))
    second = record(
        book,
        network,
        validated("r2", T0 + timedelta(minutes=4), origin="gravelines-est", phone="+33612345602"),
    )
    third = record(
        book,
        network,
        validated("r3", T0 + timedelta(minutes=8), origin="marck-est", phone="+33612345603"),
    )
    assert first.flags == ""
    assert FLAG_IMPOSSIBLE_SPEED in second.flags.split(",")
    assert FLAG_MANY_STOPS in third.flags.split(",")
    assert DRIVER not in second.flags


def test_a_driver_identified_when_recorded_is_still_paid_after_retention(
    store: Store, book: TripBook, network: Network
) -> None:
    """Numbers in clear are erased after CARPOOL_PHONE_RETENTION_DAYS; payouts come later."""
    from line_service.authority.driver_identity import RETAINED_PREFIX, payee_of
    from line_service.authority.money import trip_money
    from line_service.privacy.personal_data import HASHED_DRIVER, erase_expired

    assert RETAINED_PREFIX == HASHED_DRIVER
    trip = record(book, network, validated("r1", T0))
    unknown = record(
        book, network, validated("r2", T0 + timedelta(hours=2), driver="demo-driver-3")
    )
    erase_expired(store.engine, "salt", T0 + timedelta(days=31))
    money = trip_money(store, network, default_campaigns(network), *NOVEMBER)
    assert money.ledger.paid(trip.id) == 200
    assert money.ledger.paid(unknown.id) == 0
    assert payee_of("hash:abc", UNPAID_DRIVER_UNKNOWN) is None
