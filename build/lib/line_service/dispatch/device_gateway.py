"""Shell: joins the MQTT link and the engine — device messages in, displays and screens out."""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections import Counter

import structlog

from dispatcher.effects import ShowOnSign, ShowOnTerminal
from dispatcher.events import DevicesResyncRequested, DeviceStatusReported
from dispatcher.model import Network, RequestId
from line_service.dispatch.engine import Engine
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
        # The last status payload forwarded per topic, for devices of the network only.
        self._last_status: dict[str, bytes] = {}
        self.repeated_statuses = 0
        # Set once the desired state of every device reached the broker after a connection.
        self.reasserted = asyncio.Event()
        self._resync: asyncio.Task[None] | None = None
        self.link = MqttLink(
            address,
            client_id=client_id,
            subscriptions=topics.DEVICE_UPLINKS,
            on_message=self._on_message,
            on_connected=self._on_connected,
            before_subscribing=self._wait_reasserted,
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
        if self._last_status.get(received.topic) == received.payload:
            # A heartbeat repeating what this device said last: presence changes only through
            # status messages, so the core would change nothing. Skipped before any decoding,
            # which keeps a region's heartbeats off the engine.
            self.repeated_statuses += 1
            return
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
        if isinstance(decoded, DeviceStatusReported):
            self._last_status[received.topic] = received.payload
        if self._engine is not None:
            self._engine.submit_nowait(decoded)

    def _on_connected(self) -> None:
        if self._engine is not None:
            self.reasserted.clear()
            self._resync = asyncio.get_running_loop().create_task(self._reassert(self._engine))

    async def _wait_reasserted(self) -> None:
        """The link subscribes once every device has its desired state (see MqttLink)."""
        if self._engine is not None:
            await self.reasserted.wait()

    async def _reassert(self, engine: Engine) -> None:
        """Every sign and terminal told its desired state again; `reasserted` set once done."""
        try:
            await engine.submit(DevicesResyncRequested())
            await self.link.flushed()
        except Exception:
            log.exception("mqtt.resync_failed")
            return
        self.reasserted.set()
