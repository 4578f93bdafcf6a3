"""`carpool-line serve --demo`: embedded broker, SQLite, simulated devices — it comes alive."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.brokers import free_port
from tests.support.mqtt_probe import MqttProbe
from tests.support.service import LINE, ServiceProcess, write_lines_file
from tests.support.waiting import wait_until


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[ServiceProcess, int]]:
    port = free_port()
    process = ServiceProcess(
        broker_url="embedded",
        database_url=f"sqlite:///{tmp_path}/demo.sqlite3",
        lines_file=write_lines_file(tmp_path, always_open=False),
        directory=tmp_path,
        extra_env={"CARPOOL_EMBEDDED_MQTT_PORT": str(port)},
        serve_args=("--demo",),
    )
    process.start()
    yield process, port
    process.stop()


def test_demo_runs_the_embedded_broker_and_simulated_devices(
    demo: tuple[ServiceProcess, int],
) -> None:
    service, port = demo
    wait_until(lambda: '"event": "demo.started"' in service.log(), 10, "the demo traffic")
    assert '"event": "service_hours.ignored"' in service.log()
    probe = MqttProbe(port, (f"carpool/v1/{LINE}/#",))
    try:
        # Simulated signs announce themselves on the embedded broker (retained status).
        wait_until(
            lambda: (
                (probe.last(f"carpool/v1/{LINE}/signs/pmv-marck-est-1/status") or {}).get("online")
                is True
            ),
            10,
            "a simulated sign online",
        )
        # A terminal press from outside lights that stop's simulated sign, even at night.
        probe.publish(
            f"carpool/v1/{LINE}/terminals/t-marck-est/request",
            {"v": 1, "request_id": "outside-press", "destination": "dunkerque-est"},
        )
        probe.wait_last(
            f"carpool/v1/{LINE}/signs/pmv-marck-est-1/state",
            lambda state: ["COVOITURAGE", "DUNKERQUE"] in state["pages"],
            timeout=5,
        )
    finally:
        probe.close()
