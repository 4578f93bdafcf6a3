"""Adapter: the MQTT v1 JSON payloads as frozen pydantic models (validated at the edge).

Times on the wire are RFC 3339 in UTC ("2026-11-23T06:45:00.120Z"). Unknown fields are refused,
except on status payloads whose contract allows extra device facts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer

MAX_PAYLOAD_BYTES = 4096

DeviceRequestId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
StopRef = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")]
Row = Annotated[str, Field(max_length=64)]
PageRows = Annotated[list[Row], Field(max_length=8)]


def wire_time(value: datetime) -> str:
    """A datetime as the protocol writes it: UTC, milliseconds, 'Z'."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


WireTime = Annotated[AwareDatetime, PlainSerializer(wire_time, return_type=str)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Literal[1]


class TerminalRequest(_Wire):
    """A rider pressed a destination button."""

    request_id: DeviceRequestId
    destination: StopRef
    seats: int = Field(default=1, ge=1, le=4)
    pressed_at: WireTime | None = None


class TerminalCancel(_Wire):
    """A rider cancelled at the terminal, or said they left with a driver."""

    request_id: DeviceRequestId
    reason: Literal["cancelled", "departed"] = "cancelled"


class ScreenMessage(_Wire):
    """What a terminal must show (retained)."""

    seq: int = Field(ge=0)
    state: Literal[
        "idle", "waiting", "picked_up", "cancelled", "expired", "fallback", "closed", "refused"
    ]
    request_id: str | None
    code: str | None
    lines: list[Row]
    expires_at: WireTime


class SignDisplayMessage(_Wire):
    """What a sign must show (retained); `pages == []` is blank."""

    seq: int = Field(ge=0)
    pages: Annotated[list[PageRows], Field(max_length=8)]
    expires_at: WireTime


class SignStateMessage(_Wire):
    """What a sign really shows now."""

    seq: int = Field(ge=0)
    pages: Annotated[list[PageRows], Field(max_length=8)]
    at: WireTime | None = None


class StatusMessage(BaseModel):
    """A device's (or the dispatcher's) presence; extra facts are allowed and ignored."""

    model_config = ConfigDict(extra="allow", frozen=True)

    v: Literal[1]
    online: bool
