"""Adapter: paho's socket writes, made cheaper — every queued packet in one `send`.

paho writes its queue one `send` per packet: a press cycle's displays, screens and
acknowledgements were a dozen system calls, each a TCP segment the broker wakes up for. Here,
when paho writes, everything queued goes out in one `send` (the kernel cuts it as it likes;
the broker reads a stream). Same bytes, same order: QoS, retain flags and acknowledgements are
untouched. Packets whose write paho follows up itself (a QoS 0 publish's callback, a
DISCONNECT closing the socket) take paho's own path.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, Literal

import paho.mqtt.client as mqtt
from paho.mqtt.enums import MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

_PUBLISH = 0x30
_DISCONNECT = 0xE0


def _paho_follows_up(packet: Any) -> bool:
    kind = packet["command"] & 0xF0
    return bool(kind == _DISCONNECT or (kind == _PUBLISH and packet["qos"] == 0))


def coalesce_writes(client: mqtt.Client) -> None:
    """From now on, `client` writes all its queued packets with one `send` each time."""
    own_write: Callable[[], MQTTErrorCode] = client._packet_write

    def write_all() -> MQTTErrorCode:
        queue = client._out_packet
        if len(queue) < 2 or any(_paho_follows_up(packet) for packet in queue):
            return own_write()
        packets = list(queue)
        queue.clear()
        data = b"".join(memoryview(packet["packet"])[packet["pos"] :] for packet in packets)
        try:
            written = client._sock_send(data)
        except (AttributeError, ValueError):
            queue.extendleft(reversed(packets))
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        except BlockingIOError:
            queue.extendleft(reversed(packets))
            return MQTTErrorCode.MQTT_ERR_AGAIN
        except OSError:
            queue.extendleft(reversed(packets))
            return MQTTErrorCode.MQTT_ERR_CONN_LOST
        for index, packet in enumerate(packets):
            part = min(written, packet["to_process"])
            packet["pos"] += part
            packet["to_process"] -= part
            written -= part
            if packet["to_process"]:
                # The kernel took part of the stream: the rest goes on the next write.
                queue.extendleft(reversed(packets[index:]))
                break
        with client._msgtime_mutex:
            client._last_msg_out = time.monotonic()
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    client._packet_write = write_all  # type: ignore[method-assign]


def write_from_loop(
    client: mqtt.Client, loop: asyncio.AbstractEventLoop, on_error: Callable[[Exception], None]
) -> None:
    """From now on, `client` writes at the loop's next turn, without a socket writer per batch.

    paho asks for a writer whenever it queues a packet; aiomqtt answered with a socket writer
    added (through the loop's self-pipe) and removed again for every batch: four system calls
    and three turns of the loop before the first byte left. Here the write runs at the loop's
    next turn, carrying whatever was queued meanwhile; only a full socket buffer (the kernel
    took part of it) waits for the socket to be writable, as before. `on_error` gets what
    paho's write raised (the connection is broken).
    """
    loop_thread = threading.get_ident()
    waiting_on_socket: list[int] = []
    scheduled: list[asyncio.Handle] = []

    def flush() -> None:
        scheduled.clear()
        try:
            client.loop_write()
        except Exception as exc:
            on_error(exc)
            return
        sock = client.socket()
        if client.want_write() and sock is not None and not waiting_on_socket:
            waiting_on_socket.append(sock.fileno())
            loop.add_writer(sock.fileno(), flush)

    def register(_client: mqtt.Client, _userdata: Any, _sock: Any) -> None:
        if threading.get_ident() != loop_thread:
            loop.call_soon_threadsafe(register, _client, _userdata, _sock)
        elif not scheduled and not waiting_on_socket:
            scheduled.append(loop.call_soon(flush))

    def unregister(_client: mqtt.Client, _userdata: Any, _sock: Any) -> None:
        if threading.get_ident() != loop_thread:
            loop.call_soon_threadsafe(unregister, _client, _userdata, _sock)
            return
        for handle in scheduled:
            handle.cancel()
        scheduled.clear()
        for fileno in waiting_on_socket:
            loop.remove_writer(fileno)
        waiting_on_socket.clear()

    def take_over() -> None:
        # Runs after whatever aiomqtt queued before the switch (its writer's addition included).
        sock = client.socket()
        if sock is not None and not waiting_on_socket:
            loop.remove_writer(sock.fileno())
        if client.want_write() and not scheduled and not waiting_on_socket:
            scheduled.append(loop.call_soon(flush))

    client.on_socket_register_write = register
    client.on_socket_unregister_write = unregister
    loop.call_soon(take_over)


_MID = struct.Struct("!H")


class WireError(Exception):
    """A publication that cannot complete: the connection dropped, or no acknowledgement came."""


class Acknowledgements:
    """QoS 1 publications the link tracks itself, by message id, until their PUBACK.

    paho tracks each publication with a message object and a `threading.Condition` it notifies
    on the acknowledgement (7 us a publish), and aiomqtt adds a future, a timer and a task for
    each awaited one. The link needs neither: it re-publishes its state on every connection,
    so a message lost with its connection needs no paho bookkeeping, and a broker acknowledges
    QoS 1 messages in the order it received them (MQTT 3.1.1 §4.6), so one future for a batch's
    last message says when the whole batch is stored.
    """

    def __init__(self, client: mqtt.Client, loop: asyncio.AbstractEventLoop) -> None:
        self._client = client
        self._loop = loop
        # Message id → the future of a batch's last message (None for the others).
        self._waiting: dict[int, asyncio.Future[None] | None] = {}
        self._broken: str | None = None

    def publish(self, topic: str, payload: bytes, retain: bool) -> int:
        """Queue one QoS 1 PUBLISH on paho's socket; returns its message id."""
        if self._broken is not None:
            raise WireError(self._broken)
        client = self._client
        if client.socket() is None:
            raise WireError("not connected")
        mid = client._mid_generate()
        if mid in self._waiting or mid in client._out_messages:
            raise WireError("every message id is in flight")
        name = topic.encode()
        if not name or b"+" in name or b"#" in name or len(name) > 65535:
            raise WireError(f"invalid topic {topic[:120]!r}")
        packet = bytearray((_PUBLISH | 0x02 | (1 if retain else 0),))
        try:  # paho's own encoders: the length's varint (and its 256 MB cap), the topic
            client._pack_remaining_length(packet, 2 + len(name) + 2 + len(payload))
        except ValueError as exc:
            raise WireError(f"payload of {len(payload)} bytes: {exc}") from exc
        client._pack_str16(packet, name)
        packet += _MID.pack(mid)
        packet += payload
        self._waiting[mid] = None
        client._out_packet.append(
            {
                "command": _PUBLISH,
                "mid": mid,
                "qos": 1,
                "pos": 0,
                "to_process": len(packet),
                "packet": packet,
                "info": None,
            }
        )
        client._call_socket_register_write()
        return mid

    async def acknowledged(self, mid: int, within: float) -> None:
        """Return once the broker acknowledged `mid` (and every message published before it)."""
        if mid not in self._waiting:
            return
        future: asyncio.Future[None] = self._loop.create_future()
        self._waiting[mid] = future
        timer = self._loop.call_later(within, self._time_out, future)
        try:
            await future
        finally:
            timer.cancel()

    @staticmethod
    def _time_out(future: asyncio.Future[None]) -> None:
        if not future.done():
            future.set_exception(WireError("no acknowledgement in time"))

    def acknowledge(self, mid: int) -> bool:
        """A PUBACK for `mid`: True if it was one of ours."""
        if mid not in self._waiting:
            return False
        waiter = self._waiting.pop(mid)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return True

    def fail_all(self, reason: str) -> None:
        """The connection is gone: every awaited batch fails, and so does any later publish."""
        self._broken = reason
        waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            if waiter is not None and not waiter.done():
                waiter.set_exception(WireError(reason))


def acknowledge_cheaply(client: mqtt.Client, ours: Acknowledgements) -> None:
    """From now on, `client` reads a PUBACK (MQTT 3.1.1: a message id, nothing else) directly.

    paho decodes each acknowledgement through its MQTT 5 machinery — a reason code object and
    an empty properties object built per packet, exceptions converted on the way — then marks
    the message published. Here the two bytes of the id are read; an id of `ours` is settled
    there, any other goes through paho's own bookkeeping (`_do_on_publish`) as before, given
    one shared "success" and one empty set of properties (nobody reads them for 3.1.1).
    Anything else goes to paho's own handler.
    """
    own_handler = client._handle_pubackcomp
    success = ReasonCode(PacketTypes.PUBACK)
    no_properties = Properties(PacketTypes.PUBACK)  # type: ignore[no-untyped-call]

    def handle(cmd: Literal["PUBACK", "PUBCOMP"]) -> MQTTErrorCode:
        body = client._in_packet["packet"]
        if cmd != "PUBACK" or client._protocol == mqtt.MQTTv5 or len(body) != _MID.size:
            return own_handler(cmd)
        (mid,) = _MID.unpack(body)
        if ours.acknowledge(mid):
            return MQTTErrorCode.MQTT_ERR_SUCCESS
        with client._out_message_mutex:
            if mid in client._out_messages:
                return client._do_on_publish(mid, success, no_properties)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    client._handle_pubackcomp = handle  # type: ignore[method-assign]


READ_CHUNK = 65536


class _Buffered:
    """What one `recv` brought and paho has not consumed yet."""

    __slots__ = ("data", "pos")

    def __init__(self) -> None:
        self.data = b""
        self.pos = 0

    def __bool__(self) -> bool:
        return self.pos < len(self.data)


def read_in_bulk(client: mqtt.Client) -> None:
    """From now on, `client` reads its socket a chunk at a time and serves paho from that.

    paho reads each packet in three `recv` calls (its type, its length byte by byte, its body)
    and a fourth to learn that nothing is left: sixteen system calls a press cycle. Here one
    `recv` fetches whatever arrived; paho's reads are served from it, and `loop_read` goes on
    until all of it is read (no packet left behind waiting for the socket to become readable).
    """
    own_recv = client._sock_recv
    own_loop_read = client.loop_read
    left = _Buffered()

    def recv(bufsize: int) -> bytes:
        if not left:
            data = own_recv(READ_CHUNK)  # raises when nothing arrived; b"" when the peer closed
            if len(data) <= bufsize:
                return data
            left.data, left.pos = data, 0
        start = left.pos
        left.pos = min(start + bufsize, len(left.data))
        return left.data[start : left.pos]

    def loop_read(max_packets: int = 1) -> MQTTErrorCode:
        rc = own_loop_read(max_packets)
        while left and rc == MQTTErrorCode.MQTT_ERR_SUCCESS and client.socket() is not None:
            rc = own_loop_read(max_packets)
        return rc

    client._sock_recv = recv  # type: ignore[method-assign]
    client.loop_read = loop_read  # type: ignore[method-assign]


def receive_directly(
    client: mqtt.Client, deliver: Callable[[str, bytes, bool], None]
) -> Callable[[], None]:
    """`client` hands each QoS 0/1 PUBLISH to `deliver` itself, until the returned undo is called.

    paho decodes a PUBLISH through its MQTT 5 machinery, builds a message object (with its
    `threading.Condition`), formats two debug lines and looks the topic up in its table of
    per-filter callbacks before calling `on_message`. Here the topic, the id and the payload
    are sliced out of the packet and `deliver(topic, payload, retain)` is called; a QoS 1
    message is then acknowledged as paho would (after the delivery). QoS 2, MQTT 5, manual
    acknowledgements, a topic that is not UTF-8 and anything malformed take paho's own path.
    """
    own_handler = client._handle_publish

    def handle() -> MQTTErrorCode:
        command = client._in_packet["command"]
        body = client._in_packet["packet"]
        qos = (command & 0x06) >> 1
        if qos > 1 or client._protocol == mqtt.MQTTv5 or client._manual_ack or len(body) < 2:
            return own_handler()
        start = 2 + ((body[0] << 8) | body[1])
        end = start + 2 if qos else start
        if len(body) < end:
            return own_handler()  # malformed: paho's decoding says so
        try:
            topic = body[2:start].decode()
        except UnicodeDecodeError:
            return own_handler()
        deliver(topic, bytes(body[end:]), bool(command & 0x01))
        if qos:
            return client._send_puback((body[start] << 8) | body[start + 1])
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def undo() -> None:
        client._handle_publish = own_handler  # type: ignore[method-assign]

    client._handle_publish = handle  # type: ignore[method-assign]
    return undo
