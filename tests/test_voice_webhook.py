"""The phone line through the real app: Twilio-signed calls, keypad codes, one request a call."""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from html import unescape

import httpx
from sqlmodel import Session, select

from dispatcher.model import StopId
from dispatcher.request_machine import Channel
from line_service.estimates.estimator import WaitEstimator
from line_service.privacy import personal_data
from line_service.privacy.personal_data import keys_for
from line_service.runtime import Runtime
from line_service.storage.voice_store import VoiceStepRecord
from line_service.voice.channel import action
from sms_gateway import voice
from tests.support.app import console_sender as console
from tests.support.sms_webhook import PUBLIC_URL, Sms
from tests.support.twilio_standin import sign
from tests.test_sms_webhook import RIDER, runtime, sms  # noqa: F401

CALL = "/voice/twilio"
STOP_STEP = "/voice/twilio/stop?try=1"


class Call:
    """One phone call as Twilio makes it: the same CallSid for every step, each post signed."""

    def __init__(self, client: httpx.AsyncClient, caller: str = RIDER) -> None:
        self.client = client
        self.caller = caller
        self.sid = "CA" + uuid.uuid4().hex

    async def post(self, url: str, digits: str | None = None, signed: bool = True) -> str:
        """Post one step to `url` (the path and query Twilio was told); the TwiML answer."""
        params = {
            "CallSid": self.sid,
            "AccountSid": "AC" + "0" * 32,
            "From": self.caller,
            "To": "+33700000001",
            "CallStatus": "in-progress",
        }
        if digits is not None:
            params["Digits"] = digits
        headers = {"X-Twilio-Signature": sign(PUBLIC_URL + url, params)} if signed else {}
        response = await self.client.post(url, data=params, headers=headers)
        if not signed:
            assert response.status_code == 403
            return ""
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/xml")
        return response.text

    @staticmethod
    def said(twiml: str) -> str:
        return " ".join(unescape(s) for s in re.findall(r"<Say [^>]*>(.*?)</Say>", twiml, re.S))

    @staticmethod
    def next_url(twiml: str) -> str:
        found = re.search(r'<Gather [^>]*action="([^"]+)"', twiml)
        assert found is not None, twiml
        return unescape(found.group(1))


def voice_rows(runtime: Runtime) -> list[VoiceStepRecord]:  # noqa: F811
    with Session(runtime.store.engine) as session:
        return list(session.exec(select(VoiceStepRecord)).all())


async def test_a_call_places_a_ride_reads_the_code_twice_and_texts_it(
    sms: Sms,  # noqa: F811
    runtime: Runtime,  # noqa: F811
) -> None:
    call = Call(sms.client)
    welcome = await call.post(CALL)
    assert '<Say language="fr-FR">' in welcome
    assert '<Gather input="dtmf"' in welcome
    assert "lettres du clavier" in Call.said(welcome)
    menu = await call.post(Call.next_url(welcome), digits="225")  # C A L
    assert "Arrêt Calais" in Call.said(menu)
    assert "Pour Dunkerque, tapez 5." in Call.said(menu)
    placed = await call.post(Call.next_url(menu), digits="5")
    [request] = runtime.engine.state.waiting()
    assert (request.stop_id, request.destination_id) == ("calais-est", "dunkerque-est")
    assert request.phone == RIDER
    assert request.source.channel is Channel.VOICE
    assert request.code is not None
    spelled = ", ".join(request.code)
    assert Call.said(placed).count(spelled) == 2  # read back digit by digit, and repeated
    assert "<Hangup/>" in placed
    assert "attente" not in Call.said(placed)  # no history, no study: no estimate to say
    [text] = [m for m in console(runtime).sent if m.to == RIDER]
    assert request.code in text.body  # the code in writing too


async def test_a_call_says_the_wait_to_expect_when_there_is_an_estimate(
    sms: Sms,  # noqa: F811
    runtime: Runtime,  # noqa: F811
) -> None:
    asked = runtime.clock() - timedelta(weeks=1)  # riders of last week, this hour, 4 min each

    def waits(_line: str, _since: datetime) -> list[tuple[StopId, StopId, datetime, datetime]]:
        ride = (StopId("calais-est"), StopId("dunkerque-est"), asked, asked + timedelta(minutes=4))
        return [ride] * 12

    assert runtime.sms is not None
    runtime.sms.estimates = WaitEstimator(runtime.network, waits, runtime.clock, dict)
    call = Call(sms.client)
    menu = await call.post(Call.next_url(await call.post(CALL)), digits="225")
    placed = Call.said(await call.post(Call.next_url(menu), digits="5"))
    assert "L'attente estimée est de 4 minutes." in placed
    assert placed.index("attente") < placed.index("Votre code")  # before the code is read
    [text] = [m for m in console(runtime).sent if m.to == RIDER]
    assert "Attente estimée: 4 min." in text.body  # the same figure in writing
    # Without any estimate (a stop with no history, no study), nothing is said about the wait.
    runtime.sms.estimates = WaitEstimator(runtime.network, lambda _l, _s: [], runtime.clock, dict)
    other = Call(sms.client, caller="+33622222222")
    menu = await other.post(Call.next_url(await other.post(CALL)), digits="225")
    assert "attente" not in Call.said(await other.post(Call.next_url(menu), digits="5"))


async def test_riders_asking_after_a_driver_announced_a_trip_are_told_it(
    sms: Sms,  # noqa: F811
    runtime: Runtime,  # noqa: F811
) -> None:
    assert runtime.driver_trips is not None
    [line] = runtime.network.lines
    # Leaves Calais in 2 min, passes Marck (8 km) at 60 km/h 8 min later, on to Dunkerque.
    await runtime.driver_trips.declare(
        line, "account:d1", "calais-est", "dunkerque-est", timedelta(minutes=2)
    )
    # No history, no study: the announced driver is the news.
    assert "Conducteur annoncé dans 10 min." in await sms.reply("mrk dunkerque")
    call = Call(sms.client, caller="+33622222222")
    menu = await call.post(Call.next_url(await call.post(CALL)), digits="225")
    placed = Call.said(await call.post(Call.next_url(menu), digits="5"))
    assert "Un conducteur est annoncé dans environ 2 minutes." in placed
    # An expected wait of 4 min at Marck: a driver in 10 min is no better news, not said.
    asked = runtime.clock() - timedelta(weeks=1)

    def waits(_line: str, _since: datetime) -> list[tuple[StopId, StopId, datetime, datetime]]:
        ride = (StopId("marck-est"), StopId("dunkerque-est"), asked, asked + timedelta(minutes=4))
        return [ride] * 12

    assert runtime.sms is not None
    runtime.sms.estimates = WaitEstimator(runtime.network, waits, runtime.clock, dict)
    text = await sms.reply("mrk dunkerque", sender="+33633333333")
    assert "Attente estimée: 4 min." in text
    assert "Conducteur" not in text


async def test_twilio_retrying_the_last_step_never_places_two_requests(
    sms: Sms,  # noqa: F811
    runtime: Runtime,  # noqa: F811
) -> None:
    call = Call(sms.client)
    menu = await call.post(Call.next_url(await call.post(CALL)), digits="225")
    first = await call.post(Call.next_url(menu), digits="5")
    again = await call.post(Call.next_url(menu), digits="5")
    assert again == first
    assert len(runtime.engine.state.requests) == 1
    assert len(voice_rows(runtime)) == 3  # welcome, stop, destination: each answered once
    assert len([m for m in console(runtime).sent if m.to == RIDER]) == 1


async def test_unsigned_or_forged_calls_get_403_and_store_nothing(
    sms: Sms,  # noqa: F811
    runtime: Runtime,  # noqa: F811
) -> None:
    call = Call(sms.client)
    await call.post(CALL, signed=False)
    url = action("/voice/twilio/destination", stop="calais-est")
    await call.post(url, digits="5", signed=False)
    forged = await sms.client.post(
        url,
        data={"CallSid": call.sid, "From": RIDER, "Digits": "5"},
        headers={"X-Twilio-Signature": sign("https://evil.example" + url, {"Digits": "5"})},
    )
    assert forged.status_code == 403
    assert runtime.engine.state.requests == {}
    assert voice_rows(runtime) == []


async def test_garbage_keys_are_asked_again_once_then_a_polite_goodbye(
    sms: Sms,  # noqa: F811
    runtime: Runtime,  # noqa: F811
) -> None:
    call = Call(sms.client)
    again = await call.post(Call.next_url(await call.post(CALL)), digits="000")
    assert "n'est pas reconnu" in Call.said(again)
    bye = await call.post(Call.next_url(again), digits="")  # silence
    assert "Au revoir" in Call.said(bye)
    assert "<Hangup/>" in bye
    menu = await Call(sms.client).post(action("/voice/twilio/stop", **{"try": "1"}), "225")
    wrong = await call.post(Call.next_url(menu), digits="9")
    assert "Choisissez votre destination" in Call.said(wrong)  # the menu once more
    assert "<Hangup/>" in await call.post(Call.next_url(wrong), digits="#")
    assert runtime.engine.state.requests == {}


async def test_codes_sharing_keys_are_told_apart_by_name(
    sms: Sms,  # noqa: F811
    runtime: Runtime,  # noqa: F811
) -> None:
    assert voice.keypad_digits("GSC") == voice.keypad_digits("GRC") == "472"
    call = Call(sms.client)
    which = await call.post(Call.next_url(await call.post(CALL)), digits="472#")
    assert "Plusieurs arrêts" in Call.said(which)
    menu = await call.post(Call.next_url(which), digits="2")
    assert "Arrêt Gravelines" in Call.said(menu)


async def test_a_number_that_wrote_stop_is_not_texted_and_a_hidden_one_is_let_go(
    sms: Sms,  # noqa: F811
    runtime: Runtime,  # noqa: F811
) -> None:
    await sms.reply("STOP")
    call = Call(sms.client)
    menu = await call.post(Call.next_url(await call.post(CALL)), digits="225")
    placed = await call.post(Call.next_url(menu), digits="5")
    assert "Votre code est" in Call.said(placed)
    assert [m for m in console(runtime).sent if m.to == RIDER] == []
    assert runtime.engine.state.waiting()[0].phone == RIDER
    hidden = await Call(sms.client, caller="anonymous").post(CALL)
    assert "numéro est masqué" in Call.said(hidden)


async def test_an_access_request_shows_the_calls_and_an_erasure_unlinks_them(
    sms: Sms,  # noqa: F811
    runtime: Runtime,  # noqa: F811
) -> None:
    call = Call(sms.client)
    await call.post(Call.next_url(await call.post(CALL)), digits="225")
    keys = keys_for(RIDER, "pepper")
    found = personal_data.export(runtime.store.engine, keys, runtime.clock())
    assert [step["step"] for step in found["voice_steps"]] == ["/voice/twilio", STOP_STEP]
    erased = personal_data.erase(runtime.store.engine, keys)
    assert erased.counts["voice_step"] == 2
    assert personal_data.export(runtime.store.engine, keys, runtime.clock())["voice_steps"] == []


async def test_a_caller_past_the_numbers_request_rate_is_told_and_nothing_is_placed(
    sms: Sms,  # noqa: F811
    runtime: Runtime,  # noqa: F811
) -> None:
    for _ in range(4):  # the number's new requests of the window, by SMS
        await sms.reply("CAL dunkerque", sender=RIDER)
    before = len(runtime.engine.state.requests)
    call = Call(sms.client)
    menu = await call.post(Call.next_url(await call.post(CALL)), digits="225")
    refused = await call.post(Call.next_url(menu), digits="5")
    assert "Trop de demandes de ce numéro" in Call.said(refused)
    assert "<Hangup/>" in refused
    assert len(runtime.engine.state.requests) == before
