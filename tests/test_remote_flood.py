"""Remote asks (app, SMS) cannot crowd out a rider at the terminal, and are rate-limited per
phone and per address: the real app and lifespan, a real Mosquitto, Twilio-signed webhooks."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from dispatcher.model import StopId
from line_service.accounts.book import AccountRole
from line_service.runtime import Runtime
from sms_gateway import replies
from tests.support.accounts import account_tokens, bearer
from tests.support.app import served_app as served
from tests.support.brokers import Mosquitto
from tests.support.mqtt_probe import MqttProbe
from tests.support.service import LINE
from tests.support.sms_webhook import Sms, webhook_runtime
from tests.test_service_e2e import PREFIX, TERMINAL, press

MARCK = StopId("marck-est")
REQUESTS = "/api/v1/requests"
ASK = {"line_id": LINE, "stop_id": MARCK, "destination_id": "dunkerque-est"}


@pytest.fixture
def make_runtime(mosquitto: Mosquitto, tmp_path: Path) -> Callable[..., Runtime]:
    return functools.partial(webhook_runtime, mosquitto.url, tmp_path)


@pytest.fixture
async def behind_proxy(
    make_runtime: Callable[..., Runtime],
) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """The app behind a trusted proxy on 127.0.0.1: X-Forwarded-For names each client."""
    runtime = make_runtime(trusted_proxies="127.0.0.1")
    async with served(runtime) as client:
        yield runtime, client


def from_address(n: int) -> dict[str, str]:
    return {"X-Forwarded-For": f"198.51.100.{n}"}


def riders(runtime: Runtime, phones: list[str]) -> list[dict[str, str]]:
    """The Authorization header of a signed-in rider for each number."""
    tokens = account_tokens(runtime.settings.database_url, phones, AccountRole.RIDER)
    return [bearer(token) for token in tokens]


def numbers(count: int, first: int = 0) -> list[str]:
    return [f"+3366{n:07d}" for n in range(first, first + count)]


async def test_a_terminal_press_is_accepted_at_a_stop_flooded_by_remote_asks(
    behind_proxy: tuple[Runtime, httpx.AsyncClient], probe: MqttProbe
) -> None:
    runtime, client = behind_proxy
    states = []
    # Forty app riders, each signed in with its own number and asking from its own address.
    for n, rider in enumerate(riders(runtime, numbers(40))):
        response = await client.post(REQUESTS, json=ASK, headers={**rider, **from_address(n)})
        assert response.status_code == 201
        states.append((response.json()["state"], response.json()["cause"]))
    assert states[:4] == [("waiting", "requested")] * 4
    assert set(states[4:]) == {("refused", "remote_full")}
    sms = Sms(client)
    for n in range(10):
        assert await sms.reply("MRK dunkerque", sender=f"+3367{n:07d}") == replies.REMOTE_FULL
    assert len(runtime.engine.state.waiting_at(MARCK)) == 4

    press(probe, "at-the-stop")
    screen = await asyncio.to_thread(  # the engine runs on this loop: wait off it
        probe.wait_last,
        f"{PREFIX}/terminals/{TERMINAL}/screen",
        lambda s: s["request_id"] == "at-the-stop",
    )
    assert screen["state"] == "waiting"
    assert len(screen["code"]) == 4
    assert len(runtime.engine.state.waiting_at(MARCK)) == 5


async def test_one_phone_holds_one_waiting_remote_request_over_sms_and_http(
    behind_proxy: tuple[Runtime, httpx.AsyncClient],
) -> None:
    runtime, client = behind_proxy
    phone = "+33612345678"
    [rider] = riders(runtime, [phone])
    first = await client.post(REQUESTS, json=ASK, headers=rider)
    assert first.json()["state"] == "waiting"
    answer = await Sms(client).reply("CAL gravelines", sender=phone)
    assert answer.startswith("Vous avez déjà une demande en cours vers Dunkerque")
    again = await client.post(
        REQUESTS, json={**ASK, "stop_id": "calais-est"}, headers={**rider, **from_address(9)}
    )
    assert (again.json()["state"], again.json()["cause"]) == ("refused", "already_waiting")
    assert [request.phone for request in runtime.engine.state.waiting()] == [phone]


async def test_new_requests_past_the_rate_get_429_per_address_and_per_phone(
    behind_proxy: tuple[Runtime, httpx.AsyncClient],
) -> None:
    runtime, client = behind_proxy
    *many, late, other = riders(runtime, numbers(22))
    for rider in many:  # twenty riders behind one address
        response = await client.post(REQUESTS, json=ASK, headers={**rider, **from_address(1)})
        assert response.status_code == 201
    refused = await client.post(REQUESTS, json=ASK, headers={**late, **from_address(1)})
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 900
    answer = await client.post(REQUESTS, json=ASK, headers={**late, **from_address(2)})
    assert answer.status_code == 201

    # One phone, many addresses: four requests a window, then 429.
    codes = [
        (
            await client.post(REQUESTS, json=ASK, headers={**other, **from_address(10 + n)})
        ).status_code
        for n in range(5)
    ]
    assert codes == [201, 201, 201, 201, 429]


async def test_sms_ride_requests_past_the_rate_get_one_text_then_silence(
    make_runtime: Callable[..., Runtime],
) -> None:
    runtime = make_runtime(request_rate_per_identity=2)
    async with served(runtime) as client:
        sms = Sms(client)
        assert "Donnez le code" in await sms.reply("MRK dunkerque")
        assert (await sms.reply("ANNULER")).startswith("Demande annulée")
        assert "Donnez le code" in await sms.reply("MRK dunkerque")
        assert (await sms.reply("ANNULER")).startswith("Demande annulée")
        told = await sms.reply("MRK dunkerque")
        assert told == "Trop de demandes de ce numéro, réessayez dans 15 min."
        assert await sms.reply("MRK dunkerque") == ""
        assert runtime.engine.state.waiting() == ()
