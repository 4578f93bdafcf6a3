"""Adapter: MQTT messages to core events, and core effects to MQTT messages.

Inbound, every message is checked in this order, and the first failure is a `Dropped` with a
reason (logged with a truncated payload and counted by the caller, never raised): topic shape,
payload size, JSON, schema, device present in lines.yaml, device on the line the topic names.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

from dispatcher.effects import ShowOnSign, ShowOnTerminal
from dispatcher.events import (
    Actor,
    DeviceStatusReported,
    Event,
    RideCancelled,
    RideRequested,
    SignReported,
)
from dispatcher.model import DeviceKind, LineId, Network, RequestId, SignId, StopId, TerminalId
from dispatcher.request_machine import Channel as RequestChannel
from dispatcher.request_machine import Source
from stop_devices import topics
from stop_devices.mqtt_link import Outgoing, Received
from stop_devices.schema import (
    MAX_PAYLOAD_BYTES,
    ScreenMessage,
    SignDisplayMessage,
    SignStateMessage,
    StatusMessage,
    TerminalCancel,
    TerminalRequest,
)


class DropReason(StrEnum):
    """Why an inbound message was dropped."""

    NOT_OUR_TOPIC = "not_our_topic"
    NOT_AN_UPLINK = "not_an_uplink"
    TOO_LARGE = "too_large"
    NOT_JSON = "not_json"
    INVALID = "invalid_payload"
    UNKNOWN_DEVICE = "unknown_device"
    WRONG_LINE = "wrong_line"


@dataclass(frozen=True, slots=True)
class Dropped:
    """An inbound message that became no event."""

    reason: DropReason
    detail: str


NewIds = Callable[[], tuple[RequestId, str]]
"""Gives a fresh request id and a code candidate (the shell's randomness, not the core's)."""


def terminal_source(terminal_id: str, device_request_id: str) -> Source:
    """The idempotency key of a terminal's press."""
    return Source(RequestChannel.TERMINAL, f"{terminal_id}/{device_request_id}")


def decode(network: Network, received: Received, new_ids: NewIds) -> Event | Dropped:
    """The core event a device message means, or why it was dropped."""
    topic = topics.parse(received.topic)
    if topic is None:
        return Dropped(DropReason.NOT_OUR_TOPIC, received.topic[:120])
    if topic.channel in (topics.Channel.SCREEN, topics.Channel.DISPLAY):
        return Dropped(DropReason.NOT_AN_UPLINK, received.topic)
    if len(received.payload) > MAX_PAYLOAD_BYTES:
        return Dropped(DropReason.TOO_LARGE, f"{len(received.payload)} bytes")
    try:
        data = json.loads(received.payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Dropped(DropReason.NOT_JSON, str(exc)[:120])
    place = network.device(topic.kind, topic.device_id)
    if place is None:
        return Dropped(DropReason.UNKNOWN_DEVICE, f"{topic.kind.value} {topic.device_id}")
    if place.line_id != topic.line_id:
        return Dropped(DropReason.WRONG_LINE, f"{topic.device_id} is on {place.line_id}")
    line_id = LineId(topic.line_id)
    try:
        match topic.channel:
            case topics.Channel.REQUEST:
                press = TerminalRequest.model_validate(data)
                request_id, code = new_ids()
                return RideRequested(
                    request_id=request_id,
                    line_id=line_id,
                    stop_id=place.stop_id,
                    destination_id=StopId(press.destination),
                    seats=press.seats,
                    source=terminal_source(topic.device_id, press.request_id),
                    code_candidate=code,
                    terminal_id=TerminalId(topic.device_id),
                )
            case topics.Channel.CANCEL:
                cancel = TerminalCancel.model_validate(data)
                return RideCancelled(
                    line_id=line_id,
                    actor=Actor.RIDER,
                    departed=cancel.reason == "departed",
                    source=terminal_source(topic.device_id, cancel.request_id),
                )
            case topics.Channel.STATE:
                state = SignStateMessage.model_validate(data)
                return SignReported(
                    line_id=line_id,
                    sign_id=SignId(topic.device_id),
                    seq=state.seq,
                    pages=tuple(tuple(page) for page in state.pages),
                )
            case _:
                status = StatusMessage.model_validate(data)
                return DeviceStatusReported(line_id, topic.kind, topic.device_id, status.online)
    except ValidationError as exc:
        return Dropped(DropReason.INVALID, _summary(exc))


def _summary(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "payload"
    return f"{where}: {first['msg']}"[:160]


def encode_sign(effect: ShowOnSign) -> Outgoing:
    """The retained display message for a sign."""
    message = SignDisplayMessage(
        v=1,
        seq=effect.display.seq,
        pages=[list(page) for page in effect.display.pages],
        expires_at=effect.display.expires_at,
    )
    topic = topics.sign(effect.line_id, effect.sign_id, topics.Channel.DISPLAY)
    return Outgoing(topic, message.model_dump_json().encode())


def encode_terminal(effect: ShowOnTerminal) -> Outgoing:
    """The retained screen message for a terminal."""
    screen = effect.screen
    message = ScreenMessage(
        v=1,
        seq=screen.seq,
        state=screen.state.value,
        request_id=screen.device_request_id,
        code=screen.code,
        lines=list(screen.lines),
        expires_at=screen.expires_at,
    )
    topic = topics.terminal(effect.line_id, effect.terminal_id, topics.Channel.SCREEN)
    return Outgoing(topic, message.model_dump_json().encode())


def presence(online: bool, **facts: str) -> Outgoing:
    """The dispatcher's retained presence message (birth or last will)."""
    body = StatusMessage(v=1, online=online, **facts)
    return Outgoing(topics.DISPATCHER_STATUS, body.model_dump_json().encode())


__all__ = ["DeviceKind", "Dropped", "decode", "encode_sign", "encode_terminal", "presence"]
