"""The Twilio webhook through the real app and lifespan: a real Mosquitto, SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr
from sqlmodel import Session, select

from dispatcher.events import Actor, DeadlineReached, RideCancelled
from dispatcher.request_machine import RequestState
from line_service.estimates.estimator import WaitEstimator, load_corridors
from line_service.estimates.wait_estimate import whole_minutes
from line_service.runtime import Runtime, build_runtime, running
from line_service.settings import Settings
from line_service.storage.sms_store import SmsInboundRecord, SmsOptOutRecord
from line_service.storage.store import PhoneHashRecord, RideRequestRecord
from sms_gateway import replies
from tests.support.app import console_sender as console
from tests.support.app import served_app
from tests.support.brokers import Mosquitto
from tests.support.service import REPO, write_lines_file
from tests.support.sms_webhook import PUBLIC_URL, Sms, new_sid
from tests.support.twilio_standin import AUTH_TOKEN, sign
from tests.support.waiting import wait_until

RIDER = "+33612345678"
DRIVER = "+33698765432"


@pytest.fixture
def runtime(mosquitto: Mosquitto, database_url: str, tmp_path: Path) -> Runtime:
    settings = Settings(
        lines_file=write_lines_file(tmp_path),
        database_url=database_url,
        mqtt_url=mosquitto.url,
        mqtt_client_id=f"sms-test-{uuid.uuid4().hex[:8]}",
        twilio_auth_token=SecretStr(AUTH_TOKEN),
        public_url=PUBLIC_URL,
        phone_hash_salt=SecretStr("pepper"),
        sms_rate_limit_count=6,
    )
    return build_runtime(settings)


@pytest.fixture
async def sms(runtime: Runtime) -> AsyncIterator[Sms]:
    """The app served by uvicorn on a free port (lifespan included), and a client for it."""
    async with served_app(runtime) as client:
        yield Sms(client)


def inbound_rows(runtime: Runtime) -> list[SmsInboundRecord]:
    with Session(runtime.store.engine) as session:
        return list(session.exec(select(SmsInboundRecord)).all())


async def test_a_ride_by_sms_gets_a_code_in_french_and_waits(sms: Sms, runtime: Runtime) -> None:
    text = await sms.reply("cal Dunkerke")
    [request] = runtime.engine.state.waiting()
    assert request.stop_id == "calais-est"
    assert request.destination_id == "dunkerque-est"
    assert request.phone == RIDER
    assert f"Donnez le code {request.code} au conducteur" in text
    assert "Calais -> Dunkerque" in text
    assert runtime.store.request(request.id) is not None


async def test_the_reply_tells_the_wait_to_expect(
    sms: Sms, runtime: Runtime, tmp_path: Path
) -> None:
    # No history and no study beside the lines file: no estimate, the signs are mentioned.
    assert "Panneaux allumés." in await sms.reply("cal dunkerque")
    assert "Attente" not in await sms.reply("annuler")
    # With the study's corridors beside the lines file, the model answers.
    shutil.copy(REPO / "config" / "corridors.yaml", tmp_path / "corridors.yaml")
    assert runtime.estimates is not None
    runtime.estimates = WaitEstimator(
        runtime.network,
        runtime.store.finished_waits,
        runtime.clock,
        lambda: load_corridors(tmp_path / "corridors.yaml"),
    )
    assert runtime.sms is not None
    runtime.sms.estimates = runtime.estimates
    text = await sms.reply("cal dunkerque")
    [request] = runtime.engine.state.waiting()
    line = runtime.network.line(request.line_id)
    assert line is not None
    expected = runtime.estimates.estimate_now(line, request.stop_id, request.destination_id)
    if expected is None:  # an hour the model has no traffic at
        assert "Panneaux allumés." in text
    else:
        assert f"Attente estimée: {whole_minutes(expected.median)} min." in text


async def test_unsigned_or_forged_webhooks_get_403_and_change_nothing(
    sms: Sms, runtime: Runtime
) -> None:
    assert (await sms.post("cal dunkerque", signature=None)).status_code == 403
    assert (await sms.post("cal dunkerque", signature="bm90IGEgc2lnbmF0dXJl")).status_code == 403
    params_for_another_url = sign("https://evil.example/sms/twilio", {"Body": "cal dunkerque"})
    assert (await sms.post("cal dunkerque", signature=params_for_another_url)).status_code == 403
    assert (await sms.post("x", signature=None, path="/sms/twilio/status")).status_code == 403
    assert runtime.engine.state.requests == {}
    assert inbound_rows(runtime) == []


async def test_a_retried_message_sid_is_one_message_with_the_same_reply(
    sms: Sms, runtime: Runtime
) -> None:
    ride_sid, cancel_sid = new_sid(), new_sid()
    first = await sms.reply("CAL DUNKERQUE", sid=ride_sid)
    again = await sms.reply("CAL DUNKERQUE", sid=ride_sid)
    assert first == again
    assert len(runtime.engine.state.requests) == 1

    cancelled = await sms.reply("ANNULER", sid=cancel_sid)
    assert cancelled == replies.CANCELLED
    assert await sms.reply("ANNULER", sid=cancel_sid) == replies.CANCELLED
    assert runtime.engine.state.waiting() == ()
    assert len(inbound_rows(runtime)) == 2
    assert console(runtime).sent == []  # the rider's own cancel is answered by the reply only


async def test_a_driver_texting_the_code_validates_and_the_rider_is_told(
    sms: Sms, runtime: Runtime
) -> None:
    await sms.reply("mrk gravelines")
    [request] = runtime.engine.state.waiting()
    assert await sms.reply(str(request.code), sender=RIDER) == replies.OWN_CODE
    assert await sms.reply(str(request.code), sender=DRIVER) == replies.CODE_VALIDATED
    done = runtime.engine.state.requests[request.id]
    assert done.state is RequestState.PICKED_UP
    assert done.driver_ref is not None
    assert DRIVER[1:] not in done.driver_ref
    [told] = console(runtime).sent
    assert told.to == RIDER
    assert told.body.startswith("Bon voyage!")
    assert await sms.reply(str(request.code), sender=DRIVER) == replies.code_unknown(
        str(request.code)
    )

    # The number is no longer kept in clear once the request is over: only a salted hash.
    with Session(runtime.store.engine) as session:
        row = session.get(RideRequestRecord, request.id)
        hashed = session.get(PhoneHashRecord, request.id)
        inbound = session.exec(select(SmsInboundRecord.phone_hash)).all()
    assert row is not None
    assert row.phone is None
    assert hashed is not None
    assert RIDER[1:] not in hashed.phone_hash
    assert all(RIDER[1:] not in value and DRIVER[1:] not in value for value in inbound)


async def test_one_waiting_request_per_phone_and_clear_answers_to_mistakes(
    sms: Sms, runtime: Runtime
) -> None:
    await sms.reply("cal dunkerque")
    [request] = runtime.engine.state.waiting()
    other = await sms.reply("cal gravelines")
    assert other.startswith("Vous avez déjà une demande en cours vers Dunkerque")
    assert f"code {request.code}" in other
    assert len(runtime.engine.state.waiting()) == 1
    assert (await sms.reply("cal paris")).startswith(
        "Destination non reconnue. Depuis Calais: Marck"
    )
    assert "inconnu" in await sms.reply("zzz dunkerque")
    assert await sms.reply("PARTI") == replies.DEPARTED
    assert runtime.engine.state.requests[request.id].state is RequestState.PICKED_UP
    assert await sms.reply("ANNULER") == replies.NOTHING_WAITING


async def test_a_number_that_is_no_phone_number_gets_a_polite_reply(
    sms: Sms, runtime: Runtime
) -> None:
    assert await sms.reply("cal dunkerque", sender="TWILIO") == replies.BAD_NUMBER
    assert await sms.reply("cal dunkerque", sender="0612345678") != replies.BAD_NUMBER  # national
    [request] = runtime.engine.state.waiting()
    assert request.phone == "+33612345678"


async def test_too_many_messages_get_one_polite_refusal_then_silence(
    sms: Sms, runtime: Runtime
) -> None:
    for _ in range(6):
        assert await sms.reply("aide") == replies.HELP
    assert await sms.reply("aide") == replies.RATE_LIMITED
    assert await sms.reply("cal dunkerque") == ""
    assert runtime.engine.state.requests == {}
    assert await sms.reply("aide", sender=DRIVER) == replies.HELP  # per number


async def test_delivery_status_callbacks_are_recorded(sms: Sms, runtime: Runtime) -> None:
    params = {"MessageSid": "SM42", "MessageStatus": "delivered", "To": RIDER}
    path = "/sms/twilio/status"
    signature = sign(PUBLIC_URL + path, params)
    response = await sms.client.post(path, data=params, headers={"X-Twilio-Signature": signature})
    assert response.status_code == 204
    assert runtime.sms is not None
    recorded = runtime.sms.store.delivery("SM42")
    assert recorded is not None
    assert recorded.status == "delivered"
    forged = await sms.client.post(
        path, data={**params, "MessageStatus": "failed"}, headers={"X-Twilio-Signature": signature}
    )
    assert forged.status_code == 403
    still = runtime.sms.store.delivery("SM42")
    assert still is not None
    assert still.status == "delivered"


async def test_riders_are_texted_when_the_wait_ends_or_an_operator_cancels(
    sms: Sms, runtime: Runtime
) -> None:
    await sms.reply("cal dunkerque")
    await sms.reply("mrk gravelines", sender=DRIVER)
    first, second = runtime.engine.state.waiting()
    await runtime.engine.submit(DeadlineReached(first.id))
    await runtime.engine.submit(
        RideCancelled(line_id=second.line_id, actor=Actor.OPERATOR, request_id=second.id)
    )
    told = {message.to: message.body for message in console(runtime).sent}
    ended = runtime.engine.state.requests[first.id]
    # The wait guarantee sends a taxi on lines with a fallback; otherwise the request expires.
    expected = {
        RequestState.FALLBACK: "Pas de conducteur pour l'instant: un taxi arrive à l'arret Calais",
        RequestState.EXPIRED: "Désolé, pas de conducteur à temps vers Dunkerque",
    }
    assert told[RIDER].startswith(expected[ended.state])
    assert told[DRIVER].startswith("Votre demande Marck -> Gravelines a été annulée par")
    assert runtime.engine.state.waiting() == ()


@pytest.mark.parametrize("word", ["STOP", "stop sms", "Arrêt", "ARRET SMS"])
async def test_stop_ends_every_text_to_the_number_until_it_writes_again(
    sms: Sms, runtime: Runtime, word: str
) -> None:
    await sms.reply("mrk gravelines")
    [request] = runtime.engine.state.waiting()
    assert await sms.reply(word) == replies.OPTED_OUT
    with Session(runtime.store.engine) as session:
        [stored] = session.exec(select(SmsOptOutRecord)).all()
    assert RIDER[1:] not in stored.phone_hash  # kept by salted hash only

    # The driver's code still validates the ride, but the rider is not texted "Bon voyage".
    assert await sms.reply(str(request.code), sender=DRIVER) == replies.CODE_VALIDATED
    assert runtime.engine.state.requests[request.id].state is RequestState.PICKED_UP
    assert console(runtime).sent == []

    # Writing again is consent again: the next ride's changes are texted.
    await sms.reply("cal dunkerque")
    [again] = runtime.engine.state.waiting()
    await runtime.intake.cancel(again, Actor.OPERATOR)
    [told] = console(runtime).sent
    assert told.to == RIDER
    with Session(runtime.store.engine) as session:
        assert session.exec(select(SmsOptOutRecord)).all() == []


async def test_stop_is_never_read_as_a_stop_code_and_aide_says_how(
    sms: Sms, runtime: Runtime
) -> None:
    assert "STOP" in await sms.reply("AIDE")
    assert await sms.reply("STOP") == replies.OPTED_OUT
    assert runtime.engine.state.requests == {}


async def test_a_stop_outlives_a_restart(sms: Sms, runtime: Runtime) -> None:
    assert await sms.reply("STOP") == replies.OPTED_OUT
    settings = runtime.settings.model_copy(update={"mqtt_client_id": f"sms-{uuid.uuid4().hex[:8]}"})
    async with running(build_runtime(settings)) as restarted:
        assert restarted.sms is not None
        opt_outs = restarted.sms.opt_outs
        await asyncio.to_thread(wait_until, lambda: opt_outs.blocks(RIDER), 10, "opt-outs read")
        assert not opt_outs.blocks(DRIVER)
