"""Attestation identities: a trip between two phones, asked and validated by SMS, is attested.

Tried as a new user would: a rider texts a stop and a destination, a driver texts the rider's
code; both numbers came through Twilio's signed webhook. The trip is then exported (and sent)
with both identities and proof class C; `privacy erase` removes the driver's number kept for it.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlmodel import Session, select
from typer.testing import CliRunner

from dispatcher.model import LineId, StopId, TerminalId
from dispatcher.request_machine import DeviceRequestId, Source
from line_service.authority.rpc_export import export_rpc
from line_service.cli import app
from line_service.dispatch.intake import Accepted
from line_service.runtime import Runtime, build_runtime
from line_service.settings import Settings
from line_service.storage.party_store import PartyRecord
from line_service.storage.store import TripRecord
from sms_gateway import replies
from tests.support.brokers import Mosquitto
from tests.support.rpc_standin import ACCESS_KEY, SECRET_KEY, Registry
from tests.support.service import LINE, write_lines_file
from tests.support.sms_webhook import PUBLIC_URL, Sms
from tests.support.twilio_standin import AUTH_TOKEN
from tests.support.waiting import wait_until
from tests.test_sms_webhook import DRIVER, RIDER, sms

__all__ = ["sms"]  # the SMS webhook's fixture, reused (on the runtime below)
OPERATOR = "operator-token-rpc"


@dataclass
class Clock:
    """The service's clock, ahead of the wall clock by what the test says."""

    ahead: timedelta = timedelta()

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime(
    mosquitto: Mosquitto, database_url: str, tmp_path: Path, registry: Registry, clock: Clock
) -> Runtime:
    """The service with Twilio's webhook, the operator API and the registry stand-in."""
    settings = Settings(
        lines_file=write_lines_file(tmp_path),
        database_url=database_url,
        mqtt_url=mosquitto.url,
        mqtt_client_id=f"rpc-test-{uuid.uuid4().hex[:8]}",
        twilio_auth_token=SecretStr(AUTH_TOKEN),
        public_url=PUBLIC_URL,
        phone_hash_salt=SecretStr("pepper"),
        api_tokens=SecretStr(f"{OPERATOR}:operator"),
        rpc_url=registry.url,
        rpc_access_key=ACCESS_KEY,
        rpc_secret_key=SecretStr(SECRET_KEY),
        rpc_send_delay_seconds=0,
        rpc_poll_seconds=0.2,
    )
    return build_runtime(settings, clock)


def trips(runtime: Runtime) -> list[TripRecord]:
    with Session(runtime.store.engine) as session:
        return list(session.exec(select(TripRecord)).all())


async def a_trip_by_sms(sms: Sms, runtime: Runtime, clock: Clock) -> TripRecord:
    await sms.reply("mrk dunkerque")
    [request] = runtime.engine.state.waiting()
    clock.ahead += timedelta(minutes=3)  # the driver stops a few minutes later
    assert await sms.reply(str(request.code), sender=DRIVER) == replies.CODE_VALIDATED
    await asyncio.to_thread(wait_until, lambda: trips(runtime) != [], 10, "the trip recorded")
    [trip] = trips(runtime)
    return trip


async def test_a_trip_between_two_sms_phones_is_exported_with_both_identities(
    sms: Sms, runtime: Runtime, clock: Clock
) -> None:
    trip = await a_trip_by_sms(sms, runtime, clock)
    assert trip.driver_ref.startswith("sms:")
    assert DRIVER[1:] not in trip.driver_ref
    day = trip.picked_up_at.date()
    export = export_rpc(runtime.store, runtime.network, day - timedelta(days=1), day)
    assert dict(export.skipped) == {}
    [journey] = export.journeys
    driver, passenger = journey["driver"]["identity"], journey["passenger"]["identity"]
    assert driver["phone_trunc"] == DRIVER[:-2]
    assert driver["identity_key"] == hashlib.sha256(f"{DRIVER}-".encode()).hexdigest()
    assert passenger["phone_trunc"] == RIDER[:-2]
    assert passenger["identity_key"] == hashlib.sha256(f"{RIDER}-".encode()).hexdigest()
    assert journey["operator_class"] == "C"  # both occupants' phones, two distinct people
    outbox = runtime.authority.outbox if runtime.authority else None
    assert outbox is not None
    queued = lambda: outbox.status_of(trip.id) == "queued"  # noqa: E731 - not due before arrival
    await asyncio.to_thread(wait_until, queued, 10, "the journey queued for the registry")


async def test_the_service_sends_the_trip_itself_and_operators_see_and_cancel_it(
    sms: Sms, runtime: Runtime, registry: Registry, clock: Clock
) -> None:
    trip = await a_trip_by_sms(sms, runtime, clock)
    assert runtime.authority is not None
    clock.ahead = timedelta(hours=1)  # the passenger has arrived
    runtime.authority.sender.wake()
    outbox = runtime.authority.outbox
    # The registry's answer stored, not only the journey received (it is stored just after).
    sent = lambda: outbox.status_of(trip.id) == "pending"  # noqa: E731
    await asyncio.to_thread(wait_until, sent, 10, "the journey at the registry, its answer stored")
    body = registry.journeys[trip.id]
    assert body["driver"]["identity"]["phone_trunc"] == DRIVER[:-2]
    headers = {"Authorization": f"Bearer {OPERATOR}"}
    api = sms.client
    listed = await api.get("/api/v1/rpc/journeys", params={"status": "pending"}, headers=headers)
    assert listed.status_code == 200, listed.text
    assert [j["journey_id"] for j in listed.json()["journeys"]] == [trip.id]
    counts = await api.get("/api/v1/rpc/counts", headers=headers)
    assert counts.json() == {"counts": {"pending": 1}}
    assert (
        await api.get("/api/v1/rpc/journeys", params={"status": "nope"}, headers=headers)
    ).status_code == 422
    assert (await api.get("/api/v1/rpc/journeys")).status_code == 401
    path = f"/api/v1/rpc/journeys/{trip.id}/cancel"
    answer = await api.post(
        path, json={"reason": "conducteur et passager complices"}, headers=headers
    )
    assert answer.status_code == 202, answer.text
    assert answer.json()["cancel_asked"] is True
    unknown = await api.post(
        "/api/v1/rpc/journeys/abc/cancel", json={"reason": "x"}, headers=headers
    )
    assert unknown.status_code == 404
    cancelled = lambda: trip.id in registry.cancelled  # noqa: E731
    await asyncio.to_thread(wait_until, cancelled, 10, "the cancel at the registry")
    assert registry.cancelled[trip.id] == {
        "code": "fraud",
        "message": "conducteur et passager complices",
    }


async def test_privacy_erase_removes_the_number_kept_for_attestation(
    sms: Sms, runtime: Runtime, clock: Clock
) -> None:
    await a_trip_by_sms(sms, runtime, clock)
    with Session(runtime.store.engine) as session:
        [party] = session.exec(select(PartyRecord)).all()
    assert party.phone == DRIVER
    env = {
        "CARPOOL_DATABASE_URL": runtime.settings.database_url,
        "CARPOOL_PHONE_HASH_SALT": "pepper",
    }
    exported = CliRunner().invoke(app, ["privacy", "export", "--phone", DRIVER], env=env)
    assert exported.exit_code == 0, exported.output
    assert '"party"' in exported.output
    erased = CliRunner().invoke(app, ["privacy", "erase", "--phone", DRIVER], env=env)
    assert erased.exit_code == 0, erased.output
    with Session(runtime.store.engine) as session:
        assert session.exec(select(PartyRecord)).all() == []


async def test_a_name_and_age_given_once_by_sms_make_the_registrys_identity(
    sms: Sms, runtime: Runtime, clock: Clock
) -> None:
    assert await sms.reply("CGU") == replies.TERMS
    assert await sms.reply("nom D'Hérûg-de-l'Hérault") == replies.NAME_KEPT
    assert await sms.reply("MAJEUR OUI") == replies.ADULT_KEPT
    assert await sms.reply("NOM") == replies.ATTESTATION_HOW
    assert await sms.reply("majeur peut-etre") == replies.ATTESTATION_HOW
    trip = await a_trip_by_sms(sms, runtime, clock)
    name = "D HERUG DE L HERAULT"  # the registry's own example of the form
    assert trip.passenger_identity_key == hashlib.sha256(f"{RIDER}-{name}".encode()).hexdigest()
    with Session(runtime.store.engine) as session:
        parties = {party.phone: party for party in session.exec(select(PartyRecord)).all()}
    rider = parties[RIDER]
    assert (rider.last_name, rider.over_18) == (name, True)
    assert rider.consent_at is not None
    assert parties[DRIVER].last_name is None  # the driver gave nothing: nothing more is kept


async def test_a_terminal_rider_links_their_trip_afterwards_by_texting_its_code(
    sms: Sms, runtime: Runtime, clock: Clock
) -> None:
    outcome = await runtime.intake.request_ride(
        line_id=LineId(LINE),
        stop_id=StopId("marck-est"),
        destination_id=StopId("dunkerque-est"),
        seats=1,
        source=Source.of_terminal(TerminalId("t-marck-est"), DeviceRequestId("press-1")),
    )
    assert isinstance(outcome, Accepted)
    code = str(outcome.request.code)
    clock.ahead += timedelta(minutes=3)  # the driver stops a few minutes later
    assert await sms.reply(code, sender=DRIVER) == replies.CODE_VALIDATED
    await asyncio.to_thread(wait_until, lambda: trips(runtime) != [], 10, "the trip recorded")
    assert runtime.authority is not None
    outbox = runtime.authority.outbox
    [trip] = trips(runtime)
    not_sent = lambda: outbox.status_of(trip.id) == "not_sent"  # noqa: E731
    await asyncio.to_thread(wait_until, not_sent, 10, "the journey held: no rider identity")
    assert await sms.reply("TRAJET 0000") == replies.no_trip_to_link(12)
    assert await sms.reply("TRAJET", sender=RIDER) == replies.TRIP_LINK_HOW
    assert await sms.reply(f"TRAJET {code}", sender=DRIVER) == replies.no_trip_to_link(12)
    assert await sms.reply(f"trajet {code}") == replies.TRIP_LINKED
    assert await sms.reply(f"TRAJET {code}", sender="+33611111111") == replies.no_trip_to_link(12)
    [linked] = trips(runtime)
    assert linked.passenger_phone_trunc == RIDER[:-2]
    assert linked.operator_class == "B"
    assert outbox.status_of(trip.id) == "queued"
