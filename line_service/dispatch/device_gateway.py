"""Shell: joins the MQTT link and the engine — device messages in, displays and screens out."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable

import structlog

from dispatcher.effects import ShowOnSign, ShowOnTerminal
from dispatcher.events import DeviceFloodReported, DevicesResyncRequested, DeviceStatusReported
from dispatcher.model import DeviceKind, LineId, Network
from line_service.dispatch.device_limits import Admission, DeviceLimiter
from line_service.dispatch.engine import Inbox
from line_service.dispatch.intake import new_request_ids
from stop_devices import topics, translate
from stop_devices.mqtt_link import BrokerAddress, MqttLink, Outgoing, Received

log = structlog.get_logger(__name__)


class DeviceGateway:
    """The dispatcher's side of MQTT v1."""

    def __init__(
        self,
        network: Network,
        address: BrokerAddress,
        client_id: str,
        inbox: Inbox,
        limiter: DeviceLimiter[tuple[DeviceKind, str]],
        *,
        will: Outgoing | None = None,
        announcements: tuple[Outgoing, ...] = (),
        gate: Callable[[], Awaitable[bool]] | None = None,
        per_line: bool = False,
    ) -> None:
        """`will` replaces the service's presence as last will, `announcements` are published
        on each connection, and `gate` is asked before each publication (a cluster's owner
        passes its fence: see line_service/cluster). With `per_line` the gateway serves no line
        until told (`own`): it subscribes to the owned lines' topics only, and drops whatever
        reaches it, or would leave it, for another line."""
        self._network = network
        self._owned: frozenset[str] | None = frozenset() if per_line else None
        self._listening: set[str] = set()
        self._inbox = inbox
        # Each device's messages beyond its rate are dropped here, before decoding.
        self.limiter = limiter
        self._sweep: asyncio.TimerHandle | None = None
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
        self._announcements = announcements
        self.link = MqttLink(
            address,
            client_id=client_id,
            subscriptions=() if per_line else topics.DEVICE_UPLINKS,
            on_message=self._on_message,
            on_connected=self._on_connected,
            before_subscribing=self._wait_reasserted,
            birth=translate.presence(True),
            will=will or translate.presence(False),
            persistent=True,
            gate=gate,
            unsubscribe_first=self._not_wanted if per_line else None,
        )

    @property
    def owned(self) -> frozenset[str] | None:
        """The lines served (None: every line of the network)."""
        return self._owned

    async def own(self, lines: frozenset[str]) -> None:
        """Serve these lines from now on: the others' messages are dropped both ways, their
        queued displays forgotten and their subscriptions ended. Lines new here are listened
        to only on `listen()`, once the caller re-asserted their devices (a subscription
        brings every retained message at once)."""
        before = self._owned or frozenset()
        self._owned = frozenset(lines)
        gone = sorted(before - self._owned)
        if gone:
            self.link.forget(tuple(topics.line_prefix(line) for line in gone))
            await self.link.unsubscribe(_uplinks(gone))
            self._listening -= set(gone)

    async def listen(self) -> None:
        """Subscribe to the topics of the served lines not listened to yet."""
        new = sorted((self._owned or frozenset()) - self._listening)
        if new:
            self._listening |= set(new)
            await self.link.subscribe(_uplinks(new))

    def _not_wanted(self) -> tuple[str, ...]:
        """Filters a persistent session may hold from an earlier life: the whole tree's, and
        every line's not served now."""
        owned = self._owned or frozenset()
        others = (line.id for line in self._network.lines if line.id not in owned)
        return (*topics.DEVICE_UPLINKS, *_uplinks(others))

    def _serves(self, kind: DeviceKind, device_id: str) -> bool:
        if self._owned is None:
            return True
        place = self._network.device(kind, device_id)
        return place is not None and place.line_id in self._owned

    def show_on_sign(self, effect: ShowOnSign) -> None:
        """Publish a sign's display (retained), unless a newer one went out already."""
        if not self._serves(DeviceKind.SIGN, effect.sign_id):
            self.dropped["not_owned"] += 1
            return
        if self._newer(("sign", effect.sign_id), effect.display.seq):
            self.link.publish(translate.encode_sign(effect))

    def show_on_terminal(self, effect: ShowOnTerminal) -> None:
        """Publish a terminal's screen (retained), unless a newer one went out already."""
        if not self._serves(DeviceKind.TERMINAL, effect.terminal_id):
            self.dropped["not_owned"] += 1
            return
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
        if self._owned is not None and not self._for_owned(received.topic):
            self.dropped["not_owned"] += 1
            return
        if not self._admitted(received.topic):
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
        self._inbox.submit_nowait(decoded)

    def _for_owned(self, topic: str) -> bool:
        """A topic of a line this process serves (a persistent session may still bring others
        from an earlier life, or from a line just handed over)."""
        return topics.line_of(topic) in (self._owned or ())

    def _admitted(self, topic: str) -> bool:
        """Take a token from the device's bucket; on the first drop of an episode, say so."""
        parsed = topics.parse(topic)
        if parsed is None or self._network.device(parsed.kind, parsed.device_id) is None:
            return True  # not a device of ours: decoding drops it (bounded by the ACL)
        key = (parsed.kind, parsed.device_id)
        admission = self.limiter.admit(key)
        if admission is Admission.ADMITTED:
            return True
        if admission is Admission.FLOOD_STARTED:
            log.warning("mqtt.device_flooding", kind=parsed.kind.value, device=parsed.device_id)
            self._report_flood(key, flooding=True)
            self._arm_sweep()
        return False

    def _report_flood(self, key: tuple[DeviceKind, str], *, flooding: bool) -> None:
        place = self._network.device(*key)
        if place is not None:
            line_id = LineId(place.line_id)
            self._inbox.submit_nowait(DeviceFloodReported(line_id, key[0], key[1], flooding))

    def _arm_sweep(self) -> None:
        if self._sweep is None:
            loop = asyncio.get_running_loop()
            self._sweep = loop.call_later(self.limiter.quiet, self.sweep_floods)

    def sweep_floods(self) -> None:
        """Close the flood episodes gone quiet (the core clears their alerts); re-arm if any."""
        self._sweep = None
        for key in self.limiter.close_quiet_episodes():
            log.info("mqtt.device_calm", kind=key[0].value, device=key[1])
            self._report_flood(key, flooding=False)
        if self.limiter.flooding():
            self._arm_sweep()

    def _on_connected(self) -> None:
        for message in self._announcements:
            self.link.publish(message)
        self.reasserted.clear()
        self._resync = asyncio.get_running_loop().create_task(self._reassert())

    async def _wait_reasserted(self) -> None:
        """The link subscribes once every device has its desired state (see MqttLink)."""
        await self.reasserted.wait()

    async def _reassert(self) -> None:
        """Every sign and terminal told its desired state again; `reasserted` set once done."""
        try:
            await self._inbox.submit(DevicesResyncRequested())
            await self.link.flushed()
        except Exception:
            log.exception("mqtt.resync_failed")
            return
        self.reasserted.set()


def _uplinks(lines: Iterable[str]) -> tuple[str, ...]:
    return tuple(f for line in lines for f in topics.line_uplinks(line))
