"""Personal data on SQLite and PostgreSQL: retention, `privacy export` and `privacy erase`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import Session, SQLModel, select
from typer.testing import CliRunner, Result

from dispatcher.model import LineId
from dispatcher.request_machine import Cause, RequestState, RideRequest, transition
from line_service.abuse.code_guesses import CodeGuesses, GuessLimits, Ticket
from line_service.abuse.request_rates import RequestLimiter, RequestRates
from line_service.authority.trips import TripBook, draft_trip, identity_of
from line_service.cli import app
from line_service.network.lines_file import load_network
from line_service.privacy.personal_data import erase_expired
from line_service.storage.abuse_ledger import DatabaseLedger
from line_service.storage.party_store import PartyStore
from line_service.storage.rpc_outbox_table import RpcJourneyRecord
from line_service.storage.sms_store import SmsStore
from line_service.storage.store import PhoneHashRecord, Store
from sms_gateway.phones import phone_hash
from tests.support.requests import waiting_request

REPO = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
OLD = NOW - timedelta(days=40)
RECENT = NOW - timedelta(days=1)
HOUR_AGO = NOW - timedelta(hours=1)
SALT = "privacy-test-salt"
RIDER = "+33612345678"
DRIVER = "+33698765432"
OTHER = "+33611112222"
LINE = LineId("calais-dunkerque")


def request(request_id: str, phone: str | None, at: datetime) -> RideRequest:
    return waiting_request(request_id, at, phone=phone)


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A database with the rider's traces: old and recent requests, texts, a trip."""
    opened = Store(database_url, phone_hasher=lambda phone: phone_hash(phone, SALT))
    opened.create_schema()
    line = load_network(REPO / "config" / "lines.yaml").line(LINE)
    assert line is not None
    # 40 days ago: a ride validated by a driver whose app sent his number as driver_ref.
    asked = request("r-old", RIDER, OLD)
    picked = transition(asked, Cause.CODE_VALIDATED, OLD + timedelta(minutes=4), f"tel:{DRIVER}")
    opened.save([(asked, None), (picked, RequestState.WAITING)])
    draft = draft_trip(line, picked, RequestState.WAITING)
    assert draft is not None
    TripBook(opened).record(draft)
    # 40 days ago: the guarantee sent a taxi; FALLBACK keeps the number in clear.
    old_fallback = request("r-fallback", RIDER, OLD + timedelta(hours=1))
    taxi = transition(old_fallback, Cause.GUARANTEE_REACHED, OLD + timedelta(hours=1, minutes=15))
    opened.save([(old_fallback, None), (taxi, RequestState.WAITING)])
    # Yesterday: another taxi, still within the retention period.
    recent = request("r-recent", RIDER, RECENT)
    opened.save(
        [
            (recent, None),
            (transition(recent, Cause.GUARANTEE_REACHED, RECENT), RequestState.WAITING),
        ]
    )
    # Someone else's ride, validated by the rider acting as a driver over SMS.
    theirs = request("r-other", OTHER, OLD)
    driven = transition(theirs, Cause.CODE_VALIDATED, OLD, f"sms:{phone_hash(RIDER, SALT)}")
    opened.save([(theirs, None), (driven, RequestState.WAITING)])
    texts = SmsStore(opened.engine)
    texts.remember("SMold", phone_hash(RIDER, SALT), "AskRide", "Donnez le code 4821", OLD)
    texts.remember("SMnew", phone_hash(RIDER, SALT), "Cancel", "Demande annulée", RECENT)
    texts.remember("SMoth", phone_hash(OTHER, SALT), "AskRide", "Donnez le code", OLD)
    texts.record_status("SMout1", "delivered", None, OLD)
    texts.opt_out(phone_hash(RIDER, SALT), RECENT)
    # An hour ago: the rider sent a wrong driver's code and asked a ride (the abuse limits).
    ledger = DatabaseLedger(opened.engine)
    rider = f"phone:{phone_hash(RIDER, SALT)}"
    assert isinstance(CodeGuesses(GuessLimits(), ledger).begin(rider, (LINE,), HOUR_AGO), Ticket)
    assert RequestLimiter(RequestRates(), ledger).admit(HOUR_AGO, rider) is None
    yield opened
    opened.dispose()


def dump(store: Store) -> str:
    """Every row of every table, as text."""
    with Session(store.engine) as session:
        rows = [
            str(list(row))
            for table in SQLModel.metadata.sorted_tables
            for row in session.execute(table.select()).all()
        ]
    return "\n".join(rows)


def run(database_url: str, *args: str) -> Result:
    env = {"CARPOOL_DATABASE_URL": database_url, "CARPOOL_PHONE_HASH_SALT": SALT}
    return CliRunner().invoke(app, ["privacy", *args], env=env)


def exported(database_url: str, phone: str) -> dict[str, Any]:
    result = run(database_url, "export", "--phone", phone)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def traces_of(number: str, salt: str = SALT) -> tuple[str, ...]:
    """What would link a row to the number: itself, its truncation, its hashes."""
    identity = identity_of(number)
    return number, number[:-2], phone_hash(number, salt), identity.identity_key, identity.ref


def test_retention_erases_old_numbers_and_keeps_recent_ones_and_salted_hashes(
    store: Store,
) -> None:
    counts = erase_expired(store.engine, SALT, NOW - timedelta(days=30))

    assert counts == {"ride_request.phone": 1, "ride_request.driver_ref": 1, "trip": 1}
    old_fallback = store.request("r-fallback")
    assert old_fallback is not None
    assert old_fallback.phone is None
    recent = store.request("r-recent")
    assert recent is not None
    assert recent.phone == RIDER
    old = store.request("r-old")
    assert old is not None
    assert old.driver_ref == f"hash:{phone_hash(DRIVER, SALT)}"
    text = dump(store)
    assert text.count(RIDER) == 1  # only the request of yesterday
    for trace in (DRIVER, DRIVER[:-2], RIDER[:-2], identity_of(RIDER).identity_key):
        assert trace not in text.replace(RIDER, "")
    assert identity_of(RIDER).ref not in text
    with Session(store.engine) as session:
        hashes = dict(
            session.exec(select(PhoneHashRecord.request_id, PhoneHashRecord.phone_hash)).all()
        )
    rider = phone_hash(RIDER, SALT)
    assert hashes == {"r-old": rider, "r-fallback": rider, "r-other": phone_hash(OTHER, SALT)}
    assert erase_expired(store.engine, SALT, NOW - timedelta(days=30)) == {}


def test_export_gives_requests_with_history_texts_and_trips_of_a_number(
    store: Store, database_url: str
) -> None:
    data = exported(database_url, "06 12 34 56 78")

    assert data["phone"] == RIDER
    assert data["sms_opt_out"]["opted_out_at"].startswith(RECENT.date().isoformat())
    assert exported(database_url, OTHER)["sms_opt_out"] is None
    assert data["banned_driver"] is None
    roles = {item["id"]: item["role"] for item in data["requests"]}
    assert roles == {
        "r-old": "rider",
        "r-fallback": "rider",
        "r-recent": "rider",
        "r-other": "driver",
    }
    old = next(item for item in data["requests"] if item["id"] == "r-old")
    assert [(e["from_state"], e["to_state"]) for e in old["history"]] == [
        (None, "waiting"),
        ("waiting", "picked_up"),
    ]
    assert old["created_at"] == OLD.isoformat()
    assert sorted(m["message_sid"] for m in data["sms_inbound"]) == ["SMnew", "SMold"]
    [trip] = data["trips"]
    assert trip["request_id"] == "r-old"
    assert trip["passenger_phone_trunc"] == RIDER[:-2]
    assert data["sms_delivery"] == []
    assert any("MessageSid only" in note for note in data["notes"])
    charged = sorted(charge["key"] for charge in data["abuse_charges"])
    rider = f"phone:{phone_hash(RIDER, SALT)}"
    assert charged == [f"code-line:{LINE}", f"code:{rider}", f"request:{rider}"]
    # After the retention job the same number still finds its (pseudonymised) traces.
    erase_expired(store.engine, SALT, NOW - timedelta(days=30))
    again = exported(database_url, "+33 6 12 34 56 78")
    assert {item["id"] for item in again["requests"]} == set(roles)
    assert [trip["request_id"] for trip in again["trips"]] == ["r-old"]
    assert exported(database_url, "0611112222")["sms_inbound"][0]["message_sid"] == "SMoth"


def test_erase_removes_every_trace_keeps_one_distinct_person_and_is_idempotent(
    store: Store, database_url: str
) -> None:
    result = run(database_url, "erase", "--phone", "0612345678")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["erased"] == {
        "ride_request.phone": 2,  # the two FALLBACK requests still holding it
        "ride_request.driver_ref": 1,
        "rider_phone_hash": 1,  # the ride that ended normally kept only the hash
        "sms_inbound": 2,
        "sms_opt_out": 1,  # the STOP it sent: nothing is left to text
        "trip.passenger": 1,
        "abuse_charge": 3,  # its own counts, and the wrong code its line still counts
    }
    assert report["open_requests"] == 2  # FALLBACK requests, still open in a running service
    text = dump(store)
    for trace in traces_of(RIDER):
        assert trace not in text
    assert phone_hash(OTHER, SALT) in text  # other people's data is untouched
    with Session(store.engine) as session:
        hashes = dict(
            session.exec(select(PhoneHashRecord.request_id, PhoneHashRecord.phone_hash)).all()
        )
    pseudonyms = {hashes[rid] for rid in ("r-old", "r-fallback", "r-recent")}
    assert len(pseudonyms) == 1  # statistics still count one distinct rider
    empty = exported(database_url, RIDER)
    assert (empty["requests"], empty["sms_inbound"], empty["trips"]) == ([], [], [])
    assert empty["sms_opt_out"] is None
    assert empty["abuse_charges"] == []
    # The line's budget did not fall: the wrong code stays counted, under the pseudonym.
    counted = DatabaseLedger(store.engine).seen(f"code-line:{LINE}", HOUR_AGO - timedelta(hours=1))
    assert [tag for _at, tag in counted] == [f"phone:{pseudonyms.pop()}"]

    second = run(database_url, "erase", "--phone", RIDER)
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout) == {"erased": {}, "rows": 0, "open_requests": 0}


def test_erase_of_a_driver_number_unlinks_trips_and_requests(
    store: Store, database_url: str
) -> None:
    result = run(database_url, "erase", "--phone", DRIVER)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["erased"] == {"ride_request.driver_ref": 1, "trip.driver": 1}
    text = dump(store)
    for trace in traces_of(DRIVER):
        assert trace not in text
    assert RIDER in text  # the passenger's own data is not the driver's to erase


@pytest.mark.parametrize("command", ["export", "erase"])
@pytest.mark.parametrize("phone", ["12", "not a number", "+33 1", "", "06 12"])
def test_an_unreadable_number_is_refused_with_exit_2(
    command: str, phone: str, tmp_path: Path
) -> None:
    result = run(f"sqlite:///{tmp_path}/any.sqlite3", command, "--phone", phone)

    assert result.exit_code == 2
    assert "not a valid phone number" in result.stderr


def test_a_database_without_the_service_tables_is_refused(tmp_path: Path) -> None:
    result = run(f"sqlite:///{tmp_path}/empty.sqlite3", "export", "--phone", RIDER)

    assert result.exit_code == 1
    assert "no ride_request table" in result.stderr


def test_retention_forgets_attestation_numbers_and_sent_bodies_of_old_trips(
    store: Store,
) -> None:
    parties = PartyStore(store.engine)
    parties.vouch("sms:old-driver", "+33698765401", OLD)
    parties.vouch("sms:active-driver", "+33698765402", RECENT)
    with Session(store.engine) as session:
        for journey_id, at in (("old", OLD), ("recent", RECENT)):
            session.add(
                RpcJourneyRecord(
                    journey_id=journey_id,
                    line_id="calais-dunkerque",
                    trip_at=at,
                    status="ok",
                    payload='{"driver": "…"}',
                    updated_at=at,
                )
            )
        session.commit()
    counts = erase_expired(store.engine, SALT, NOW - timedelta(days=30))
    assert (counts["party"], counts["rpc_journey.payload"]) == (1, 1)
    assert parties.get("sms:old-driver") is None
    assert parties.get("sms:active-driver") is not None
    with Session(store.engine) as session:
        old, recent = session.get(RpcJourneyRecord, "old"), session.get(RpcJourneyRecord, "recent")
    assert old is not None
    assert recent is not None
    assert (old.payload, old.status) == ("", "ok")  # the status stays: reports count it
    assert recent.payload != ""
