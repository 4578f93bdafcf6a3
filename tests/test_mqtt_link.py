"""The MQTT link against a real Mosquitto: reconnects, re-subscribes, re-births, never blocks."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable

import aiomqtt
import pytest

from stop_devices.mqtt_link import (
    Backoff,
    BrokerAddress,
    BrokerUrlError,
    MqttLink,
    Outgoing,
    Received,
    connect,
)
from tests.support.brokers import Mosquitto
from tests.support.mqtt_probe import MqttProbe

FAST = Backoff(initial=0.05, cap=0.5)


async def eventually(condition: Callable[[], bool], within: float, what: str) -> None:
    """Wait for a condition with a deadline, yielding to the loop."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running_link(link: MqttLink) -> AsyncIterator[MqttLink]:
    task = asyncio.create_task(link.run())
    try:
        yield link
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_broker_urls_parse_and_bad_ones_are_refused() -> None:
    assert BrokerAddress.from_url("mqtt://u%40x:p%3Aw@broker.local:8883") == BrokerAddress(
        "broker.local", 8883, "u@x", "p:w"
    )
    assert BrokerAddress.from_url("mqtt://127.0.0.1").port == 1883
    for bad in ("http://host:1", "mqtt://", "mqtt://host:notaport"):
        with pytest.raises(BrokerUrlError):
            BrokerAddress.from_url(bad)


def test_backoff_is_capped_and_jittered() -> None:
    backoff = Backoff(initial=0.1, cap=2.0)
    delays = [backoff.delay(attempt) for attempt in range(40)]
    assert all(0.05 <= delay <= 2.0 for delay in delays)
    assert max(delays[10:]) <= 2.0
    assert len({round(delay, 6) for delay in delays[10:]}) > 1  # jittered, not a fixed beat


async def test_session_sets_tcp_nodelay(mosquitto: Mosquitto) -> None:
    address = BrokerAddress("127.0.0.1", mosquitto.port)
    async with connect(address) as session:
        sock = session.raw_socket()
        assert sock is not None
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


async def test_link_survives_a_broker_restart_resubscribes_and_rebirths(
    mosquitto: Mosquitto,
) -> None:
    topic = f"test/{uuid.uuid4().hex}"
    received: list[Received] = []
    connections: list[int] = []
    link = MqttLink(
        BrokerAddress("127.0.0.1", mosquitto.port),
        client_id=f"link-{uuid.uuid4().hex[:8]}",
        subscriptions=(f"{topic}/in",),
        on_message=received.append,
        on_connected=lambda: connections.append(1),
        birth=Outgoing(f"{topic}/status", b'{"online":true}'),
        will=Outgoing(f"{topic}/status", b'{"online":false}'),
        backoff=FAST,
    )
    async with running_link(link):
        await asyncio.wait_for(link.wait_connected(), 5)
        probe = MqttProbe(mosquitto.port, (f"{topic}/#",))
        probe.publish(f"{topic}/in", b"one")
        await eventually(lambda: [m.payload for m in received] == [b"one"], 5, "first message")
        probe.close()

        mosquitto.stop()
        await eventually(lambda: not link.connected, 10, "link to notice the broker is gone")
        link.publish(Outgoing(f"{topic}/desired", b"while-down"))  # must not block or raise
        mosquitto.start()
        await eventually(lambda: len(connections) == 2, 15, "reconnection")

        probe = MqttProbe(mosquitto.port, (f"{topic}/#",))
        probe.publish(f"{topic}/in", b"two")
        await eventually(lambda: b"two" in [m.payload for m in received], 5, "re-subscribed")
        await eventually(lambda: probe.last(f"{topic}/status") == {"online": True}, 5, "rebirth")
        await eventually(lambda: f"{topic}/desired" in probe.messages, 5, "queued state sent")
        assert probe.messages[f"{topic}/desired"][-1] == b"while-down"
        probe.close()


async def test_last_will_reports_offline_when_the_link_dies(mosquitto: Mosquitto) -> None:
    topic = f"test/{uuid.uuid4().hex}"
    probe = MqttProbe(mosquitto.port, (f"{topic}/#",))
    will = Outgoing(f"{topic}/status", json.dumps({"v": 1, "online": False}).encode())
    address = BrokerAddress("127.0.0.1", mosquitto.port)
    async with connect(address, f"will-{uuid.uuid4().hex[:8]}", will=will, keepalive=1) as session:
        await session.publish(Outgoing(f"{topic}/status", b'{"v":1,"online":true}'))
        await eventually(
            lambda: probe.last(f"{topic}/status") == {"v": 1, "online": True}, 5, "online"
        )
        sock = session.raw_socket()  # a power cut: the connection dies without DISCONNECT
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)
        await eventually(
            lambda: probe.last(f"{topic}/status") == {"v": 1, "online": False}, 10, "last will"
        )
    probe.close()


async def test_outbound_keeps_only_the_newest_message_per_topic(mosquitto: Mosquitto) -> None:
    topic = f"test/{uuid.uuid4().hex}"
    link = MqttLink(
        BrokerAddress("127.0.0.1", mosquitto.port),
        client_id=f"coalesce-{uuid.uuid4().hex[:8]}",
        subscriptions=(),
        on_message=lambda _: None,
        on_connected=lambda: None,
        backoff=FAST,
    )
    for n in range(100):  # queued before any connection: only the newest per topic survives
        link.publish(Outgoing(f"{topic}/sign-{n % 3}", str(n).encode()))
    probe = MqttProbe(mosquitto.port, (f"{topic}/#",))
    async with running_link(link):
        await eventually(lambda: len(probe.messages) == 3, 5, "three topics")
        await eventually(
            lambda: all(len(v) == 1 for v in probe.messages.values()), 5, "one message per topic"
        )
        assert sorted(v[0] for v in probe.messages.values()) == [b"97", b"98", b"99"]
    probe.close()


async def test_a_failing_handler_does_not_stop_the_receive_loop(mosquitto: Mosquitto) -> None:
    topic = f"test/{uuid.uuid4().hex}"
    good: list[bytes] = []

    def handler(message: Received) -> None:
        if message.payload == b"boom":
            raise RuntimeError("faulty handler")
        good.append(message.payload)

    link = MqttLink(
        BrokerAddress("127.0.0.1", mosquitto.port),
        client_id=f"isolated-{uuid.uuid4().hex[:8]}",
        subscriptions=(f"{topic}/in",),
        on_message=handler,
        on_connected=lambda: None,
        backoff=FAST,
    )
    async with running_link(link):
        await asyncio.wait_for(link.wait_connected(), 5)
        probe = MqttProbe(mosquitto.port, (f"{topic}/#",))
        probe.publish(f"{topic}/in", b"boom")
        probe.publish(f"{topic}/in", b"after")
        await eventually(lambda: good == [b"after"], 5, "message after the failure")
        assert link.connections == 1
        probe.close()


async def test_the_link_subscribes_once_the_owner_has_republished_its_state(
    mosquitto: Mosquitto,
) -> None:
    # After a restart the broker holds one retained status per device: subscribing makes it send
    # them all at once. The link re-publishes the desired state first, then subscribes.
    topic = f"test/{uuid.uuid4().hex}"
    probe = MqttProbe(mosquitto.port, (f"{topic}/#",))
    probe.publish(f"{topic}/in/device-1", b"retained status", retain=True)
    await eventually(lambda: f"{topic}/in/device-1" in probe.messages, 5, "retained status")
    order: list[str] = []
    released = asyncio.Event()

    async def hold() -> None:
        order.append("holding")
        await released.wait()

    link = MqttLink(
        BrokerAddress("127.0.0.1", mosquitto.port),
        client_id=f"link-{uuid.uuid4().hex[:8]}",
        subscriptions=(f"{topic}/in/#",),
        on_message=lambda message: order.append(f"received {message.payload.decode()}"),
        on_connected=lambda: link.publish(Outgoing(f"{topic}/desired", b"state")),
        before_subscribing=hold,
        backoff=FAST,
    )
    async with running_link(link):
        await eventually(lambda: f"{topic}/desired" in probe.messages, 5, "the desired state")
        order.append("state out")
        # Not subscribed yet: a live message now is not for the link (clean session).
        probe.publish(f"{topic}/in/device-2", b"sent while holding")
        released.set()
        await eventually(lambda: "received retained status" in order, 5, "the retained status")
        probe.publish(f"{topic}/in/device-2", b"sent once subscribed")
        await eventually(lambda: "received sent once subscribed" in order, 5, "a live message")
    assert order == [
        "holding",
        "state out",
        "received retained status",
        "received sent once subscribed",
    ]
    probe.close()


async def test_an_owner_that_never_says_ready_delays_the_subscription_only_so_long(
    mosquitto: Mosquitto, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("stop_devices.mqtt_link.SUBSCRIBE_HOLD_SECONDS", 0.2)

    async def never_ready() -> None:
        await asyncio.Event().wait()

    topic = f"test/{uuid.uuid4().hex}"
    received: list[Received] = []
    link = MqttLink(
        BrokerAddress("127.0.0.1", mosquitto.port),
        client_id=f"link-{uuid.uuid4().hex[:8]}",
        subscriptions=(f"{topic}/in",),
        on_message=received.append,
        on_connected=lambda: None,
        before_subscribing=never_ready,
        backoff=FAST,
    )
    async with running_link(link):
        probe = MqttProbe(mosquitto.port, (f"{topic}/#",))
        probe.publish(f"{topic}/in", b"still heard", retain=True)
        await eventually(lambda: [m.payload for m in received] == [b"still heard"], 5, "subscribed")
        probe.close()


async def test_a_shut_gate_holds_every_publication_back(mosquitto: Mosquitto) -> None:
    topic = f"test/{uuid.uuid4().hex}"
    asked = asyncio.Event()

    async def fence() -> bool:  # a cluster process that no longer owns its lines
        asked.set()
        return False

    link = MqttLink(
        BrokerAddress("127.0.0.1", mosquitto.port),
        client_id=f"fenced-{uuid.uuid4().hex[:8]}",
        subscriptions=(),
        on_message=lambda _: None,
        on_connected=lambda: None,
        backoff=FAST,
        gate=fence,
    )
    other = MqttLink(
        BrokerAddress("127.0.0.1", mosquitto.port),
        client_id=f"open-{uuid.uuid4().hex[:8]}",
        subscriptions=(),
        on_message=lambda _: None,
        on_connected=lambda: None,
        backoff=FAST,
    )
    probe = MqttProbe(mosquitto.port, (f"{topic}/#",))
    async with running_link(link), running_link(other):
        await asyncio.wait_for(asyncio.gather(link.wait_connected(), other.wait_connected()), 5)
        link.publish(Outgoing(f"{topic}/sign", b"stale"))
        await asyncio.wait_for(asked.wait(), 5)
        other.publish(Outgoing(f"{topic}/marker", b"after"))  # sent after the gate said no
        await asyncio.wait_for(other.flushed(), 5)
        await eventually(lambda: f"{topic}/marker" in probe.messages, 5, "the marker")
        assert f"{topic}/sign" not in probe.messages
    probe.close()


async def test_a_batch_larger_than_the_socket_buffer_arrives_whole_in_order_and_retained(
    mosquitto: Mosquitto,
) -> None:
    # One write carries every queued packet; a kernel that takes only part of it must not lose
    # or reorder the rest, and the batch counts as sent only once the broker acknowledged all.
    topic = f"test/{uuid.uuid4().hex}"
    probe = MqttProbe(mosquitto.port, (f"{topic}/#",))
    batch = [Outgoing(f"{topic}/sign-{n}", bytes([65 + n % 26]) * 3000) for n in range(400)]
    async with connect(BrokerAddress("127.0.0.1", mosquitto.port)) as session:
        sock = session.raw_socket()
        assert sock is not None
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        await asyncio.wait_for(session.publish_all(batch), 30)
    await eventually(lambda: len(probe.received) == len(batch), 10, "every message")
    assert [(m.topic, m.payload) for m in probe.received] == [(m.topic, m.payload) for m in batch]
    probe.close()
    late = MqttProbe(mosquitto.port, (f"{topic}/#",))  # retained: a newcomer gets every one
    await eventually(lambda: len(late.messages) == len(batch), 10, "retained messages")
    late.close()


async def test_a_batch_whose_connection_drops_fails_at_once_instead_of_hanging(
    mosquitto: Mosquitto,
) -> None:
    # The link re-queues a failed batch for the next connection: it must hear of the failure
    # when the connection dies, not wait for an acknowledgement that cannot come.
    topic = f"test/{uuid.uuid4().hex}"
    async with connect(BrokerAddress("127.0.0.1", mosquitto.port)) as session:
        sock = session.raw_socket()
        assert sock is not None
        sock.shutdown(socket.SHUT_RDWR)
        with pytest.raises(aiomqtt.MqttError):
            await asyncio.wait_for(session.publish_all([Outgoing(f"{topic}/a", b"x")]), 5)


async def test_a_burst_read_in_one_go_is_handed_over_whole_and_in_order(
    mosquitto: Mosquitto,
) -> None:
    # The link reads whatever arrived at once and serves paho from it: every message of a
    # burst must reach the handler, without waiting for the socket to become readable again.
    topic = f"test/{uuid.uuid4().hex}"
    received: list[bytes] = []
    link = MqttLink(
        BrokerAddress("127.0.0.1", mosquitto.port),
        client_id=f"burst-{uuid.uuid4().hex[:8]}",
        subscriptions=(f"{topic}/in",),
        on_message=lambda message: received.append(message.payload),
        on_connected=lambda: None,
        backoff=FAST,
    )
    async with running_link(link):
        await asyncio.wait_for(link.wait_connected(), 5)
        probe = MqttProbe(mosquitto.port, (f"{topic}/ready",))
        probe.publish(f"{topic}/in", b"first")
        await eventually(lambda: received == [b"first"], 5, "subscribed")
        burst = [str(n).encode() for n in range(500)]
        for payload in burst:
            probe.publish(f"{topic}/in", payload)
        await eventually(lambda: len(received) == 1 + len(burst), 5, "the whole burst")
        assert received[1:] == burst
        probe.close()
