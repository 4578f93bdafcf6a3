"""The running service erases old numbers (and the abuse limits' counts past their window) at
start; the installed CLI exports and erases."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dispatcher.model import LineId
from dispatcher.request_machine import Cause, RequestState, RideRequest, transition
from line_service.abuse.code_guesses import CodeGuesses, GuessLimits, Ticket
from line_service.storage.abuse_ledger import DatabaseLedger
from line_service.storage.store import Store
from sms_gateway.phones import phone_hash
from tests.support.brokers import Mosquitto
from tests.support.requests import waiting_request
from tests.support.service import CARPOOL_LINE, REPO, ServiceProcess, write_lines_file
from tests.support.waiting import wait_until

SALT = "service-salt"
RIDER = "+33612345678"


def taxi_request(request_id: str, at: datetime) -> tuple[RideRequest, RideRequest]:
    asked = waiting_request(request_id, at, phone=RIDER)
    return asked, transition(asked, Cause.GUARANTEE_REACHED, at + timedelta(minutes=15))


def carpool_line(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CARPOOL_DATABASE_URL": database_url, "CARPOOL_PHONE_HASH_SALT": SALT}
    return subprocess.run(
        [str(CARPOOL_LINE), *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_the_service_erases_numbers_past_retention_at_start_and_logs_counts_only(
    mosquitto: Mosquitto, tmp_path: Path, database_url: str
) -> None:
    now = datetime.now(UTC)
    store = Store(database_url, phone_hasher=lambda phone: phone_hash(phone, SALT))
    store.create_schema()
    for request_id, age in (("r-40-days", timedelta(days=40)), ("r-3-days", timedelta(days=3))):
        asked, taxi = taxi_request(request_id, now - age)
        store.save([(asked, None), (taxi, RequestState.WAITING)])
    guesses = CodeGuesses(GuessLimits(), DatabaseLedger(store.engine))  # a 24 h window
    guesser = f"phone:{phone_hash(RIDER, SALT)}"
    for age in (timedelta(hours=25), timedelta(hours=1)):  # a wrong code then another
        assert isinstance(guesses.begin(guesser, (LineId("calais-dunkerque"),), now - age), Ticket)
    service = ServiceProcess(
        broker_url=mosquitto.url,
        database_url=database_url,
        lines_file=write_lines_file(tmp_path),
        directory=tmp_path,
        extra_env={"CARPOOL_PHONE_HASH_SALT": SALT, "CARPOOL_PHONE_RETENTION_DAYS": "30"},
    )
    service.start()
    try:
        wait_until(lambda: '"privacy.retention"' in service.log(), 30, "the retention job ran")
    finally:
        service.stop()

    old, recent = store.request("r-40-days"), store.request("r-3-days")
    kept = DatabaseLedger(store.engine).seen(f"code:{guesser}", now - timedelta(days=3))
    assert [at for at, _tag in kept] == [now - timedelta(hours=1)]  # the one still counting
    store.dispose()
    assert old is not None
    assert old.phone is None
    assert recent is not None
    assert recent.phone == RIDER
    [line] = [json.loads(row) for row in service.log().splitlines() if "privacy.retention" in row]
    assert (line["erased"], line["ride_request_phone"], line["abuse_charge"]) == (3, 1, 2)
    assert RIDER[3:] not in service.log()

    exported = carpool_line(database_url, "privacy", "export", "--phone", "06 12 34 56 78")
    assert exported.returncode == 0, exported.stderr
    assert {r["id"] for r in json.loads(exported.stdout)["requests"]} == {"r-40-days", "r-3-days"}
    erased = carpool_line(database_url, "privacy", "erase", "--phone", RIDER)
    assert erased.returncode == 0, erased.stderr
    assert json.loads(erased.stdout)["erased"]["ride_request.phone"] == 1
    assert (
        json.loads(carpool_line(database_url, "privacy", "export", "--phone", RIDER).stdout)[
            "requests"
        ]
        == []
    )
    refused = carpool_line(database_url, "privacy", "erase", "--phone", "call me")
    assert refused.returncode == 2
    assert "not a valid phone number" in refused.stderr
