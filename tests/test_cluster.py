"""Two real `carpool-line serve` processes on one PostgreSQL and one locked-down Mosquitto, with
CARPOOL_CLUSTER=true: one owner per line, a killed owner's line taken over within seconds.

Each test runs a virtual device per sign and terminal and an observer recording every display
and presence message. Figures are printed (`pytest -s`) and quoted in docs/OPERATIONS.md.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatcher.model import Network
from line_service.broker.mosquitto_config import DEFAULT_OBSERVER_USER as OBSERVER
from line_service.cluster.ownership import IDLE_TIMEOUT_SECONDS, RETRY_SECONDS
from line_service.cluster.standby import EXIT_LOST
from line_service.network.lines_file import load_network
from stop_devices import topics
from tests.support.faults import (
    DeviceClient,
    Fleet,
    SecureBroker,
    eventually,
    figure,
)
from tests.support.service import LINE, ServiceProcess, write_lines_file
from tests.test_faults import LEASE_SECONDS, Rig

TAKEOVER_LIMIT_SECONDS = 5.0
SIGNS = f"{topics.PREFIX}/{LINE}/signs"
DISPLAYS = f"{SIGNS}/+/display"
PRESENCE = f"{topics.PREFIX}/dispatcher/#"

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


@dataclass
class Pair:
    """Two processes of one service, its devices, and an observer of every display."""

    network: Network
    broker: SecureBroker
    first: ServiceProcess
    second: ServiceProcess
    fleet: Fleet
    observer: DeviceClient
    database_url: str

    def rig(self, process: ServiceProcess, http: httpx.AsyncClient) -> Rig:
        """The fault tests' view of one process (its live view, the stored requests)."""
        return Rig(self.network, self.broker, process, self.fleet, http, self.database_url)

    def seqs(self) -> dict[str, list[int]]:
        """Every display's seq per sign, in arrival order."""
        return {
            sign: [display["seq"] for display in self.observer.received(f"{SIGNS}/{sign}/display")]
            for sign in self.fleet.signs
        }

    def service_presence(self) -> list[bool]:
        """Every `online` said on carpool/v1/dispatcher/status, in order."""
        return [message["online"] for message in self.observer.received(topics.DISPATCHER_STATUS)]


def owned_metric(process: ServiceProcess) -> str:
    """The `carpool_line_owned` sample of the line on /metrics."""
    text = httpx.get(f"{process.base_url}/metrics", timeout=2).text
    return next(row for row in text.splitlines() if row.startswith("carpool_line_owned{"))


def readiness(process: ServiceProcess) -> tuple[int, dict[str, Any]]:
    """/readyz's status code and body."""
    answer = httpx.get(f"{process.base_url}/readyz", timeout=2)
    body: dict[str, Any] = answer.json()
    return answer.status_code, body


def standing_by(process: ServiceProcess) -> bool:
    """True once the process answers HTTP as a standby owning no line."""
    try:
        code, body = readiness(process)
    except httpx.HTTPError:
        return False
    return code == 503 and body["role"] == "standby" and body["lines_owned"] == []


def owns_the_line(process: ServiceProcess) -> bool:
    """True once the process answers /readyz 200 as the line's owner."""
    try:
        code, body = readiness(process)
    except httpx.HTTPError:
        return False
    return code == 200 and body["role"] == "owner" and body["lines_owned"] == [LINE]


@pytest.fixture
async def pair(
    tmp_path: Path, database_url: str, cluster_env: dict[str, str]
) -> AsyncIterator[Pair]:
    lines = write_lines_file(tmp_path, sign_lease_seconds=LEASE_SECONDS, max_waiting_per_stop=100)
    network = load_network(lines)
    broker = SecureBroker(network, tmp_path / "broker")
    await asyncio.to_thread(broker.start)
    observer = DeviceClient(broker.port, OBSERVER, broker.password(OBSERVER))
    assert observer.wait_connected()
    observer.subscribe(DISPLAYS, PRESENCE)

    def process(name: str, number: int) -> ServiceProcess:
        env = cluster_env
        return broker.cluster_process(number, tmp_path / name, database_url, lines, env)

    first, second = process("first", 1), process("second", 2)
    await asyncio.to_thread(first.start)  # alone: it takes the line
    await asyncio.to_thread(second.start, False)
    await eventually(lambda: asyncio.to_thread(standing_by, second), 30, "the second stands by")
    fleet = Fleet.of(network, broker.address)
    try:
        async with fleet.running():
            yield Pair(network, broker, first, second, fleet, observer, database_url)
    finally:
        observer.close()
        await asyncio.gather(asyncio.to_thread(first.stop), asyncio.to_thread(second.stop))
        await asyncio.to_thread(broker.stop)


def strictly_increasing(seqs: dict[str, list[int]]) -> bool:
    """Every sign's seqs went only up."""
    return all(a < b for values in seqs.values() for a, b in itertools.pairwise(values))


async def test_one_owner_one_code_and_a_takeover_within_seconds_after_kill_9(pair: Pair) -> None:
    assert owns_the_line(pair.first)
    assert standing_by(pair.second)
    assert owned_metric(pair.first) == f'carpool_line_owned{{line="{LINE}"}} 1.0'
    assert owned_metric(pair.second) == f'carpool_line_owned{{line="{LINE}"}} 0.0'
    terminal = pair.fleet.terminals["t-marck-est"]
    async with httpx.AsyncClient(base_url=pair.first.base_url) as http:
        owner = pair.rig(pair.first, http)
        await eventually(owner.signs_converged, 10, "signs shown by the owner")
        press = terminal.press("dunkerque-est")
        await eventually(lambda: terminal.outcomes.get(press) == "waiting", 10, "press answered")
        await eventually(owner.signs_converged, 10, "the rider on the signs")
    code = terminal.codes[press]
    assert owner.stored() == {("t-marck-est", code): "waiting"}  # one press, one request
    assert set(terminal.codes.values()) == {code}  # one code on the terminal
    shown_before = {sign: len(values) for sign, values in pair.seqs().items()}

    killed_at = time.monotonic()
    await asyncio.to_thread(pair.first.kill)

    def reasserted() -> bool:  # every sign told its display again, by the new owner
        seen = pair.seqs()
        return all(len(seen.get(sign, [])) > count for sign, count in shown_before.items())

    await eventually(lambda: asyncio.to_thread(owns_the_line, pair.second), 10, "new owner")
    await eventually(reasserted, 10, "the signs re-asserted after the kill")
    takeover = time.monotonic() - killed_at
    figure("cluster takeover after kill -9 (signs re-asserted)", f"{takeover:.2f} s")
    assert takeover < TAKEOVER_LIMIT_SECONDS

    async with httpx.AsyncClient(base_url=pair.second.base_url) as http:
        heir = pair.rig(pair.second, http)
        await eventually(heir.signs_converged, 10, "signs as the new owner wants them")
        waiting = (await http.get(f"/api/v1/lines/{LINE}/live")).json()
        # The rider still waits, restored from the database.
        assert [rider["stop_id"] for rider in waiting["waiting"]] == ["marck-est"]
        other = pair.fleet.terminals["t-loon-plage-est"]
        again = other.press(heir.destinations("t-loon-plage-est")[0])
        await eventually(lambda: other.outcomes.get(again) == "waiting", 10, "a new press served")
        await eventually(heir.signs_converged, 10, "the new rider on the signs")
    stored = heir.stored()
    assert len(stored) == 2
    assert set(stored.values()) == {"waiting"}
    assert strictly_increasing(pair.seqs()), pair.seqs()
    assert pair.service_presence()
    assert all(pair.service_presence())


async def test_a_stopped_owner_loses_the_line_and_publishes_nothing_when_it_resumes(
    pair: Pair,
) -> None:
    assert pair.first.process is not None
    stopped_at = time.monotonic()
    pair.first.process.send_signal(signal.SIGSTOP)
    try:
        await eventually(
            lambda: asyncio.to_thread(owns_the_line, pair.second), 15, "the standby takes over"
        )
        takeover = time.monotonic() - stopped_at
        figure("cluster takeover after SIGSTOP of the owner", f"{takeover:.2f} s")
        assert takeover < IDLE_TIMEOUT_SECONDS + RETRY_SECONDS + 2
        terminal = pair.fleet.terminals["t-marck-est"]
        press = terminal.press("dunkerque-est")
        await eventually(lambda: terminal.outcomes.get(press) == "waiting", 10, "press answered")
    finally:
        pair.first.process.send_signal(signal.SIGCONT)
    assert await asyncio.to_thread(pair.first.process.wait, 10) == EXIT_LOST
    pair.first.process = None
    assert "cluster.ownership_lost" in pair.first.log()
    async with httpx.AsyncClient(base_url=pair.second.base_url) as http:
        heir = pair.rig(pair.second, http)
        await eventually(heir.signs_converged, 10, "the signs as the new owner wants them")
    assert strictly_increasing(pair.seqs()), pair.seqs()


async def test_a_stopped_owner_frees_the_line_for_the_standby_at_once(pair: Pair) -> None:
    stopped_at = time.monotonic()
    await asyncio.to_thread(pair.first.stop)  # SIGTERM: writes finished, locks given back
    await eventually(lambda: asyncio.to_thread(owns_the_line, pair.second), 10, "new owner")
    figure("cluster takeover after SIGTERM of the owner", f"{time.monotonic() - stopped_at:.2f} s")
    async with httpx.AsyncClient(base_url=pair.second.base_url) as http:
        heir = pair.rig(pair.second, http)
        await eventually(heir.signs_converged, 10, "signs as the new owner wants them")
    assert pair.service_presence()
    assert all(pair.service_presence())
    assert strictly_increasing(pair.seqs()), pair.seqs()
