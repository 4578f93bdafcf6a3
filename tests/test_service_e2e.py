"""End to end: the real service, a real Mosquitto, SQLite and PostgreSQL, driven as devices do."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from line_service.accounts.book import AccountRole
from stop_devices.mqtt_link import BrokerAddress
from stop_devices.sim.simulator import VirtualSign
from tests.support.accounts import account_token, bearer
from tests.support.brokers import Mosquitto
from tests.support.mqtt_probe import MqttProbe
from tests.support.service import LINE, ServiceProcess, write_lines_file
from tests.support.waiting import wait_until

PREFIX = f"carpool/v1/{LINE}"
TERMINAL = "t-marck-est"
SIGNS = ("pmv-marck-est-1", "pmv-marck-est-2")


def press(
    probe: MqttProbe, request_id: str, destination: str = "dunkerque-est", terminal: str = TERMINAL
) -> None:
    probe.publish(
        f"{PREFIX}/terminals/{terminal}/request",
        {
            "v": 1,
            "request_id": request_id,
            "destination": destination,
            "seats": 1,
            "pressed_at": "2026-11-23T06:45:00Z",
        },
    )


def display(probe: MqttProbe, sign: str) -> dict[str, Any] | None:
    return probe.last(f"{PREFIX}/signs/{sign}/display")


def shows(probe: MqttProbe, sign: str, text: str) -> bool:
    shown = display(probe, sign)
    return shown is not None and any(text in row for page in shown["pages"] for row in page)


def dark(probe: MqttProbe, sign: str) -> bool:
    shown = display(probe, sign)
    return shown is not None and shown["pages"] == []


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path, database_url: str) -> Iterator[ServiceProcess]:
    lines = write_lines_file(tmp_path, sign_lease_seconds=4)
    process = ServiceProcess(
        broker_url=mosquitto.url,
        database_url=database_url,
        lines_file=lines,
        directory=tmp_path,
        extra_env={"CARPOOL_LEASE_REFRESH_SECONDS": "1"},
    )
    process.start()
    yield process
    process.stop()


def test_press_lights_every_sign_of_the_stop_and_cancel_darkens_them(
    service: ServiceProcess, probe: MqttProbe
) -> None:
    press(probe, "press-1")
    for sign in SIGNS:
        wait_until(functools.partial(shows, probe, sign, "DUNKERQUE"), 1.0, f"{sign} lit")
        assert display(probe, sign)["pages"] == [["COVOITURAGE", "DUNKERQUE"]]  # type: ignore[index]
    screen = probe.wait_last(
        f"{PREFIX}/terminals/{TERMINAL}/screen", lambda s: s["state"] == "waiting"
    )
    assert screen["request_id"] == "press-1"
    assert len(screen["code"]) == 4
    # Signs of other stops stay dark: their (retained) display is present and blank.
    wait_until(functools.partial(dark, probe, "pmv-calais-est-1"), 1.0, "Calais sign blank")

    probe.publish(
        f"{PREFIX}/terminals/{TERMINAL}/cancel",
        {"v": 1, "request_id": "press-1", "reason": "cancelled"},
    )
    for sign in SIGNS:
        wait_until(functools.partial(dark, probe, sign), 1.0, f"{sign} dark")
    probe.wait_last(f"{PREFIX}/terminals/{TERMINAL}/screen", lambda s: s["state"] == "cancelled")


def test_pressing_again_and_again_makes_one_waiting_rider(
    service: ServiceProcess, probe: MqttProbe
) -> None:
    for attempt in range(5):
        press(probe, f"again-{attempt}")
    press(probe, "again-0")  # a resend of the first press
    probe.wait_last(
        f"{PREFIX}/terminals/{TERMINAL}/screen",
        lambda s: s["request_id"] == "again-0" and s["state"] == "waiting",
    )
    live = httpx.get(f"{service.base_url}/api/v1/lines/{LINE}/live").json()
    assert len(live["waiting"]) == 1


def test_destination_behind_the_stop_is_refused_and_lights_nothing(
    service: ServiceProcess, probe: MqttProbe
) -> None:
    press(probe, "wrong-way", destination="calais-est", terminal="t-gravelines-est")
    screen = probe.wait_last(
        f"{PREFIX}/terminals/t-gravelines-est/screen", lambda s: s["request_id"] == "wrong-way"
    )
    assert screen["state"] == "refused"
    assert screen["code"] is None
    live = httpx.get(f"{service.base_url}/api/v1/lines/{LINE}/live").json()
    assert live["waiting"] == []


def test_garbage_is_dropped_with_a_reason_and_the_service_keeps_serving(
    service: ServiceProcess, probe: MqttProbe
) -> None:
    garbage: list[tuple[str, bytes | str | dict[str, Any]]] = [
        (f"{PREFIX}/terminals/{TERMINAL}/request", b"\xff\xfe not json"),
        (f"{PREFIX}/terminals/{TERMINAL}/request", {"v": 1, "request_id": "x", "destination": 7}),
        (
            f"{PREFIX}/terminals/{TERMINAL}/request",
            {"v": 2, "request_id": "x", "destination": "dunkerque-est"},
        ),
        (f"{PREFIX}/terminals/{TERMINAL}/request", "x" * 10_000),
        (
            f"{PREFIX}/terminals/t-nowhere/request",
            {"v": 1, "request_id": "x", "destination": "dunkerque-est"},
        ),
        (
            f"carpool/v1/other-line/terminals/{TERMINAL}/request",
            {"v": 1, "request_id": "x", "destination": "dunkerque-est"},
        ),
        (f"{PREFIX}/signs/pmv-marck-est-1/state", {"v": 1, "seq": -4, "pages": "lots"}),
    ]
    for topic, payload in garbage:
        probe.publish(topic, payload)

    def logged_drop(reason: str) -> bool:
        return f'"reason": "{reason}"' in service.log()

    for reason in ("not_json", "invalid_payload", "too_large", "unknown_device", "wrong_line"):
        wait_until(functools.partial(logged_drop, reason), 5, f"a logged drop {reason}")
    press(probe, "after-garbage")
    wait_until(lambda: shows(probe, SIGNS[0], "DUNKERQUE"), 1.0, "sign lit after garbage")
    assert service.ready()


def test_sigkill_and_restart_keeps_the_waiting_rider_and_relights_the_signs(
    service: ServiceProcess, probe: MqttProbe
) -> None:
    press(probe, "survivor")
    screen = probe.wait_last(
        f"{PREFIX}/terminals/{TERMINAL}/screen", lambda s: s["state"] == "waiting"
    )
    lit = display(probe, SIGNS[0])
    assert lit is not None
    service.kill()
    probe.wait_last("carpool/v1/dispatcher/status", lambda s: s["online"] is False, timeout=60)
    service.start()

    def reasserted(sign: str) -> bool:
        return (display(probe, sign) or {}).get("seq", 0) > lit["seq"] and shows(
            probe, sign, "DUNKERQUE"
        )

    for sign in SIGNS:
        wait_until(functools.partial(reasserted, sign), 5, f"{sign} re-asserted after restart")
    live = httpx.get(f"{service.base_url}/api/v1/lines/{LINE}/live").json()
    assert [r["stop_id"] for r in live["waiting"]] == ["marck-est"]
    restarted_screen = probe.wait_last(
        f"{PREFIX}/terminals/{TERMINAL}/screen", lambda s: s["seq"] > screen["seq"]
    )
    assert restarted_screen["code"] == screen["code"]


def test_driver_validation_picks_the_rider_up_and_darkens_signs(
    service: ServiceProcess, probe: MqttProbe
) -> None:
    press(probe, "to-validate", destination="gravelines-est")
    screen = probe.wait_last(
        f"{PREFIX}/terminals/{TERMINAL}/screen", lambda s: s["state"] == "waiting"
    )
    driver = bearer(account_token(service.database_url, "+33698765432", AccountRole.DRIVER))
    answer = httpx.post(
        f"{service.base_url}/api/v1/lines/{LINE}/validations",
        json={"code": screen["code"]},
        headers=driver,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["state"] == "picked_up"
    wait_until(lambda: dark(probe, SIGNS[0]), 1.0, "sign dark after pickup")
    probe.wait_last(f"{PREFIX}/terminals/{TERMINAL}/screen", lambda s: s["state"] == "picked_up")
    again = httpx.post(
        f"{service.base_url}/api/v1/lines/{LINE}/validations",
        json={"code": screen["code"]},
        headers=driver,
    )
    assert again.status_code == 404


def test_display_carries_a_lease_that_is_refreshed_while_the_rider_waits(
    service: ServiceProcess, probe: MqttProbe
) -> None:
    press(probe, "leased")
    first = probe.wait_last(f"{PREFIX}/signs/{SIGNS[0]}/display", lambda d: d["pages"] != [])
    refreshed = probe.wait_last(
        f"{PREFIX}/signs/{SIGNS[0]}/display",
        lambda d: d["seq"] > first["seq"] and d["expires_at"] > first["expires_at"],
        timeout=5,
    )
    assert refreshed["pages"] == first["pages"]


def test_dispatcher_presence_is_retained_online(service: ServiceProcess, probe: MqttProbe) -> None:
    status = probe.wait_last("carpool/v1/dispatcher/status", lambda s: True)
    assert status["online"] is True
    assert status["v"] == 1


async def test_a_lapsed_lease_darkens_the_sign_when_the_dispatcher_dies(
    service: ServiceProcess, probe: MqttProbe, mosquitto: Mosquitto
) -> None:
    sign = VirtualSign(BrokerAddress("127.0.0.1", mosquitto.port), LINE, SIGNS[0])
    runner = asyncio.create_task(sign.run())
    try:
        await sign.wait_for(lambda s: s.connected, 5)
        press(probe, "orphan")
        await sign.wait_for(lambda s: s.lit, 2)
        lit_until = sign.expires_at
        assert lit_until is not None
        service.kill()  # nobody will renew the lease now
        await sign.wait_for(lambda s: not s.lit, 10)
        assert datetime.now(UTC) >= lit_until
        assert sign.history[-1][1] == ()
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner


def metric(service: ServiceProcess, sample: str) -> float:
    """One sample of /metrics, e.g. 'carpool_mqtt_dropped_total{reason="unknown_device"}'."""
    for row in httpx.get(f"{service.base_url}/metrics").text.splitlines():
        name, _, value = row.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0


def alerted(service: ServiceProcess, device: str) -> bool:
    live = httpx.get(f"{service.base_url}/api/v1/lines/{LINE}/live").json()
    return any(device in alert for alert in live["alerts"])


def sign_online(service: ServiceProcess, sign: str) -> bool | None:
    live = httpx.get(f"{service.base_url}/api/v1/lines/{LINE}/live").json()
    found: bool | None = next(s["online"] for s in live["signs"] if s["id"] == sign)
    return found


def test_repeated_heartbeats_are_skipped_but_every_change_of_presence_is_seen(
    service: ServiceProcess, probe: MqttProbe
) -> None:
    sign = SIGNS[0]
    status = f"{PREFIX}/signs/{sign}/status"
    for _ in range(3):
        probe.publish(status, {"v": 1, "online": True})
    probe.publish(status, {"v": 1, "online": False})
    wait_until(lambda: alerted(service, sign), 2.0, "an offline alert for the sign")
    # The two heartbeats repeating the first were skipped before decoding; nothing else was.
    assert metric(service, "carpool_mqtt_repeated_statuses_total") == 2

    probe.publish(status, {"v": 1, "online": True})  # the same bytes as before it went offline
    # Seen at once; its alert clears once it has stayed online a while (a flap is no return).
    wait_until(lambda: sign_online(service, sign) is True, 2.0, "the sign seen back online")

    for _ in range(2):  # a device lines.yaml does not know is dropped each time, never remembered
        probe.publish(f"{PREFIX}/signs/pmv-nowhere/status", {"v": 1, "online": True})
    unknown = 'carpool_mqtt_dropped_total{reason="unknown_device"}'
    wait_until(lambda: metric(service, unknown) == 2, 2.0, "both unknown heartbeats dropped")
    assert metric(service, "carpool_mqtt_repeated_statuses_total") == 2


def test_sigterm_stops_http_then_dispatch_and_exits_with_the_signal(
    service: ServiceProcess, probe: MqttProbe
) -> None:
    press(probe, "before-stop")
    probe.wait_last(f"{PREFIX}/terminals/{TERMINAL}/screen", lambda s: s["state"] == "waiting")
    process = service.process
    assert process is not None
    process.terminate()
    assert process.wait(15) == -signal.SIGTERM
    log = service.log()
    assert log.index('"service.stopped"') > log.index('"service.started"')
    assert "Traceback" not in log
