"""Pure: the outbound SMS port — what the service asks a provider (Twilio, console) to send."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class OutgoingSms:
    """One text to one E.164 number; `ref` names what it is about (a request id) for logs."""

    to: str
    body: str
    ref: str


class SmsSender(Protocol):
    """A provider. `send` never blocks and never raises; `run` delivers until cancelled."""

    def send(self, message: OutgoingSms) -> None: ...

    async def run(self) -> None: ...


def masked(phone: str) -> str:
    """A number as logs may show it: its last two digits only."""
    return "…" + phone[-2:]
