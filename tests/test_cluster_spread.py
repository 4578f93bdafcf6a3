"""Lines spread over a cluster's processes: two real `carpool-line serve` on one PostgreSQL and
one locked-down Mosquitto, two lines. Each process takes one line; either door answers for
both; a killed process's line goes to the other within seconds, a drained one's at once; no
sign ever goes back in `seq`, and the safety monitor sees no phantom passenger throughout.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import re
import signal
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from dispatcher.model import LineId, Network, StopId
from line_service.broker.mosquitto_config import DEFAULT_OBSERVER_USER as OBSERVER
from line_service.network.lines_file import load_network
from stop_devices import topics
from stop_devices.sim.simulator import VirtualTerminal
from tests.support.faults import (
    DeviceClient,
    Fleet,
    SecureBroker,
    assert_safe,
    eventually,
    figure,
    watched_through,
)
from tests.support.service import ServiceProcess
from tests.support.sms_webhook import PUBLIC_URL, Sms
from tests.support.twilio_standin import AUTH_TOKEN
from tests.test_sms_two_lines import two_lines_file

TAKEOVER_LIMIT_SECONDS = 5.0
DISPLAYS = f"{topics.PREFIX}/+/signs/+/display"
TOKEN = "spread-operator-token"

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
DRIVER = "+33698765432"
RIDERS = ("+33612345601", "+33612345602")


@pytest.fixture
def cluster_env() -> dict[str, str]:
    """Both processes: Twilio's signatures checked against one public URL."""
    return {"CARPOOL_TWILIO_AUTH_TOKEN": AUTH_TOKEN, "CARPOOL_PUBLIC_URL": PUBLIC_URL}


def readiness(process: ServiceProcess) -> dict[str, Any] | None:
    """/readyz's body, or None while the process does not answer."""
    try:
        body: dict[str, Any] = httpx.get(f"{process.base_url}/readyz", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None
    return body


def owned(process: ServiceProcess) -> set[str]:
    """The lines the process says it dispatches."""
    body = readiness(process)
    return set(body["lines_owned"]) if body else set()


@dataclass
class Spread:
    """Two processes, two lines, their devices and an observer of every display."""

    network: Network
    first: ServiceProcess
    second: ServiceProcess
    fleet: Fleet
    observer: DeviceClient

    @property
    def lines(self) -> set[str]:
        return {line.id for line in self.network.lines}

    def seqs(self) -> dict[str, list[int]]:
        """Every display's seq per sign topic, in arrival order."""
        found: dict[str, list[int]] = {}
        for line in self.network.lines:
            for stop in line.all_stops():
                for spec in stop.signs:
                    topic = topics.sign(line.id, spec.id, topics.Suffix.DISPLAY)
                    found[topic] = [d["seq"] for d in self.observer.received(topic)]
        return found

    async def holds_all(self, process: ServiceProcess) -> bool:
        """The process dispatches every line."""
        return await asyncio.to_thread(owned, process) == self.lines

    def split(self) -> bool:
        """Each process dispatches one line, and together both."""
        a, b = owned(self.first), owned(self.second)
        return len(a) == 1 and len(b) == 1 and a | b == self.lines

    def terminal_of(self, line_id: str) -> tuple[str, str]:
        """A terminal of the line and a destination from its stop."""
        line = next(line for line in self.network.lines if line.id == line_id)
        stop = next(stop for stop in line.all_stops() if stop.terminal is not None)
        assert stop.terminal is not None
        return stop.terminal, line.destinations_from(StopId(stop.id))[0].id

    def stop_of(self, line_id: str) -> str:
        """The stop of the terminal `terminal_of` picks."""
        terminal_id, _ = self.terminal_of(line_id)
        return self.fleet.terminals[terminal_id].stop.id

    async def signs_converged(self, http: httpx.AsyncClient, line_id: str) -> bool:
        """Every sign of the line shows what the line's owner wants (asked through `http`'s
        door, whichever process that is)."""
        answer = await http.get(f"/api/v1/lines/{line_id}/live", timeout=5)
        if answer.status_code != 200:
            return False
        wanted = {sign["id"]: sign["pages"] for sign in answer.json()["signs"]}
        return all(
            [list(page) for page in self.fleet.signs[sign_id].pages] == pages
            for sign_id, pages in wanted.items()
        )


def strictly_increasing(seqs: dict[str, list[int]]) -> bool:
    return all(a < b for values in seqs.values() for a, b in itertools.pairwise(values))


@pytest.fixture
async def spread(
    tmp_path: Path, database_url: str, cluster_env: dict[str, str]
) -> AsyncIterator[Spread]:
    lines = two_lines_file(tmp_path)
    network = load_network(lines)
    broker = SecureBroker(network, tmp_path / "broker")
    await asyncio.to_thread(broker.start)
    observer = DeviceClient(broker.port, OBSERVER, broker.password(OBSERVER))
    assert observer.wait_connected()
    observer.subscribe(DISPLAYS)

    def process(name: str, number: int) -> ServiceProcess:
        env = {"CARPOOL_API_TOKENS": f"{TOKEN}:operator", **cluster_env}
        return broker.cluster_process(number, tmp_path / name, database_url, lines, env)

    first, second = process("first", 1), process("second", 2)
    await asyncio.to_thread(first.start)
    fleet = Fleet.of(network, broker.address)
    try:
        async with fleet.running():
            yield Spread(network, first, second, fleet, observer)
    finally:
        observer.close()
        await asyncio.gather(asyncio.to_thread(first.stop), asyncio.to_thread(second.stop))
        await asyncio.to_thread(broker.stop)


def _answered(terminal: VirtualTerminal, press: str) -> bool:
    return terminal.outcomes.get(press) == "waiting"


async def _both_lines_waiting(spread: Spread) -> dict[str, str]:
    """A rider pressed at a terminal of each line; line → the terminal's code."""
    codes: dict[str, str] = {}
    for line_id in sorted(spread.lines):
        terminal_id, destination = spread.terminal_of(line_id)
        terminal = spread.fleet.terminals[terminal_id]
        press = terminal.press(destination)
        await eventually(functools.partial(_answered, terminal, press), 10, f"on {line_id}")
        codes[line_id] = terminal.codes[press]
    return codes


async def test_two_processes_take_a_line_each_and_either_door_answers_for_both(
    spread: Spread,
) -> None:
    await eventually(lambda: spread.holds_all(spread.first), 20, "alone")
    await asyncio.to_thread(spread.second.start, False)
    try:
        await eventually(lambda: asyncio.to_thread(spread.split), 20, "one line each")
    except AssertionError:
        print("FIRST", spread.first.log()[-6000:])
        print("SECOND", spread.second.log()[-6000:])
        raise
    await _both_lines_waiting(spread)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    for process in (spread.first, spread.second):
        async with httpx.AsyncClient(base_url=process.base_url, headers=headers) as http:
            for line_id in spread.lines:
                await eventually(
                    functools.partial(spread.signs_converged, http, line_id), 10, "signs"
                )
                live = (await http.get(f"/api/v1/lines/{line_id}/live")).json()
                assert len(live["waiting"]) == 1, (process.base_url, line_id, live)
            summaries = (await http.get("/api/v1/lines")).json()
            # Each line as its owner tells it, whichever door was asked.
            assert {s["id"]: s["waiting"] for s in summaries} == dict.fromkeys(spread.lines, 1)
            owners = {s["id"]: s["cluster"]["owner"] for s in summaries}
            assert len(set(owners.values())) == 2
    async with httpx.AsyncClient() as http:
        metrics = (await http.get(f"{spread.second.base_url}/metrics", timeout=2)).text
    samples = [row for row in metrics.splitlines() if row.startswith("carpool_line_owned{")]
    assert sorted(row.rsplit(" ", 1)[1] for row in samples) == ["0.0", "1.0"]


async def test_a_killed_process_line_goes_to_the_other_with_its_rider(spread: Spread) -> None:
    await eventually(lambda: spread.holds_all(spread.first), 20, "alone")
    await asyncio.to_thread(spread.second.start, False)
    await eventually(lambda: asyncio.to_thread(spread.split), 20, "one line each")
    async with watched_through(spread.network, spread.observer) as ledger:
        codes = await _both_lines_waiting(spread)
        [moved] = owned(spread.second)
        shown_before = {topic: len(values) for topic, values in spread.seqs().items()}
        moved_topics = [t for t in shown_before if t.startswith(topics.line_prefix(moved))]

        killed_at = time.monotonic()
        await asyncio.to_thread(spread.second.kill)

        def reasserted() -> bool:
            seen = spread.seqs()
            return all(len(seen[topic]) > shown_before[topic] for topic in moved_topics)

        await eventually(reasserted, 10, "the moved line's signs re-asserted")
        takeover = time.monotonic() - killed_at
        figure("spread: a killed process's line re-asserted by the other", f"{takeover:.2f} s")
        assert takeover < TAKEOVER_LIMIT_SECONDS
        assert owned(spread.first) == spread.lines
        async with httpx.AsyncClient(base_url=spread.first.base_url) as http:
            await eventually(lambda: spread.signs_converged(http, moved), 10, "moved line's signs")
            live = (await http.get(f"/api/v1/lines/{moved}/live")).json()
            assert [rider["stop_id"] for rider in live["waiting"]] == [spread.stop_of(moved)]
            terminal_id, destination = spread.terminal_of(moved)
            # Its terminal still shows the rider's code: the same request, not a new one.
            assert list(spread.fleet.terminals[terminal_id].codes.values()) == [codes[moved]]
            terminal = spread.fleet.terminals[terminal_id]
            again = terminal.press(destination)
            await eventually(lambda: terminal.outcomes.get(again) == "waiting", 10, "new press")
    assert_safe(ledger.report())
    assert strictly_increasing(spread.seqs()), spread.seqs()


async def test_a_drained_process_hands_its_line_over_at_once(spread: Spread) -> None:
    await eventually(lambda: spread.holds_all(spread.first), 20, "alone")
    await asyncio.to_thread(spread.second.start, False)
    await eventually(lambda: asyncio.to_thread(spread.split), 20, "one line each")
    async with watched_through(spread.network, spread.observer) as ledger:
        codes = await _both_lines_waiting(spread)
        [moved] = owned(spread.second)
        assert spread.second.process is not None
        drained_at = time.monotonic()
        spread.second.process.send_signal(signal.SIGTERM)
        await eventually(lambda: spread.holds_all(spread.first), 10, "handed over")
        handover = time.monotonic() - drained_at
        figure("spread: a drained process's line taken by the other", f"{handover:.2f} s")
        # Ended by itself once drained (uvicorn re-raises the signal after its shutdown).
        assert await asyncio.to_thread(spread.second.process.wait, 10) in (0, -signal.SIGTERM)
        assert '"cluster.handed_over"' in spread.second.log()
        async with httpx.AsyncClient(base_url=spread.first.base_url) as http:
            await eventually(lambda: spread.signs_converged(http, moved), 10, "moved line's signs")
            live = (await http.get(f"/api/v1/lines/{moved}/live")).json()
            assert [rider["stop_id"] for rider in live["waiting"]] == [spread.stop_of(moved)]
            terminal_id, _ = spread.terminal_of(moved)
            assert list(spread.fleet.terminals[terminal_id].codes.values()) == [codes[moved]]
    assert_safe(ledger.report())
    assert strictly_increasing(spread.seqs()), spread.seqs()


async def test_texts_reach_the_owner_of_the_line_they_are_about_whichever_door(
    spread: Spread,
) -> None:
    await eventually(lambda: spread.holds_all(spread.first), 20, "alone")
    await asyncio.to_thread(spread.second.start, False)
    await eventually(lambda: asyncio.to_thread(spread.split), 20, "one line each")
    doors = {
        line: spread.second if line in owned(spread.first) else spread.first
        for line in spread.lines
    }  # for each line, the process that does NOT dispatch it
    codes: dict[str, str] = {}
    for rider, line in zip(RIDERS, sorted(spread.lines), strict=True):
        stop = spread.network.line(LineId(line))
        assert stop is not None
        boarding = next(s for s in stop.all_stops() if s.id.endswith("marck-est"))
        async with httpx.AsyncClient(base_url=doors[line].base_url) as http:
            reply = await Sms(http).reply(f"{boarding.code} dunkerke", sender=rider)
        assert "Donnez le code" in reply, reply
        [codes[line]] = re.findall(r"\b\d{4}\b", reply)
    assert codes[sorted(spread.lines)[0]] != codes[sorted(spread.lines)[1]]
    for line in spread.lines:  # each rider waits on their line, at its owner
        async with httpx.AsyncClient(base_url=doors[line].base_url) as http:
            live = (await http.get(f"/api/v1/lines/{line}/live")).json()
        assert [(r["channel"], r["stop_id"].endswith("marck-est")) for r in live["waiting"]] == [
            ("sms", True)
        ]
    # A driver texts the code of line B's rider to the door that does not dispatch B.
    line = sorted(spread.lines)[1]
    async with httpx.AsyncClient(base_url=doors[line].base_url) as http:
        reply = await Sms(http).reply(codes[line], sender=DRIVER)
        assert "validé" in reply, reply
        live = (await http.get(f"/api/v1/lines/{line}/live")).json()
    assert live["waiting"] == []
