"""End to end by SMS: the real service process, a real Mosquitto, Twilio's REST API stood in for."""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.brokers import Mosquitto
from tests.support.mqtt_probe import MqttProbe
from tests.support.service import LINE, ServiceProcess, serving
from tests.support.twilio_standin import (
    FROM_NUMBER,
    TwilioStandIn,
    text_as_twilio,
    twilio_env,
)
from tests.support.waiting import wait_until

PREFIX = f"carpool/v1/{LINE}"
SIGNS = ("pmv-marck-est-1", "pmv-marck-est-2")
PUBLIC_URL = "https://carpool.example"
RIDER = "+33612345678"
DRIVER = "+33698765432"


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    server = TwilioStandIn()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def service(
    mosquitto: Mosquitto, tmp_path: Path, database_url: str, standin: TwilioStandIn
) -> Iterator[ServiceProcess]:
    with serving(
        mosquitto.url, tmp_path, database_url, extra_env=twilio_env(standin.base_url, "e2e-salt")
    ) as process:
        yield process


def text(service: ServiceProcess, body: str, sender: str = RIDER) -> str:
    """Send a signed SMS as Twilio would; return the TwiML reply's message."""
    return text_as_twilio(service.base_url, body, sender, PUBLIC_URL)


def shows_destination(probe: MqttProbe, sign_id: str, destination: str) -> bool:
    shown = probe.last(f"{PREFIX}/signs/{sign_id}/display")
    return shown is not None and any(destination in row for page in shown["pages"] for row in page)


def dark(probe: MqttProbe, sign_id: str) -> bool:
    shown = probe.last(f"{PREFIX}/signs/{sign_id}/display")
    return shown is not None and shown["pages"] == []


def test_sms_lights_the_stop_signs_and_annuler_darkens_them(
    service: ServiceProcess, probe: MqttProbe, standin: TwilioStandIn
) -> None:
    reply = text(service, "MRK dunkerke")
    assert "Donnez le code" in reply
    for sign_id in SIGNS:
        lit = functools.partial(shows_destination, probe, sign_id, "DUNKERQUE")
        wait_until(lit, 10, f"{sign_id} lit")

    assert text(service, "ANNULER") == "Demande annulée, panneaux éteints. Bonne journée."
    for sign_id in SIGNS:
        wait_until(functools.partial(dark, probe, sign_id), 10, f"{sign_id} dark")
    assert standin.received == []  # the cancel was answered in the reply, not by a second SMS
    assert RIDER not in service.log()
    assert RIDER[3:] not in service.log()


def test_a_driver_code_by_sms_darkens_the_signs_and_texts_the_rider(
    service: ServiceProcess, probe: MqttProbe, standin: TwilioStandIn
) -> None:
    reply = text(service, "mrk gravelines")
    code = re.search(r"code (\d{4})", reply)
    assert code is not None, reply
    wait_until(lambda: shows_destination(probe, SIGNS[0], "GRAVELINES"), 10, "sign lit")

    assert text(service, code.group(1), sender=DRIVER) == "Merci! Trajet validé, bon covoiturage."
    wait_until(lambda: dark(probe, SIGNS[0]), 10, "sign dark")
    wait_until(lambda: standin.bodies_to(RIDER) != [], 10, "the rider's SMS at Twilio")
    [told] = standin.received
    assert (told.to, told.from_) == (RIDER, FROM_NUMBER)
    assert told.body.startswith(f"Bon voyage! Le conducteur a validé votre code {code.group(1)}")
    assert told.status_callback == PUBLIC_URL + "/sms/twilio/status"
    assert DRIVER not in service.log()
