"""Guessing a waiting rider's code, by SMS and over HTTP, through the real app and lifespan (a
real Mosquitto, SQLite, Twilio-signed webhooks): budgets per number/address and per line; and
through a real `carpool-line serve` that restarts (SQLite and PostgreSQL): the budget stays."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from dispatcher.effects import AlertKind
from dispatcher.model import LineId, StopId
from dispatcher.request_machine import RequestState, RideRequest
from line_service.accounts.book import AccountRole, IssuedToken
from line_service.runtime import Runtime
from sms_gateway import replies
from tests.support.accounts import bearer, issued_tokens
from tests.support.app import console_sender as console
from tests.support.app import served_app as served
from tests.support.brokers import Mosquitto
from tests.support.service import LINE, serving
from tests.support.sms_webhook import RIDER, Sms, webhook_runtime
from tests.support.waiting import wait_until
from tests.test_sms_two_lines import LINE_B, RIDER_B, two_lines_file

DRIVER = "+33698765432"
VALIDATIONS = f"/api/v1/lines/{LINE}/validations"
RuntimeFactory = Callable[..., Runtime]


@pytest.fixture
def make_runtime(mosquitto: Mosquitto, tmp_path: Path) -> RuntimeFactory:
    return functools.partial(webhook_runtime, mosquitto.url, tmp_path)


@pytest.fixture
async def app(make_runtime: RuntimeFactory) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    runtime = make_runtime()
    async with served(runtime) as client:
        yield runtime, client


async def waiting_rider(sms: Sms, runtime: Runtime) -> RideRequest:
    reply = await sms.reply("mrk dunkerque", sender=RIDER)
    assert "Donnez le code" in reply
    [rider] = runtime.engine.state.waiting()
    return rider


def drivers(runtime: Runtime, count: int) -> list[IssuedToken]:
    """`count` signed-in drivers of the runtime's database, each with its own account."""
    phones = [f"+3367{n:07d}" for n in range(count)]
    return issued_tokens(runtime.settings.database_url, phones, AccountRole.DRIVER)


def wrong_codes(right: str | None) -> list[str]:
    return [f"{n:04d}" for n in range(10_000) if f"{n:04d}" != right]


def guessing_alarm(runtime: Runtime) -> str | None:
    alert = runtime.engine.state.alerts.get((AlertKind.CODE_GUESSING, LINE))
    return None if alert is None else alert.message


async def test_a_thousand_numbers_guessing_by_sms_validate_nobody_and_raise_the_alarm(
    app: tuple[Runtime, httpx.AsyncClient],
) -> None:
    runtime, client = app
    sms = Sms(client)
    rider = await waiting_rider(sms, runtime)
    guesses = wrong_codes(rider.code)
    senders = [f"+3367{n:07d}" for n in range(1000)]
    answers: list[str] = []
    for batch in range(0, 1000, 25):
        answers += await asyncio.gather(
            *(sms.reply(guesses[n], sender=senders[n]) for n in range(batch, batch + 25))
        )

    unknown = [text for text in answers if "inconnu" in text]
    locked = [text for text in answers if text.startswith("Trop de codes erronés")]
    assert len(unknown) == 20  # the line's budget a day: then no code is checked
    assert len(locked) == 980
    assert runtime.engine.state.requests[rider.id].state is RequestState.WAITING
    await asyncio.to_thread(wait_until, lambda: guessing_alarm(runtime) is not None, 5, "alarm")
    message = guessing_alarm(runtime) or ""
    assert "wrong drivers' codes" in message
    assert all(number[3:] not in message for number in senders)  # hashed identities only
    # Even the right code, from a number never seen, is not checked while the line is closed.
    answer = await sms.reply(rider.code or "", sender="+33611111111")
    assert answer.startswith("Trop de codes erronés")
    assert runtime.engine.state.requests[rider.id].state is RequestState.WAITING
    assert not [sent for sent in console(runtime).sent if sent.to == RIDER]


async def test_one_number_past_its_budget_gets_one_text_then_silence(
    app: tuple[Runtime, httpx.AsyncClient],
) -> None:
    runtime, client = app
    sms = Sms(client)
    rider = await waiting_rider(sms, runtime)
    guesses = wrong_codes(rider.code)
    for n in range(5):
        assert "inconnu" in await sms.reply(guesses[n], sender=DRIVER)
    told = await sms.reply(guesses[5], sender=DRIVER)
    assert told.startswith("Trop de codes erronés, réessayez dans 24 h")
    assert replies.segments(told) == 1
    assert await sms.reply(guesses[6], sender=DRIVER) == ""
    assert await sms.reply(rider.code or "", sender=DRIVER) == ""  # not even checked
    assert runtime.engine.state.requests[rider.id].state is RequestState.WAITING

    # An honest driver's right code from another number validates during the lock-out.
    assert await sms.reply(rider.code or "", sender="+33622222222") == replies.CODE_VALIDATED
    assert runtime.engine.state.requests[rider.id].state is RequestState.PICKED_UP


async def test_one_driver_past_its_budget_gets_429_with_retry_after(
    app: tuple[Runtime, httpx.AsyncClient],
) -> None:
    runtime, client = app
    rider = await waiting_rider(Sms(client), runtime)
    [driver] = drivers(runtime, 1)
    guesses = wrong_codes(rider.code)
    for n in range(5):
        response = await client.post(
            VALIDATIONS, json={"code": guesses[n]}, headers=bearer(driver.token)
        )
        assert response.status_code == 404
    for code in (guesses[5], rider.code):
        response = await client.post(VALIDATIONS, json={"code": code}, headers=bearer(driver.token))
        assert response.status_code == 429
        assert 86_000 < int(response.headers["Retry-After"]) <= 86_400
    assert runtime.engine.state.requests[rider.id].state is RequestState.WAITING
    # The driver is the token's account: another address changes nothing.
    response = await client.post(
        VALIDATIONS,
        json={"code": rider.code},
        headers={**bearer(driver.token), "X-Forwarded-For": "198.51.100.7"},
    )
    assert response.status_code == 429
    metrics = (await client.get("/metrics")).text
    assert "carpool_wrong_codes_total 5.0" in metrics
    assert "carpool_codes_refused_total 3.0" in metrics


async def test_during_a_line_alarm_who_failed_is_refused_and_a_fresh_driver_validates(
    app: tuple[Runtime, httpx.AsyncClient],
) -> None:
    runtime, client = app
    rider = await waiting_rider(Sms(client), runtime)
    guesses = wrong_codes(rider.code)
    *guessers, honest = drivers(runtime, 11)
    for n, guesser in enumerate(guessers):  # ten drivers, one wrong code each: the alarm
        response = await client.post(
            VALIDATIONS, json={"code": guesses[n]}, headers=bearer(guesser.token)
        )
        assert response.status_code == 404
    await asyncio.to_thread(wait_until, lambda: guessing_alarm(runtime) is not None, 5, "alarm")
    assert guessers[3].account.ref in (guessing_alarm(runtime) or "")

    # A driver who failed is refused on the line, even with the right code…
    response = await client.post(
        VALIDATIONS, json={"code": rider.code}, headers=bearer(guessers[0].token)
    )
    assert response.status_code == 429
    assert runtime.engine.state.requests[rider.id].state is RequestState.WAITING
    # … a driver who never failed validates.
    response = await client.post(
        VALIDATIONS, json={"code": rider.code}, headers=bearer(honest.token)
    )
    assert response.status_code == 200
    assert runtime.engine.state.requests[rider.id].state is RequestState.PICKED_UP
    assert runtime.abuse is not None
    assert LineId(LINE) in runtime.abuse.guesses.alarmed


async def test_a_code_by_sms_is_looked_up_only_on_lines_still_checking_codes(
    make_runtime: RuntimeFactory, tmp_path: Path
) -> None:
    runtime = make_runtime(lines_file=two_lines_file(tmp_path))
    async with served(runtime) as client:
        sms = Sms(client)
        rider_a = await waiting_rider(sms, runtime)
        line_b = runtime.network.line(LINE_B)
        assert line_b is not None
        marck_b = line_b.stop(StopId("b-marck-est"))
        assert marck_b is not None
        assert "Donnez le code" in await sms.reply(f"{marck_b.code} dunkerque", sender=RIDER_B)
        [rider_b] = [r for r in runtime.engine.state.waiting() if r.line_id == LINE_B]
        held = {rider_a.code, rider_b.code}
        guesses = [code for code in wrong_codes(None) if code not in held]
        for n, guesser in enumerate(drivers(runtime, 20)):  # line A's budget, over HTTP
            response = await client.post(
                VALIDATIONS, json={"code": guesses[n]}, headers=bearer(guesser.token)
            )
            assert response.status_code == 404

        # Rider A's code by SMS: line A checks no code; the answer is the one a wrong code gets.
        answer = await sms.reply(rider_a.code or "", sender="+33633333333")
        assert answer == replies.code_unknown_or_suspended(rider_a.code or "")
        wrong = await sms.reply(guesses[30], sender="+33644444444")
        assert wrong == replies.code_unknown_or_suspended(guesses[30])
        assert runtime.engine.state.requests[rider_a.id].state is RequestState.WAITING
        # Line B still checks codes: rider B's driver validates by SMS.
        assert await sms.reply(rider_b.code or "", sender="+33655555555") == replies.CODE_VALIDATED
        assert runtime.engine.state.requests[rider_b.id].state is RequestState.PICKED_UP


def test_a_driver_out_of_wrong_codes_is_still_refused_after_the_service_restarts(
    mosquitto: Mosquitto, tmp_path: Path, database_url: str
) -> None:
    with serving(mosquitto.url, tmp_path, database_url) as service:
        [driver] = issued_tokens(service.database_url, [DRIVER], AccountRole.DRIVER)
        url = f"{service.base_url}{VALIDATIONS}"
        for code in wrong_codes(None)[:5]:
            response = httpx.post(url, json={"code": code}, headers=bearer(driver.token))
            assert response.status_code == 404
        response = httpx.post(url, json={"code": "0005"}, headers=bearer(driver.token))
        assert response.status_code == 429
        service.stop()
        service.start()
        response = httpx.post(url, json={"code": "0006"}, headers=bearer(driver.token))
        assert response.status_code == 429  # not a fresh budget of five
        assert 86_000 < int(response.headers["Retry-After"]) <= 86_400
        # Another driver was never charged: its code is checked.
        [other] = issued_tokens(service.database_url, ["+33622222222"], AccountRole.DRIVER)
        response = httpx.post(url, json={"code": "0007"}, headers=bearer(other.token))
        assert response.status_code == 404
