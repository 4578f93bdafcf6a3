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
from line_service.runtime import Runtime
from sms_gateway import replies
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


async def test_a_terminal_press_is_accepted_at_a_stop_flooded_by_remote_asks(
    behind_proxy: tuple[Runtime, httpx.AsyncClient], probe: MqttProbe
) -> None:
    runtime, client = behind_proxy
    states = []
    for n in range(40):  # forty anonymous app requests, each from its own address
        response = await client.post(REQUESTS, json=ASK, headers=from_address(n))
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
    first = await client.post(REQUESTS, json={**ASK, "phone": "06 12 34 56 78"})
    assert first.json()["state"] == "waiting"
    answer = await Sms(client).reply("CAL gravelines", sender=phone)
    assert answer.startswith("Vous avez déjà une demande en cours vers Dunkerque")
    again = await client.post(
        REQUESTS, json={**ASK, "stop_id": "calais-est", "phone": phone}, headers=from_address(9)
    )
    assert (again.json()["state"], again.json()["cause"]) == ("refused", "already_waiting")
    assert [request.phone for request in runtime.engine.state.waiting()] == [phone]


async def test_new_requests_past_the_rate_get_429_per_address_and_per_phone(
    behind_proxy: tuple[Runtime, httpx.AsyncClient],
) -> None:
    _runtime, client = behind_proxy
    for _ in range(20):
        response = await client.post(REQUESTS, json=ASK, headers=from_address(1))
        assert response.status_code == 201
    refused = await client.post(REQUESTS, json=ASK, headers=from_address(1))
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 900
    assert (await client.post(REQUESTS, json=ASK, headers=from_address(2))).status_code == 201

    # One phone, many addresses: four requests a window, then 429.
    with_phone = {**ASK, "phone": "+33611111111"}
    codes = [
        (await client.post(REQUESTS, json=with_phone, headers=from_address(10 + n))).status_code
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
