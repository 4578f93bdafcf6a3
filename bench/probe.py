"""Shell: presses out, displays in — the harness's measuring client (paho, one clock).

A press goes to a stop with nothing waiting; its latency is the time until every sign of that
stop received a non-blank display. The harness then cancels the request and the stop is free
again once every sign went blank, so each press is a new request the service accepts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt

from bench import mqtt_client
from bench.network import BenchNetwork, BenchStop

BLANK = b'"pages":[]'


@dataclass(frozen=True, slots=True)
class Target:
    """Where presses go and displays come from: the service, or the bare relay."""

    name: str
    press: Callable[[BenchStop], str]
    cancel: Callable[[BenchStop], str]
    displays: Callable[[BenchStop], list[str]]
    heartbeat: Callable[[str, str, str], str]


SERVICE = Target(
    "service",
    press=lambda s: f"carpool/v1/{s.line_id}/terminals/{s.terminal_id}/request",
    cancel=lambda s: f"carpool/v1/{s.line_id}/terminals/{s.terminal_id}/cancel",
    displays=lambda s: [f"carpool/v1/{s.line_id}/signs/{sign}/display" for sign in s.sign_ids],
    heartbeat=lambda line, folder, device: f"carpool/v1/{line}/{folder}/{device}/status",
)
RELAY = Target(
    "bare relay",
    press=lambda s: f"bench/in/{s.line_id}/{s.stop_id}/request",
    cancel=lambda s: f"bench/in/{s.line_id}/{s.stop_id}/cancel",
    displays=lambda s: [f"bench/out/{s.line_id}/{s.stop_id}/{k}" for k in range(len(s.sign_ids))],
    heartbeat=lambda line, folder, device: f"bench/hb/{line}/{folder}/{device}/status",
)


@dataclass
class _Pending:
    sent_at: float
    request_id: str
    seen: set[str] = field(default_factory=set)


@dataclass
class PhaseResult:
    """Latencies (seconds) of one paced phase, and what went wrong."""

    latencies: list[float]
    sent: int
    lost: int
    skipped: int
    send_seconds: float


class Probe:
    """Publishes presses and cancels; receives every display of both targets."""

    def __init__(self, port: int, network: BenchNetwork) -> None:
        self._network = network
        self._lock = threading.Lock()
        self._stop_of: dict[str, tuple[Target, int]] = {}
        for index, stop in enumerate(network.stops):
            for target in (SERVICE, RELAY):
                for topic in target.displays(stop):
                    self._stop_of[topic] = (target, index)
        self._pending: dict[tuple[str, int], _Pending] = {}
        self._cancelling: dict[tuple[str, int], set[str]] = {}
        self._busy: set[tuple[str, int]] = set()
        self._latencies: list[float] = []
        self._held: dict[tuple[str, int], str] = {}
        self._cancel_after = True
        self.last_lit_at = 0.0
        self._counter = 0
        self._cursor = 0
        self.resync_seen: set[str] | None = None
        self.resync_lit: set[str] = set()
        self.dispatcher_online_at: float | None = None
        self.relay_ready = threading.Event()
        self._publisher = mqtt_client.connect(port, "bench-presses")
        self._receiver = mqtt_client.connect(port, "bench-signs", self._on_message)
        self._receiver.subscribe(
            [
                ("carpool/v1/+/signs/+/display", 1),
                ("bench/out/#", 1),
                ("carpool/v1/dispatcher/status", 1),
                ("bench/relay/status", 1),
            ]
        )

    def close(self) -> None:
        """Disconnect both clients."""
        mqtt_client.close(self._publisher)
        mqtt_client.close(self._receiver)

    # --- receiving (paho's thread) ------------------------------------------------------------

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        received_at = time.perf_counter()
        topic, payload = message.topic, bytes(message.payload)
        where = self._stop_of.get(topic)
        if where is None:
            self._on_presence(topic, payload, received_at)
            return
        target, index = where
        blank = BLANK in payload
        cancel: tuple[str, str] | None = None
        with self._lock:
            if self.resync_seen is not None and target is SERVICE:
                self.resync_seen.add(topic)
                if not blank:
                    self.resync_lit.add(topic)
            key = (target.name, index)
            if not blank:
                pending = self._pending.get(key)
                if pending is not None:
                    pending.seen.add(topic)
                    if len(pending.seen) == self._network.signs_per_stop:
                        del self._pending[key]
                        self._latencies.append(received_at - pending.sent_at)
                        self.last_lit_at = received_at
                        if not self._cancel_after:
                            self._held[key] = pending.request_id
                        else:
                            self._cancelling[key] = set()
                            stop = self._network.stops[index]
                            cancel = (target.cancel(stop), pending.request_id)
            elif key in self._cancelling:
                self._cancelling[key].add(topic)
                if len(self._cancelling[key]) == self._network.signs_per_stop:
                    del self._cancelling[key]
                    self._busy.discard(key)
        if cancel is not None:
            self._send_cancel(*cancel)

    def _on_presence(self, topic: str, payload: bytes, received_at: float) -> None:
        if topic == "bench/relay/status":
            self.relay_ready.set()
        elif topic == "carpool/v1/dispatcher/status" and b'"online":true' in payload:
            self.dispatcher_online_at = received_at

    def _send_cancel(self, topic: str, request_id: str) -> None:
        body = f'{{"v":1,"request_id":"{request_id}","reason":"cancelled"}}'
        self._publisher.publish(topic, body.encode(), qos=1)

    # --- pressing (caller's thread) -----------------------------------------------------------

    def press(self, target: Target) -> bool:
        """Press at the next free stop of `target`; False when every stop is busy."""
        stops = self._network.stops
        with self._lock:
            for _ in range(len(stops)):
                index = self._cursor
                self._cursor = (self._cursor + 1) % len(stops)
                key = (target.name, index)
                if key not in self._busy:
                    break
            else:
                return False
            self._busy.add(key)
            self._counter += 1
            request_id = f"b{self._counter}"
            stop = stops[index]
            pressed_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
            body = (
                f'{{"v":1,"request_id":"{request_id}","destination":"{stop.destination_id}",'
                f'"seats":1,"pressed_at":"{pressed_at}"}}'
            ).encode()
            self._pending[key] = _Pending(time.perf_counter(), request_id)
        self._publisher.publish(target.press(stop), body, qos=1)
        return True

    def run_rate(
        self, target: Target, rate: float, seconds: float, cancel: bool = True
    ) -> PhaseResult:
        """Press `rate` times a second for `seconds`; wait for the displays (5 s of grace)."""
        self.reset(cancel)
        count = max(1, round(rate * seconds))
        skipped = 0
        started = time.perf_counter()
        for number in range(count):
            ahead = started + number / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
            if not self.press(target):
                skipped += 1
        send_seconds = time.perf_counter() - started
        self._settle(lambda: not self._pending, 5.0)
        with self._lock:
            lost = len(self._pending)
            abandoned = list(self._pending.items())
            self._pending.clear()
            latencies = self._latencies
            self._latencies = []
        for (_, index), pending in abandoned:
            self._send_cancel(target.cancel(self._network.stops[index]), pending.request_id)
        if cancel:
            self._settle(lambda: not self._cancelling, 5.0)
        with self._lock:
            self._cancelling.clear()
            if cancel:
                self._busy = {key for key in self._busy if key[0] != target.name}
        return PhaseResult(latencies, count - skipped, lost, skipped, send_seconds)

    def reset(self, cancel: bool = True) -> None:
        """Start a phase: forget latencies; cancel each request once its displays arrived?"""
        with self._lock:
            self._latencies = []
            self._cancel_after = cancel

    def cancel_all(self, target: Target) -> None:
        """Cancel every request left waiting by a phase run with `cancel=False`."""
        with self._lock:
            held = [(key, rid) for key, rid in self._held.items() if key[0] == target.name]
            for key, _ in held:
                del self._held[key]
                self._cancelling[key] = set()
        for (_, index), request_id in held:
            self._send_cancel(target.cancel(self._network.stops[index]), request_id)
        self._settle(lambda: not self._cancelling, 10.0)
        with self._lock:
            self._cancelling.clear()
            self._busy = {key for key in self._busy if key[0] != target.name}

    def _settle(self, condition: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if condition():
                    return
            time.sleep(0.005)

    # --- ingest -------------------------------------------------------------------------------

    def flood(self, target: Target, count: int) -> None:
        """Publish `count` device heartbeats to `target` as fast as the broker acknowledges."""
        devices = self._network.device_ids()
        topics = [target.heartbeat(*device) for device in devices]
        info: mqtt.MQTTMessageInfo | None = None
        for number in range(count):
            info = self._publisher.publish(
                topics[number % len(topics)], b'{"v":1,"online":true}', qos=1, retain=True
            )
        if info is not None:
            info.wait_for_publish(60)

    def latencies_so_far(self) -> int:
        """How many presses got their displays in the current phase."""
        with self._lock:
            return len(self._latencies)
