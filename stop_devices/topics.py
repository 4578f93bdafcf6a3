"""Adapter: the MQTT v1 topic tree — the only module that builds or parses topic strings.

carpool/v1/{line}/terminals/{terminal}/{request|cancel|screen|status}
carpool/v1/{line}/signs/{sign}/{display|state|status}
carpool/v1/dispatcher/status
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from dispatcher.model import DeviceKind

PREFIX = "carpool/v1"
DISPATCHER_STATUS = f"{PREFIX}/dispatcher/status"
_SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_FOLDER = {DeviceKind.TERMINAL: "terminals", DeviceKind.SIGN: "signs"}
_KIND_OF_FOLDER = {folder: kind for kind, folder in _FOLDER.items()}


class Suffix(StrEnum):
    """The last segment of a device topic."""

    REQUEST = "request"
    CANCEL = "cancel"
    SCREEN = "screen"
    STATUS = "status"
    DISPLAY = "display"
    STATE = "state"


_SUFFIXES_OF = {
    DeviceKind.TERMINAL: {Suffix.REQUEST, Suffix.CANCEL, Suffix.SCREEN, Suffix.STATUS},
    DeviceKind.SIGN: {Suffix.DISPLAY, Suffix.STATE, Suffix.STATUS},
}

# What the dispatcher listens to: everything devices publish.
DEVICE_UPLINKS: tuple[str, ...] = (
    f"{PREFIX}/+/terminals/+/request",
    f"{PREFIX}/+/terminals/+/cancel",
    f"{PREFIX}/+/terminals/+/status",
    f"{PREFIX}/+/signs/+/state",
    f"{PREFIX}/+/signs/+/status",
)


def line_uplinks(line_id: str) -> tuple[str, ...]:
    """What the dispatcher listens to for one line only (a cluster process owning it)."""
    return tuple(f"{PREFIX}/{line_id}/{up.removeprefix(PREFIX + '/+/')}" for up in DEVICE_UPLINKS)


def line_of(topic: str) -> str | None:
    """The line segment of a device topic (not checked further), or None."""
    parts = topic.split("/", 3)
    if len(parts) < 4 or f"{parts[0]}/{parts[1]}" != PREFIX:
        return None
    return parts[2]


def line_prefix(line_id: str) -> str:
    """The start of every topic of one line's devices."""
    return f"{PREFIX}/{line_id}/"


@dataclass(frozen=True, slots=True)
class DeviceTopic:
    """A parsed device topic; valid by construction."""

    line_id: str
    kind: DeviceKind
    device_id: str
    suffix: Suffix

    def __post_init__(self) -> None:
        if not (_SEGMENT.match(self.line_id) and _SEGMENT.match(self.device_id)):
            raise ValueError(f"bad topic segment in {self.line_id!r}/{self.device_id!r}")
        if self.suffix not in _SUFFIXES_OF[self.kind]:
            raise ValueError(f"{self.kind.value} has no {self.suffix.value} topic")

    def __str__(self) -> str:
        folder = _FOLDER[self.kind]
        return f"{PREFIX}/{self.line_id}/{folder}/{self.device_id}/{self.suffix.value}"


def parse(topic: str) -> DeviceTopic | None:
    """The device topic `topic` names, or None when it is not one of ours."""
    parts = topic.split("/")
    if len(parts) != 6 or f"{parts[0]}/{parts[1]}" != PREFIX:
        return None
    _, _, line_id, folder, device_id, last = parts
    kind = _KIND_OF_FOLDER.get(folder)
    if kind is None or last not in Suffix.__members__.values():
        return None
    try:
        return DeviceTopic(line_id, kind, device_id, Suffix(last))
    except ValueError:
        return None


def terminal(line_id: str, terminal_id: str, suffix: Suffix) -> str:
    """The topic of one of a terminal's topics."""
    return str(DeviceTopic(line_id, DeviceKind.TERMINAL, terminal_id, suffix))


def sign(line_id: str, sign_id: str, suffix: Suffix) -> str:
    """The topic of one of a sign's topics."""
    return str(DeviceTopic(line_id, DeviceKind.SIGN, sign_id, suffix))
