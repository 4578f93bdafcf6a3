"""Shell: the harness's paho clients — threaded loop, Nagle off, deep in-flight window."""

from __future__ import annotations

import socket
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion


def _nodelay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    if isinstance(sock, socket.socket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def connect(
    port: int, client_id: str, on_message: mqtt.CallbackOnMessage | None = None
) -> mqtt.Client:
    """A connected client with its network loop running in a thread."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id)
    client.max_inflight_messages_set(65_000)
    client.max_queued_messages_set(0)
    client.on_socket_open = _nodelay
    connected = threading.Event()

    def on_connect(*_args: Any) -> None:
        connected.set()

    client.on_connect = on_connect
    if on_message is not None:
        client.on_message = on_message
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    if not connected.wait(10):
        raise TimeoutError(f"{client_id} could not connect to 127.0.0.1:{port}")
    return client


def close(client: mqtt.Client) -> None:
    """Disconnect and stop the loop thread."""
    client.disconnect()
    client.loop_stop()
