"""Adapter: the one module that imports aiomqtt — sessions, and a link that stays connected.

The link reconnects with capped, jittered backoff (aiomqtt does not), then publishes its birth
message, calls `on_connected` so the owner can re-publish desired state, and re-subscribes —
once the owner says that state is out (`before_subscribing`, bounded by SUBSCRIBE_HOLD_SECONDS):
a subscription makes the broker send every retained message it matches at once (after a
restart, one status per device), which would otherwise compete with the re-publication.
Outbound messages are retained device states: the link keeps only the newest per topic, so a
dead broker never grows a queue and never blocks whoever publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import aiomqtt
import paho.mqtt.client as mqtt
import structlog

from stop_devices.paho_wire import (
    Acknowledgements,
    WireError,
    acknowledge_cheaply,
    coalesce_writes,
    read_in_bulk,
    receive_directly,
    write_from_loop,
)

log = structlog.get_logger(__name__)

QOS = 1
MAX_INFLIGHT = 0  # no limit: paho sends at once, and never rescans its queue on each PUBACK
TCP_NODELAY = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
SUBSCRIBE_HOLD_SECONDS = 5.0
ACK_TIMEOUT_SECONDS = 10.0  # as aiomqtt's own timeout for an awaited publish


class BrokerUrlError(ValueError):
    """CARPOOL_MQTT_URL is not an mqtt:// URL."""


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where the broker listens, and how to log in."""

    host: str
    port: int
    username: str | None = None
    password: str | None = None

    @classmethod
    def from_url(cls, url: str) -> BrokerAddress:
        """Parse `mqtt://[user:pass@]host:port`."""
        parts = urlsplit(url)
        if parts.scheme != "mqtt" or not parts.hostname:
            raise BrokerUrlError(f"expected mqtt://[user:pass@]host:port, got {url!r}")
        try:
            port = parts.port or 1883
        except ValueError as exc:
            raise BrokerUrlError(f"bad port in {url!r}") from exc
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return cls(parts.hostname, port, user, password)


@dataclass(frozen=True, slots=True)
class Received:
    """One message as it came off the wire (immutable record)."""

    topic: str
    payload: bytes
    retain: bool


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish."""

    topic: str
    payload: bytes
    retain: bool = True


class Session:
    """A connected client: publish, subscribe, read."""

    def __init__(self, client: aiomqtt.Client, acks: Acknowledgements) -> None:
        self._client = client
        self._acks = acks

    async def publish(self, message: Outgoing) -> None:
        """Publish with QoS 1 (returns once the broker acknowledged)."""
        await self._client.publish(message.topic, message.payload, qos=QOS, retain=message.retain)

    async def publish_all(self, messages: Iterable[Outgoing]) -> None:
        """Publish several messages at once; return when the broker acknowledged every one.

        They go straight onto paho's socket, tracked by the link itself (`Acknowledgements`):
        a broker sends QoS 1 acknowledgements in the order it received the messages (MQTT
        3.1.1 §4.6), so only the last one is awaited. Raises MqttError when the connection
        drops, or no acknowledgement came within ACK_TIMEOUT_SECONDS.
        """
        batch = list(messages)
        if not batch:
            return
        acks = self._acks
        try:
            for message in batch:
                last = acks.publish(message.topic, message.payload, message.retain)
            await acks.acknowledged(last, ACK_TIMEOUT_SECONDS)
        except WireError as exc:
            raise aiomqtt.MqttError(str(exc)) from exc

    async def subscribe(self, *filters: str) -> None:
        """Subscribe to topic filters with QoS 1."""
        await self._client.subscribe([(topic_filter, QOS) for topic_filter in filters])

    async def unsubscribe(self, *filters: str) -> None:
        """End the subscriptions to these filters (one that does not exist is no error)."""
        await self._client.unsubscribe(list(filters))

    def raw_socket(self) -> socket.socket | None:
        """The TCP socket under the session (diagnostics and fault injection only)."""
        sock = self._client._client.socket()
        return sock if isinstance(sock, socket.socket) else None

    async def deliver(self, handler: Callable[[Received], None]) -> None:
        """Hand every message to `handler` (which must not raise) as paho reads it, in arrival
        order, until the connection drops (MqttError) or the session ends.

        `messages()` costs a task and an `asyncio.wait` per message (aiomqtt's iterator) and a
        hop through its queue; the link's handler only queues an event, so it is called from
        paho's read directly. What aiomqtt queued before the call is handed over first.
        """
        client = self._client
        while not client._queue.empty():
            message = client._queue.get_nowait()
            payload = message.payload
            raw = payload if isinstance(payload, bytes | bytearray) else str(payload).encode()
            handler(Received(message.topic.value, bytes(raw), bool(message.retain)))

        def on_message(_client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
            try:
                topic = message.topic
            except UnicodeDecodeError:
                log.warning("mqtt.bad_topic", topic=repr(message._topic[:120]))
                return
            handler(Received(topic, bytes(message.payload), bool(message.retain)))

        def on_publish(topic: str, payload: bytes, retain: bool) -> None:
            handler(Received(topic, payload, retain))

        paho = client._client
        paho.on_message = on_message  # what paho's own path still delivers (QoS 2, bad UTF-8)
        undo_receive = receive_directly(paho, on_publish)
        try:
            # Shielded: a cancelled delivery must not cancel aiomqtt's own future.
            await asyncio.shield(client._disconnected)
        except aiomqtt.MqttError as exc:
            raise aiomqtt.MqttError("Disconnected during message delivery") from exc
        finally:
            undo_receive()
            paho.on_message = client._on_message

    async def messages(self) -> AsyncIterator[Received]:
        """Messages in arrival order, until the connection drops."""
        async for message in self._client.messages:
            payload = message.payload
            raw = payload if isinstance(payload, bytes | bytearray) else str(payload).encode()
            yield Received(message.topic.value, bytes(raw), bool(message.retain))


@contextlib.asynccontextmanager
async def connect(
    address: BrokerAddress,
    client_id: str | None = None,
    will: Outgoing | None = None,
    persistent: bool = False,
    keepalive: int = 30,
) -> AsyncIterator[Session]:
    """A session on the broker (TCP_NODELAY set); raises LinkError when it cannot connect."""
    client = aiomqtt.Client(
        address.host,
        address.port,
        username=address.username,
        password=address.password,
        identifier=client_id,
        clean_session=not persistent,
        keepalive=keepalive,
        will=aiomqtt.Will(will.topic, will.payload, qos=QOS, retain=will.retain) if will else None,
        socket_options=[TCP_NODELAY],
        timeout=10,
        # A resync publishes every display at once: let them all be on the wire together.
        max_inflight_messages=MAX_INFLIGHT,
    )
    try:
        async with client:
            loop = asyncio.get_running_loop()
            acks = Acknowledgements(client._client, loop)
            client._disconnected.add_done_callback(_failing(acks))
            coalesce_writes(client._client)
            acknowledge_cheaply(client._client, acks)
            read_in_bulk(client._client)
            write_from_loop(client._client, loop, _disconnect_on(client))
            try:
                yield Session(client, acks)
            finally:
                acks.fail_all("session closed")
    except aiomqtt.MqttError as exc:
        raise LinkError(str(exc)) from exc


def _failing(acks: Acknowledgements) -> Callable[[asyncio.Future[None]], None]:
    """When the session's connection ends, its unacknowledged batches fail at once."""

    def fail(disconnected: asyncio.Future[None]) -> None:
        # Read here (aiomqtt leaves an unexpected disconnection's error unread otherwise).
        error = None if disconnected.cancelled() else disconnected.exception()
        acks.fail_all(f"disconnected: {error}" if error else "disconnected")

    return fail


def _disconnect_on(client: aiomqtt.Client) -> Callable[[Exception], None]:
    """What aiomqtt does when a write raises: the session ends with that error."""

    def fail(exc: Exception) -> None:
        if not client._disconnected.done():
            client._disconnected.set_exception(exc)

    return fail


def _raise_if_cancelled() -> None:
    """Raise the cancellation a library's `asyncio.wait_for` swallowed (Python 3.11: a cancel that
    meets the awaited answer, here a SUBACK, is lost), so that a stopping link stops."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class LinkError(Exception):
    """The broker could not be reached, or the connection dropped."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Capped exponential backoff with full jitter on its upper half."""

    initial: float = 0.2
    cap: float = 10.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt number `attempt` (0-based)."""
        ceiling = min(self.cap, self.initial * 2 ** min(attempt, 16))
        return random.uniform(ceiling / 2, ceiling)


class MqttLink:
    """A long-lived connection: reconnects, re-subscribes, re-births, pumps outbound state."""

    def __init__(
        self,
        address: BrokerAddress,
        *,
        client_id: str,
        subscriptions: tuple[str, ...],
        on_message: Callable[[Received], None],
        on_connected: Callable[[], None],
        before_subscribing: Callable[[], Awaitable[None]] | None = None,
        birth: Outgoing | None = None,
        will: Outgoing | None = None,
        persistent: bool = False,
        backoff: Backoff = Backoff(),
        gate: Callable[[], Awaitable[bool]] | None = None,
        unsubscribe_first: Callable[[], tuple[str, ...]] | None = None,
    ) -> None:
        """`unsubscribe_first` names, at each connection, filters a persistent session may
        still hold from an earlier life and that are not wanted now (they are ended before
        the wanted ones are subscribed)."""
        self._address = address
        self._client_id = client_id
        self._subscriptions = subscriptions
        self._unsubscribe_first = unsubscribe_first
        self._session: Session | None = None
        self._subscribed = False  # the current session's subscriptions were sent
        self._on_message = on_message
        self._on_connected = on_connected
        self._before_subscribing = before_subscribing
        self._birth = birth
        self._will = will
        self._persistent = persistent
        self._backoff = backoff
        # Asked before each outbound batch: False holds every message back (a fenced owner).
        self._gate = gate
        self._pending: dict[str, Outgoing] = {}
        self._wake = asyncio.Event()
        self._flushed = asyncio.Event()
        self._flushed.set()
        self._connected = asyncio.Event()
        self.connections = 0

    @property
    def connected(self) -> bool:
        """True while a session is up."""
        return self._connected.is_set()

    async def wait_connected(self) -> None:
        """Return once a session is up."""
        await self._connected.wait()

    def publish(self, message: Outgoing) -> None:
        """Queue a message; a newer one for the same topic replaces it. Never blocks."""
        self._pending.pop(message.topic, None)
        self._pending[message.topic] = message
        self._flushed.clear()
        self._wake.set()

    async def flushed(self) -> None:
        """Return once every message queued so far is acknowledged by the broker."""
        await self._flushed.wait()

    def forget(self, topic_prefixes: tuple[str, ...]) -> int:
        """Drop the queued messages whose topic starts with one of the prefixes (a line handed
        to another process: its owner publishes there now); how many were dropped."""
        dropped = [topic for topic in self._pending if topic.startswith(topic_prefixes)]
        for topic in dropped:
            del self._pending[topic]
        if not self._pending:
            self._flushed.set()
        return len(dropped)

    async def subscribe(self, filters: tuple[str, ...]) -> None:
        """Add subscriptions: sent now on a session already subscribed, else with the others
        when the session subscribes (and again on every reconnection)."""
        new = tuple(f for f in filters if f not in self._subscriptions)
        self._subscriptions = (*self._subscriptions, *new)
        session = self._session
        if new and session is not None and self._subscribed:
            try:
                await session.subscribe(*new)
            except aiomqtt.MqttError as exc:  # the reconnection subscribes them
                log.warning("mqtt.subscribe_failed", error=str(exc)[:200])

    async def unsubscribe(self, filters: tuple[str, ...]) -> None:
        """End subscriptions, now on a live session, and at every reconnection."""
        gone = set(filters)
        self._subscriptions = tuple(f for f in self._subscriptions if f not in gone)
        session = self._session
        if filters and session is not None and self._subscribed:
            try:
                await session.unsubscribe(*filters)
            except aiomqtt.MqttError as exc:  # `unsubscribe_first` ends them on reconnecting
                log.warning("mqtt.unsubscribe_failed", error=str(exc)[:200])

    async def run(self) -> None:
        """Stay connected until cancelled."""
        attempt = 0
        while True:
            try:
                async with connect(
                    self._address, self._client_id, self._will, self._persistent
                ) as session:
                    attempt = 0
                    await self._serve(session)
            except LinkError as exc:
                log.warning("mqtt.disconnected", error=str(exc)[:200], client_id=self._client_id)
            finally:
                self._connected.clear()
                self._session = None
                self._subscribed = False
            await asyncio.sleep(self._backoff.delay(attempt))
            attempt += 1

    async def _serve(self, session: Session) -> None:
        if self._birth is not None:
            await session.publish(self._birth)
        self.connections += 1
        self._session = session
        self._subscribed = False
        self._connected.set()
        log.info(
            "mqtt.connected",
            client_id=self._client_id,
            host=self._address.host,
            port=self._address.port,
        )
        self._on_connected()
        pump = asyncio.create_task(self._pump(session), name=f"mqtt-pump-{self._client_id}")
        try:
            dynamic = self._unsubscribe_first is not None
            if self._subscriptions or dynamic:
                if self._before_subscribing is not None:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._before_subscribing(), SUBSCRIBE_HOLD_SECONDS)
                # From here `subscribe()` sends its own: none is lost between the two.
                self._subscribed = True
                wanted = self._subscriptions
                if self._unsubscribe_first is not None:
                    stale = tuple(f for f in self._unsubscribe_first() if f not in wanted)
                    if stale:
                        await session.unsubscribe(*stale)
                if wanted:
                    await session.subscribe(*wanted)
                _raise_if_cancelled()
            await session.deliver(self._deliver)
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump

    def _deliver(self, received: Received) -> None:
        try:
            self._on_message(received)
        except Exception:
            log.exception(
                "mqtt.handler_failed", topic=received.topic, payload=received.payload[:200]
            )

    async def _pump(self, session: Session) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._gate is not None and not await self._gate():
                log.error("mqtt.publish_fenced", pending=len(self._pending))
                return  # this session publishes nothing more
            batch, self._pending = list(self._pending.values()), {}
            try:
                await session.publish_all(batch)
            except aiomqtt.MqttError as exc:
                for message in batch:
                    self._pending.setdefault(message.topic, message)
                log.warning("mqtt.publish_failed", error=str(exc)[:200], pending=len(self._pending))
                return
            if not self._pending:
                self._flushed.set()
