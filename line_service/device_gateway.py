"""Shell: joins the MQTT link and the engine — device messages in, displays and screens out."""

from __future__ import annotations

import secrets
import uuid
from collections import Counter

import structlog

from dispatcher.effects import ShowOnSign, ShowOnTerminal
from dispatcher.events import DevicesResyncRequested
from dispatcher.model import Network, RequestId
from line_service.engine import Engine
from stop_devices import topics, translate
from stop_devices.mqtt_link import BrokerAddress, MqttLink, Received

log = structlog.get_logger(__name__)


def new_request_ids() -> tuple[RequestId, str]:
    """A fresh request id (hex, as the national registry wants) and a 4-digit code candidate."""
    return RequestId(uuid.uuid4().hex), f"{secrets.randbelow(10_000):04d}"


class DeviceGateway:
    """The dispatcher's side of MQTT v1."""

    def __init__(self, network: Network, address: BrokerAddress, client_id: str) -> None:
        self._network = network
        self._engine: Engine | None = None
        self.dropped: Counter[str] = Counter()
        self._last_seq: dict[tuple[str, str], int] = {}
        self.stale_skipped = 0
        self.received = 0
        self.link = MqttLink(
            address,
            client_id=client_id,
            subscriptions=topics.DEVICE_UPLINKS,
            on_message=self._on_message,
            on_connected=self._on_connected,
            birth=translate.presence(True),
            will=translate.presence(False),
            persistent=True,
        )

    def attach(self, engine: Engine) -> None:
        """Send decoded events to this engine."""
        self._engine = engine

    def show_on_sign(self, effect: ShowOnSign) -> None:
        """Publish a sign's display (retained), unless a newer one went out already."""
        if self._newer(("sign", effect.sign_id), effect.display.seq):
            self.link.publish(translate.encode_sign(effect))

    def show_on_terminal(self, effect: ShowOnTerminal) -> None:
        """Publish a terminal's screen (retained), unless a newer one went out already."""
        if self._newer(("terminal", effect.terminal_id), effect.screen.seq):
            self.link.publish(translate.encode_terminal(effect))

    def _newer(self, device: tuple[str, str], seq: int) -> bool:
        # Screens held behind a stuck write may come after newer ones: the retained message on
        # the broker must never go back to an older state.
        if seq <= self._last_seq.get(device, -1):
            self.stale_skipped += 1
            return False
        self._last_seq[device] = seq
        return True

    def _on_message(self, received: Received) -> None:
        self.received += 1
        decoded = translate.decode(self._network, received, new_request_ids)
        if isinstance(decoded, translate.Dropped):
            self.dropped[decoded.reason.value] += 1
            log.warning(
                "mqtt.dropped",
                reason=decoded.reason.value,
                detail=decoded.detail,
                topic=received.topic[:120],
                payload=received.payload[:120].decode("utf-8", "replace"),
            )
            return
        if self._engine is not None:
            self._engine.submit_nowait(decoded)

    def _on_connected(self) -> None:
        if self._engine is not None:
            self._engine.submit_nowait(DevicesResyncRequested())
