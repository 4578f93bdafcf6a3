"""Test support: a plain paho-mqtt client acting as a device or watching topics."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.support.waiting import wait_until

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Received:
    """One message as the broker delivered it to the probe."""

    topic: str
    payload: bytes
    retain: bool


class MqttProbe:
    """Connects, subscribes, remembers every message by topic; publishes like a device would."""

    def __init__(self, port: int, subscriptions: tuple[str, ...] = ("#",)) -> None:
        self._lock = threading.Lock()
        self.messages: dict[str, list[bytes]] = {}
        self.received: list[Received] = []
        self._subscriptions = subscriptions
        self._subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_message = self._on_message
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(10):
            raise AssertionError("probe could not subscribe")

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe([(topic, 1) for topic in self._subscriptions])

    def _on_subscribe(self, *_: Any) -> None:
        self._subscribed.set()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            payload = bytes(message.payload)
            self.messages.setdefault(message.topic, []).append(payload)
            self.received.append(Received(message.topic, payload, bool(message.retain)))

    def publish(self, topic: str, payload: Json | bytes | str, retain: bool = False) -> None:
        """Publish with QoS 1 and wait for the broker's acknowledgement."""
        data = json.dumps(payload) if isinstance(payload, dict) else payload
        info = self.client.publish(topic, data, qos=1, retain=retain)
        info.wait_for_publish(10)

    def last(self, topic: str) -> Json | None:
        """The last JSON payload seen on a topic."""
        with self._lock:
            seen = self.messages.get(topic)
            return json.loads(seen[-1]) if seen else None

    def all(self, topic: str) -> list[Json]:
        """Every JSON payload seen on a topic."""
        with self._lock:
            return [json.loads(raw) for raw in self.messages.get(topic, [])]

    def deliveries(self, topic: str) -> list[Received]:
        """Every message seen on a topic, with its retain flag, in order."""
        with self._lock:
            return [seen for seen in self.received if seen.topic == topic]

    def wait_last(self, topic: str, predicate: Callable[[Json], bool], timeout: float = 5) -> Json:
        """Wait until the last payload on `topic` satisfies `predicate`; return it."""

        def holds() -> bool:
            payload = self.last(topic)
            return payload is not None and predicate(payload)

        wait_until(holds, timeout, f"{topic} to satisfy the condition (last: {self.last(topic)})")
        found = self.last(topic)
        assert found is not None
        return found

    def close(self) -> None:
        """Disconnect."""
        self.client.loop_stop()
        self.client.disconnect()
