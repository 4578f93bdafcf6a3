"""The safety monitor itself: it must catch a phantom passenger, and only a phantom passenger."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from dispatcher.model import Network
from line_service.network.lines_file import load_network
from stop_devices.mqtt_link import BrokerAddress, Received
from stop_devices.sim.safety_monitor import SafetyLedger
from tests.support.brokers import Mosquitto
from tests.support.faults import eventually, watching
from tests.support.mqtt_probe import MqttProbe
from tests.support.service import LINE, write_lines_file

PREFIX = f"carpool/v1/{LINE}"
T0 = datetime(2026, 11, 23, 6, 45, tzinfo=UTC)
LEASE = timedelta(seconds=10)


@pytest.fixture
def network(tmp_path: Path) -> Network:
    return load_network(write_lines_file(tmp_path, sign_lease_seconds=10))


def message(topic: str, body: dict[str, Any]) -> Received:
    return Received(f"{PREFIX}/{topic}", json.dumps(body).encode(), False)


def display(seq: int, pages: list[list[str]], expires_at: datetime) -> dict[str, Any]:
    return {"v": 1, "seq": seq, "pages": pages, "expires_at": expires_at.isoformat()}


LIT = [["COVOITURAGE", "DUNKERQUE"]]


def rider_then_cancel(ledger: SafetyLedger, lit_until: datetime) -> None:
    press = {"v": 1, "request_id": "r1", "destination": "dunkerque-est"}
    ledger.observe(message("terminals/t-marck-est/request", press), T0)
    for sign in ("pmv-marck-est-1", "pmv-marck-est-2"):
        ledger.observe(message(f"signs/{sign}/display", display(1, LIT, lit_until)), T0)
    cancel = {"v": 1, "request_id": "r1", "reason": "cancelled"}
    ledger.observe(message("terminals/t-marck-est/cancel", cancel), T0 + timedelta(seconds=1))


def test_a_sign_still_lit_a_lease_after_the_rider_left_is_a_violation(network: Network) -> None:
    ledger = SafetyLedger(network)
    rider_then_cancel(ledger, lit_until=T0 + timedelta(hours=1))  # a dispatcher that forgot it
    ledger.check(T0 + timedelta(seconds=1) + LEASE)
    assert ledger.report().safe  # exactly one lease: still allowed
    ledger.check(T0 + timedelta(seconds=2) + LEASE)
    report = ledger.report()
    assert sorted(v.sign_id for v in report.violations) == ["pmv-marck-est-1", "pmv-marck-est-2"]
    assert report.violations[0].stop_id == "marck-est"


def test_a_sign_darkened_promptly_is_safe_and_its_phantom_time_is_measured(
    network: Network,
) -> None:
    ledger = SafetyLedger(network)
    rider_then_cancel(ledger, lit_until=T0 + timedelta(hours=1))
    blank = T0 + timedelta(seconds=1, milliseconds=30)
    for sign in ("pmv-marck-est-1", "pmv-marck-est-2"):
        ledger.observe(message(f"signs/{sign}/display", display(2, [], blank)), blank)
    ledger.check(T0 + timedelta(minutes=5))
    report = ledger.report()
    assert report.safe
    assert report.longest_phantom == timedelta(milliseconds=30)


def test_a_lapsed_lease_and_an_operator_message_are_no_phantom(network: Network) -> None:
    ledger = SafetyLedger(network)
    rider_then_cancel(ledger, lit_until=T0 + timedelta(seconds=5))  # the sign blanks itself
    operator = display(1, [["TRAVAUX", "RN1"]], T0 + timedelta(hours=1))
    ledger.observe(message("signs/pmv-calais-est-1/display", operator), T0)
    ledger.check(T0 + timedelta(minutes=5))
    assert ledger.report().safe


def test_a_stale_display_does_not_count_and_garbage_is_ignored(network: Network) -> None:
    ledger = SafetyLedger(network)
    sign = "signs/pmv-calais-est-1/display"
    ledger.observe(message(sign, display(5, [], T0 + timedelta(hours=1))), T0)
    ledger.observe(message(sign, display(4, LIT, T0 + timedelta(hours=1))), T0)  # older seq
    ledger.observe(Received(f"{PREFIX}/{sign}", b"\xff not json", False), T0)
    ledger.observe(Received("elsewhere/topic", b"{}", False), T0)
    ledger.check(T0 + timedelta(minutes=5))
    assert ledger.report().safe


async def test_the_monitor_catches_a_phantom_on_a_real_broker(
    tmp_path: Path, mosquitto: Mosquitto
) -> None:
    network = load_network(write_lines_file(tmp_path, sign_lease_seconds=1))
    probe = MqttProbe(mosquitto.port, ("carpool/v1/dispatcher/status",))
    try:
        async with watching(network, BrokerAddress("127.0.0.1", mosquitto.port)) as monitor:
            far = datetime.now(UTC) + timedelta(hours=1)
            probe.publish(f"{PREFIX}/signs/pmv-gravelines-est-1/display", display(1, LIT, far))
            await eventually(lambda: not monitor.ledger.report().safe, 15, "a violation")
            [violation] = monitor.ledger.report().violations
            assert violation.sign_id == "pmv-gravelines-est-1"
            assert violation.seen_for > timedelta(seconds=1)
    finally:
        probe.close()
