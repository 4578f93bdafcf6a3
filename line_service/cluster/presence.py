"""Pure: each process's own presence topic, beside the service's.

In a cluster no process puts its last will on `carpool/v1/dispatcher/status`: one killed process
would tell every device the service is gone while another serves. Each says "online" there when
it starts dispatching, and keeps its own will on `carpool/v1/dispatcher/nodes/<client id>`.
"""

from __future__ import annotations

import re

from stop_devices import topics
from stop_devices.mqtt_link import Outgoing
from stop_devices.schema import StatusMessage

NODES = f"{topics.PREFIX}/dispatcher/nodes"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def node_topic(client_id: str) -> str:
    """Where one process says whether it is up (its MQTT client id, made a safe segment)."""
    return f"{NODES}/{_UNSAFE.sub('_', client_id)[:64]}"


def node_presence(client_id: str, online: bool) -> Outgoing:
    """One process's retained presence (its birth, or its last will)."""
    body = StatusMessage(v=1, online=online)
    return Outgoing(node_topic(client_id), body.model_dump_json().encode())
