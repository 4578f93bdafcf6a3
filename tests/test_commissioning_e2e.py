"""End to end: a stop in commissioning, its devices walked by `carpool-line commission`.

The real service and Mosquitto; one virtual sign answers, the other is never started (silent);
the virtual terminal presses when the command asks for it. A rider at the stop is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from line_service.accounts.book import AccountRole
from line_service.network.lines_file import load_network
from stop_devices.mqtt_link import BrokerAddress
from stop_devices.sim.devices import VirtualSign, VirtualTerminal
from tests.support.accounts import account_token, bearer
from tests.support.brokers import Mosquitto
from tests.support.service import CARPOOL_LINE, LINE, REPO, ServiceProcess, write_lines_file

ARTIFACTS = REPO / "tests" / "artifacts"
STOP = "marck-est"
TERMINAL = "t-marck-est"
GOOD_SIGN, SILENT_SIGN = "pmv-marck-est-1", "pmv-marck-est-2"
TOKEN = "essai-operateur"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def commissioning_lines_file(directory: Path) -> Path:
    """The shipped lines, open at all hours, with the Marck stop in commissioning."""
    path = write_lines_file(directory)
    data = yaml.safe_load(path.read_text())
    for direction in data["lines"][0]["directions"]:
        for stop in direction["stops"]:
            if stop["id"] == STOP:
                stop["commissioning"] = True
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        broker_url=mosquitto.url,
        database_url=f"sqlite:///{tmp_path}/carpool.sqlite3",
        lines_file=commissioning_lines_file(tmp_path),
        directory=tmp_path,
        extra_env={"CARPOOL_API_TOKENS": f"{TOKEN}:operator"},
    )
    process.start()
    yield process
    process.stop()


@contextlib.asynccontextmanager
async def running(*devices: VirtualSign | VirtualTerminal) -> AsyncIterator[None]:
    tasks = [asyncio.create_task(device.run()) for device in devices]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def result_of(report: str, device: str) -> str:
    found = re.search(rf'data-device="{device}" data-result="([a-z_]+)"', report)
    assert found is not None, f"{device} missing from the report"
    return found.group(1)


async def test_commission_reports_each_device_and_the_stop_serves_no_rider(
    service: ServiceProcess, mosquitto: Mosquitto, tmp_path: Path
) -> None:
    address = BrokerAddress("127.0.0.1", mosquitto.port)
    stop = load_network(service.lines_file).lines[0].stop(STOP)  # type: ignore[arg-type]
    assert stop is not None
    sign = VirtualSign(address, LINE, GOOD_SIGN)
    terminal = VirtualTerminal(address, LINE, TERMINAL, stop)
    out = tmp_path / "pv.html"
    async with running(sign, terminal):
        await sign.wait_for(lambda s: s.connected, 5)
        await terminal.wait_for(
            lambda t: t.screen is not None and "MISE EN SERVICE" in t.screen.lines, 5
        )
        command = await asyncio.create_subprocess_exec(
            str(CARPOOL_LINE),
            "commission",
            LINE,
            "--stop",
            STOP,
            "--url",
            service.base_url,
            "--token",
            TOKEN,
            "--timeout",
            "4",
            "--out",
            str(out),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=REPO,
        )
        assert command.stdout is not None
        printed: list[str] = []
        async with asyncio.timeout(60):
            while line := (await command.stdout.readline()).decode():
                printed.append(line)
                if f"Appuyez sur un bouton de la borne {TERMINAL}" in line:
                    terminal.press("dunkerque-est")
            code = await command.wait()
        await terminal.wait_for(lambda t: "TEST OK - bouton DUNKERQUE" in t.screen.lines, 5)  # type: ignore[union-attr]
        assert sign.pages == ()  # the test page was withdrawn

        output = "".join(printed)
        assert code == 1, output
        report = out.read_text()
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "commissioning-e2e.html").write_text(report, encoding="utf-8")
        assert result_of(report, GOOD_SIGN) == "ok"
        assert result_of(report, SILENT_SIGN) == "silent"
        assert result_of(report, TERMINAL) == "ok"
        assert "Vu et approuvé par l'autorité organisatrice" in report
        assert re.search(rf"\d\d:\d\d:\d\d  {STOP} +panneau +{GOOD_SIGN} +OK", output), output
        assert "Muet" in output

        async with httpx.AsyncClient(base_url=f"{service.base_url}/api/v1", headers=AUTH) as api:
            terminal_view = (await api.get(f"/lines/{LINE}/terminals/{TERMINAL}")).json()
            assert terminal_view["commissioning"] is True
            assert terminal_view["last_test_press"]["destination_id"] == "dunkerque-est"
            assert (await api.get(f"/lines/{LINE}/stops/{STOP}")).json()["commissioning"] is True

            # A rider asking through the API is refused; no sign of the stop lights.
            rider = account_token(service.database_url, "+33612345678", AccountRole.RIDER)
            ride = await api.post(
                "/requests",
                json={"line_id": LINE, "stop_id": STOP, "destination_id": "dunkerque-est"},
                headers=bearer(rider),
            )
            assert ride.status_code == 201, ride.text
            assert (ride.json()["state"], ride.json()["cause"]) == ("refused", "commissioning")
            for sign_id in (GOOD_SIGN, SILENT_SIGN):
                assert (await api.get(f"/lines/{LINE}/signs/{sign_id}")).json()["pages"] == []
            assert sign.pages == ()
            assert (await api.get(f"/lines/{LINE}/live")).json()["waiting"] == []
