"""Attestation identities: a trip between two phones, asked and validated by SMS, is attested.

Tried as a new user would: a rider texts a stop and a destination, a driver texts the rider's
code; both numbers came through Twilio's signed webhook. The trip is then exported (and sent)
with both identities and proof class C; `privacy erase` removes the driver's number kept for it.
"""

from __future__ import annotations

import asyncio
import hashlib
from datetime import timedelta

from sqlmodel import Session, select
from typer.testing import CliRunner

from line_service.authority.rpc_export import export_rpc
from line_service.cli import app
from line_service.runtime import Runtime
from line_service.storage.party_store import PartyRecord
from line_service.storage.store import TripRecord
from sms_gateway import replies
from tests.support.waiting import wait_until
from tests.test_sms_webhook import DRIVER, RIDER, Sms, runtime, sms

__all__ = ["runtime", "sms"]  # the SMS webhook's fixtures, reused


def trips(runtime: Runtime) -> list[TripRecord]:
    with Session(runtime.store.engine) as session:
        return list(session.exec(select(TripRecord)).all())


async def a_trip_by_sms(sms: Sms, runtime: Runtime) -> TripRecord:
    await sms.reply("mrk dunkerque")
    [request] = runtime.engine.state.waiting()
    assert await sms.reply(str(request.code), sender=DRIVER) == replies.CODE_VALIDATED
    await asyncio.to_thread(wait_until, lambda: trips(runtime) != [], 10, "the trip recorded")
    [trip] = trips(runtime)
    return trip


async def test_a_trip_between_two_sms_phones_is_exported_with_both_identities(
    sms: Sms, runtime: Runtime
) -> None:
    trip = await a_trip_by_sms(sms, runtime)
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
    queued = lambda: outbox.status_of(trip.id) == "queued"  # noqa: E731 - no registry configured
    await asyncio.to_thread(wait_until, queued, 10, "the journey queued for the registry")


async def test_privacy_erase_removes_the_number_kept_for_attestation(
    sms: Sms, runtime: Runtime
) -> None:
    await a_trip_by_sms(sms, runtime)
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
