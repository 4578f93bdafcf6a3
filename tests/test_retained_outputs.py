"""The service's outputs to devices are retained MQTT messages; devices' requests are not.

A sign or terminal that (re)connects must get its current display at once from the broker, so
the check is made with a probe that subscribes only after the service published.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.brokers import Mosquitto
from tests.support.mqtt_probe import MqttProbe, Received
from tests.support.service import LINE, ServiceProcess, serving
from tests.support.waiting import wait_until

PREFIX = f"carpool/v1/{LINE}"
TERMINAL = "t-marck-est"
SIGN = "pmv-marck-est-1"
DISPLAY = f"{PREFIX}/signs/{SIGN}/display"
SCREEN = f"{PREFIX}/terminals/{TERMINAL}/screen"
REQUEST = f"{PREFIX}/terminals/{TERMINAL}/request"


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[ServiceProcess]:
    with serving(mosquitto.url, tmp_path) as process:
        yield process


def lit(probe: MqttProbe) -> bool:
    shown = probe.last(DISPLAY)
    return shown is not None and any("DUNKERQUE" in row for page in shown["pages"] for row in page)


def first(probe: MqttProbe, topic: str) -> Received:
    wait_until(lambda: bool(probe.deliveries(topic)), 5, f"a message on {topic}")
    return probe.deliveries(topic)[0]


def test_a_late_subscriber_gets_the_display_and_screen_retained_but_no_request(
    service: ServiceProcess, probe: MqttProbe, mosquitto: Mosquitto
) -> None:
    probe.publish(
        REQUEST,
        {
            "v": 1,
            "request_id": "retained-1",
            "destination": "dunkerque-est",
            "seats": 1,
            "pressed_at": "2026-11-23T06:45:00Z",
        },
    )
    wait_until(lambda: lit(probe), 5, f"{SIGN} lit")
    probe.wait_last(SCREEN, lambda screen: screen["state"] == "waiting")
    # A subscriber that was there when the request went out saw it live (never retained).
    assert [seen.retain for seen in probe.deliveries(REQUEST)] == [False]

    late = MqttProbe(mosquitto.port, (f"{PREFIX}/#", "carpool/v1/dispatcher/status"))
    try:
        display = first(late, DISPLAY)
        assert display.retain, "a sign connecting now would stay dark until the next refresh"
        assert lit(late)
        screen = first(late, SCREEN)
        assert screen.retain
        assert late.last(SCREEN)["state"] == "waiting"  # type: ignore[index]
        presence = first(late, "carpool/v1/dispatcher/status")
        assert presence.retain
        assert late.last("carpool/v1/dispatcher/status")["online"] is True  # type: ignore[index]
        # Everything the broker replayed is retained; a device's request is never replayed.
        replayed = [seen for seen in late.received if seen.retain]
        assert replayed
        assert not any(seen.topic.endswith(("/request", "/cancel")) for seen in late.received)
    finally:
        late.close()
