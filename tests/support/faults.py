"""Test support: fault injection — a locked-down Mosquitto, device fleets, monitors, deadlines."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from dispatcher.model import Network
from line_service.broker.mosquitto_config import (
    DEFAULT_DISPATCHER_USER,
    DEFAULT_OBSERVER_USER,
    Written,
    dispatcher_users,
    write_broker_config,
)
from stop_devices.mqtt_link import BrokerAddress, Received
from stop_devices.sim.safety_monitor import WATCHED, SafetyLedger, SafetyMonitor, SafetyReport
from stop_devices.sim.simulator import VirtualSign, VirtualTerminal
from tests.support.brokers import MOSQUITTO, accepts_connections, free_port
from tests.support.service import LINE, ServiceProcess
from tests.support.waiting import wait_until

SCALE = max(1, int(os.environ.get("CARPOOL_SOAK_SCALE", "1")))
"""`make soak` sets CARPOOL_SOAK_SCALE: more load, more cycles, more examples."""


async def eventually(
    condition: Callable[[], bool | Awaitable[bool]],
    timeout: float,  # noqa: ASYNC109 - a deadline is the point
    what: str,
    poll: float = 0.02,
) -> float:
    """Wait (without blocking the loop) until `condition` holds; return the seconds it took."""
    started = time.monotonic()
    while True:
        outcome = condition()
        if not isinstance(outcome, bool):
            outcome = await outcome
        if outcome:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(poll)


CLUSTER_PROCESSES = 3  # dispatcher accounts: one per process of a test cluster


def dispatcher(number: int) -> str:
    """The broker account of a test cluster's process number `number` (1, 2, 3)."""
    return dispatcher_users(DEFAULT_DISPATCHER_USER, CLUSTER_PROCESSES)[number - 1]


@dataclass
class SecureBroker:
    """Mosquitto started with the config `carpool-line mosquitto-config` generates."""

    network: Network
    directory: Path
    port: int = field(default_factory=free_port)
    written: Written | None = None
    process: subprocess.Popen[bytes] | None = None

    def configure(self) -> Written:
        """Generate the files (run as the current user: tests run as root in CI images)."""
        self.written = write_broker_config(
            self.network,
            self.directory,
            port=self.port,
            bind="127.0.0.1",
            run_as=getpass.getuser(),
            persistence=False,
            processes=CLUSTER_PROCESSES,
        )
        return self.written

    def password(self, username: str) -> str:
        """The clear password of an account."""
        assert self.written is not None
        return self.written.account(username).password

    def url(self, username: str = DEFAULT_DISPATCHER_USER) -> str:
        """mqtt://user:pass@127.0.0.1:port for CARPOOL_MQTT_URL."""
        return f"mqtt://{username}:{self.password(username)}@127.0.0.1:{self.port}"

    def address(self, username: str = DEFAULT_OBSERVER_USER) -> BrokerAddress:
        """The same, for the simulator and the monitor (read-only by default)."""
        return BrokerAddress("127.0.0.1", self.port, username, self.password(username))

    def cluster_process(
        self,
        number: int,
        directory: Path,
        database_url: str,
        lines_file: Path,
        env: dict[str, str],
    ) -> ServiceProcess:
        """Process `number` (1, 2, 3) of a test cluster on this broker, with its own broker
        account (one session each), lease refreshes every 2 s and `env` besides."""
        directory.mkdir()
        return ServiceProcess(
            broker_url=self.url(dispatcher(number)),
            database_url=database_url,
            lines_file=lines_file,
            directory=directory,
            extra_env={"CARPOOL_CLUSTER": "true", "CARPOOL_LEASE_REFRESH_SECONDS": "2", **env},
        )

    def start(self) -> None:
        """Start the broker and wait until it accepts connections."""
        written = self.written or self.configure()
        log = (self.directory / "mosquitto.log").open("ab")
        self.process = subprocess.Popen(
            [MOSQUITTO, "-c", str(written.config_file)], stdout=log, stderr=log
        )
        wait_until(lambda: accepts_connections(self.port), 10, f"mosquitto on {self.port}")

    def kill(self) -> None:
        """SIGKILL: the broker vanishes mid-flight (no will is lost: it never had a chance)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(5)
            self.process = None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL."""
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
            self.process = None


class DeviceClient:
    """A paho client that logs in with a device's credentials and remembers what it receives."""

    def __init__(
        self,
        port: int,
        username: str | None,
        password: str | None,
        client_id: str | None = None,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.arrived: list[float] = []  # time.monotonic() of each message, beside `messages`
        self.refused: ReasonCode | None = None
        self.granted: list[ReasonCode] = []
        self._lock = threading.Lock()
        self._filters: list[str] = []  # subscribed again on each reconnection
        self._connected = threading.Event()
        self._subscribed = threading.Event()
        self.disconnected = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id or f"dev-{uuid.uuid4().hex}"
        )
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=True)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = self._on_disconnect
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, _c: Any, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            self.refused = reason
        elif self._filters:  # a new session (clean start): its subscriptions are gone
            self.client.subscribe([(f, 1) for f in self._filters])
        self._connected.set()

    def _on_disconnect(self, _c: Any, _u: Any, _f: Any, _reason: ReasonCode, _p: Any) -> None:
        self.disconnected.set()

    def _on_subscribe(self, _c: Any, _u: Any, _m: Any, reasons: list[ReasonCode], _p: Any) -> None:
        self.granted = reasons
        self._subscribed.set()

    def _on_message(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, bytes(message.payload)))
            self.arrived.append(time.monotonic())

    def wait_connected(self) -> bool:
        """True when the broker accepted the login."""
        assert self._connected.wait(10), "no CONNACK"
        return self.refused is None and self.client.is_connected()

    def subscribe(self, *filters: str) -> None:
        """Subscribe and wait for the SUBACK."""
        self._subscribed.clear()
        self._filters += filters
        self.client.subscribe([(f, 1) for f in filters])
        assert self._subscribed.wait(10), "no SUBACK"

    def publish(self, topic: str, payload: dict[str, Any] | bytes) -> None:
        """QoS 1 publish, waiting for the broker's PUBACK (sent even when the ACL drops it)."""
        data = json.dumps(payload).encode() if isinstance(payload, dict) else payload
        self.client.publish(topic, data, qos=1).wait_for_publish(10)

    def received(self, topic: str) -> list[dict[str, Any]]:
        """Payloads received on `topic`."""
        with self._lock:
            return [json.loads(p) for t, p in self.messages if t == topic]

    def since(self, index: int) -> list[tuple[str, bytes]]:
        """Messages from the `index`th on, in arrival order."""
        with self._lock:
            return self.messages[index:]

    def received_at(self, topic: str) -> list[tuple[float, dict[str, Any]]]:
        """(monotonic arrival time, payload) of each message received on `topic`."""
        with self._lock:
            pairs = list(zip(self.arrived, self.messages, strict=True))
        return [(at, json.loads(p)) for at, (t, p) in pairs if t == topic]

    def topics(self) -> set[str]:
        """Every topic something arrived on."""
        with self._lock:
            return {t for t, _ in self.messages}

    def close(self) -> None:
        """Disconnect."""
        self.client.loop_stop()
        self.client.disconnect()


@dataclass
class Fleet:
    """One virtual device per terminal and sign of the line, all running in this event loop."""

    signs: dict[str, VirtualSign]
    terminals: dict[str, VirtualTerminal]

    @classmethod
    def of(
        cls,
        network: Network,
        address: Callable[[str], BrokerAddress],
        without: frozenset[str] = frozenset(),
    ) -> Fleet:
        """Devices for every configured sign and terminal; `address(device_id)` logs each in.

        `without`: accounts a test drives itself (the broker allows one session per account).
        """
        signs: dict[str, VirtualSign] = {}
        terminals: dict[str, VirtualTerminal] = {}
        for line in network.lines:
            for stop in line.all_stops():
                for spec in stop.signs:
                    if spec.id not in without:
                        signs[spec.id] = VirtualSign(address(spec.id), line.id, spec.id)
                if stop.terminal is not None and stop.terminal not in without:
                    terminals[stop.terminal] = VirtualTerminal(
                        address(stop.terminal), line.id, stop.terminal, stop
                    )
        return cls(signs, terminals)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Fleet]:
        """Run every device; wait until all are connected."""
        devices = [*self.signs.values(), *self.terminals.values()]
        tasks = [asyncio.create_task(device.run()) for device in devices]
        try:
            await eventually(lambda: all(d.connected for d in devices), 15, "fleet connected")
            yield self
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def connected(self) -> bool:
        """True when every device has a session."""
        devices = [*self.signs.values(), *self.terminals.values()]
        return all(device.connected for device in devices)


@contextlib.asynccontextmanager
async def watching(network: Network, address: BrokerAddress) -> AsyncIterator[SafetyMonitor]:
    """A safety monitor running in this loop for the duration of the block."""
    monitor = SafetyMonitor(network, address, client_id=f"safety-{uuid.uuid4().hex[:8]}")
    task = asyncio.create_task(monitor.run())
    try:
        await asyncio.wait_for(monitor.connected.wait(), 10)
        yield monitor
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@contextlib.asynccontextmanager
async def watched_through(network: Network, observer: DeviceClient) -> AsyncIterator[SafetyLedger]:
    """The safety monitor's ledger fed from an observer the test already has (the broker keeps
    one session per account: a second observer login would push the first one out). The
    observer must read the signs' displays already: a second, overlapping filter would bring
    each retained display twice."""
    ledger = SafetyLedger(network)
    observer.subscribe(*(topic for topic in WATCHED if not topic.endswith("/display")))
    tick = 0.1

    async def feed() -> None:
        done = 0
        while True:
            now = datetime.now(UTC)
            arrived = observer.since(done)
            done += len(arrived)
            for topic, payload in arrived:
                ledger.observe(Received(topic, payload, False), now)
            ledger.check(now)
            await asyncio.sleep(tick)  # the monitor's check period, not synchronisation

    task = asyncio.create_task(feed())
    try:
        yield ledger
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        ledger.check(datetime.now(UTC))


async def live(client: httpx.AsyncClient) -> dict[str, Any]:
    """The service's live view of the line."""
    answer = await client.get(f"/api/v1/lines/{LINE}/live", timeout=5)
    answer.raise_for_status()
    body: dict[str, Any] = answer.json()
    return body


def assert_safe(report: SafetyReport) -> None:
    """No sign showed a passenger nobody was for longer than one lease."""
    assert report.safe, f"phantom passengers: {report.violations}"


def figure(name: str, value: str) -> None:
    """Print a measured figure (docs/RELIABILITY.md quotes them; run pytest with -s to see)."""
    print(f"\nFIGURE {name}: {value}")
