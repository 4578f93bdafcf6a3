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


def acknowledge_cheaply(client: mqtt.Client) -> None:
    """From now on, `client` reads a PUBACK (MQTT 3.1.1: a message id, nothing else) directly.

    paho decodes each acknowledgement through its MQTT 5 machinery — a reason code object and
    an empty properties object built per packet, exceptions converted on the way — then marks
    the message published. Here the two bytes of the id are read and paho's own bookkeeping
    (`_do_on_publish`) runs as before, given one shared "success" and one empty set of
    properties (nobody reads them for 3.1.1). Anything else goes to paho's own handler.
    """
    own_handler = client._handle_pubackcomp
    success = ReasonCode(PacketTypes.PUBACK)
    no_properties = Properties(PacketTypes.PUBACK)  # type: ignore[no-untyped-call]

    def handle(cmd: Literal["PUBACK", "PUBCOMP"]) -> MQTTErrorCode:
        body = client._in_packet["packet"]
        if cmd != "PUBACK" or client._protocol == mqtt.MQTTv5 or len(body) != _MID.size:
            return own_handler(cmd)
        (mid,) = _MID.unpack(body)
        with client._out_message_mutex:
            if mid in client._out_messages:
                return client._do_on_publish(mid, success, no_properties)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    client._handle_pubackcomp = handle  # type: ignore[method-assign]
