"""A stuck or failing SMS provider never delays dispatch (real service, Mosquitto, Twilio)."""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest

from tests.support.brokers import Mosquitto
from tests.support.mqtt_probe import MqttProbe
from tests.support.service import LINE, ServiceProcess, serving
from tests.support.twilio_standin import (
    TwilioStandIn,
    text_as_twilio,
    twilio_env,
)
from tests.support.waiting import wait_until

PREFIX = f"carpool/v1/{LINE}"
TERMINAL = "t-gravelines-est"
SIGN = "pmv-gravelines-est-1"
PUBLIC_URL = "https://carpool.example"
RIDERS = ("+33612345601", "+33612345602", "+33612345603")
DRIVER = "+33698765432"
HOLD_LIMIT_SECONDS = 60.0  # a safety net: the test releases the provider itself


@dataclass
class StuckTwilio(TwilioStandIn):
    """The Twilio stand-in, but each POST hangs until `release` is set (a provider that froze)."""

    release: threading.Event = field(default_factory=threading.Event)
    holding: int = 0

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.holding += 1
        self.release.wait(HOLD_LIMIT_SECONDS)
        with self._lock:
            self.holding -= 1
        super()._answer(handler)

    def held(self) -> int:
        """How many sends are hanging now."""
        with self._lock:
            return self.holding


@pytest.fixture
def standin() -> Iterator[StuckTwilio]:
    server = StuckTwilio()
    server.start()
    yield server
    server.release.set()
    server.stop()


@pytest.fixture
def service(
    mosquitto: Mosquitto, tmp_path: Path, database_url: str, standin: StuckTwilio
) -> Iterator[ServiceProcess]:
    with serving(
        mosquitto.url,
        tmp_path,
        database_url,
        extra_env=twilio_env(standin.base_url, "slow-provider-salt"),
    ) as process:
        yield process


def text(service: ServiceProcess, body: str, sender: str) -> str:
    """Send a signed SMS as Twilio would; return the TwiML reply's message."""
    return text_as_twilio(service.base_url, body, sender, PUBLIC_URL)


def ride_validated(service: ServiceProcess, rider: str) -> None:
    """A rider asks by SMS and a driver texts the code: the rider is to be told by SMS."""
    code = re.search(r"code (\d{4})", text(service, "MRK dunkerque", rider))
    assert code is not None
    reply = text(service, code.group(1), DRIVER)
    assert reply == "Merci! Trajet validé, bon covoiturage.", (reply, service.log()[-3000:])


def press_lights_the_sign_and_cancel_darkens_it(probe: MqttProbe, request_id: str) -> None:
    """A terminal press through Mosquitto: sign lit, screen confirms; then cancelled, dark."""
    terminal = f"{PREFIX}/terminals/{TERMINAL}"
    probe.publish(
        f"{terminal}/request",
        {
            "v": 1,
            "request_id": request_id,
            "destination": "dunkerque-est",
            "seats": 1,
            "pressed_at": "2026-11-23T06:45:00Z",
        },
    )
    probe.wait_last(f"{PREFIX}/signs/{SIGN}/display", lambda d: "DUNKERQUE" in str(d["pages"]))
    screen = probe.wait_last(
        f"{terminal}/screen", lambda s: s["request_id"] == request_id and s["state"] == "waiting"
    )
    assert len(screen["code"]) == 4
    probe.publish(f"{terminal}/cancel", {"v": 1, "request_id": request_id, "reason": "cancelled"})
    probe.wait_last(f"{PREFIX}/signs/{SIGN}/display", lambda d: d["pages"] == [])
    probe.wait_last(f"{terminal}/screen", lambda s: s["state"] == "cancelled")


def test_a_hanging_provider_does_not_delay_signs_and_texts_go_out_once_it_recovers(
    service: ServiceProcess, probe: MqttProbe, standin: StuckTwilio
) -> None:
    for rider in RIDERS:
        ride_validated(service, rider)
    wait_until(lambda: standin.held() >= 2, 10, "both senders stuck at the provider")

    for attempt in range(3):
        press_lights_the_sign_and_cancel_darkens_it(probe, f"while-stuck-{attempt}")
    assert httpx.get(f"{service.base_url}/readyz", timeout=5).status_code == 200
    assert standin.held() >= 2  # all of that happened while the provider was still hanging
    assert standin.received == []

    standin.release.set()
    for rider in RIDERS:
        told = functools.partial(standin.bodies_to, rider)
        wait_until(lambda: told() != [], 60, f"the SMS to …{rider[-2:]}")  # noqa: B023
    assert all(body.startswith("Bon voyage!") for r in RIDERS for body in standin.bodies_to(r))
    assert service.process is not None
    assert service.process.poll() is None
    log = service.log()
    assert "Traceback" not in log
    for number in (*RIDERS, DRIVER):
        assert number not in log
        assert number[3:] not in log


def test_a_failing_provider_is_retried_then_dropped_with_a_log_and_dispatch_goes_on(
    service: ServiceProcess, probe: MqttProbe, standin: StuckTwilio
) -> None:
    standin.release.set()
    standin.failures.extend([500] * 4)  # every attempt of the first text fails

    ride_validated(service, RIDERS[0])
    press_lights_the_sign_and_cancel_darkens_it(probe, "while-failing")
    wait_until(lambda: "sms.dropped" in service.log(), 30, "the text dropped after its retries")

    ride_validated(service, RIDERS[1])
    wait_until(lambda: standin.bodies_to(RIDERS[1]) != [], 30, "the next text delivered")
    press_lights_the_sign_and_cancel_darkens_it(probe, "after-failing")
    assert standin.bodies_to(RIDERS[0]) == []
    log = service.log()
    assert log.count('"sms.send_failed"') == 4
    assert '"status": 500' in log
    assert "Traceback" not in log
    assert RIDERS[0] not in log
