"""Composition root: wires the wait guarantee's fallbacks and the trip recorder into the engine."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from dispatcher.model import Network
from line_service.authority.fallback import LineFallbacks, LoggingTextSender, TextSender
from line_service.authority.trips import TripBook, TripRecorder
from line_service.dispatch.engine import Engine
from line_service.storage.store import Store
from sms_gateway.sender import OutgoingSms, SmsSender


class SmsTextSender:
    """A TextSender on top of the SMS channel's provider (Twilio or console)."""

    def __init__(self, sender: SmsSender) -> None:
        self._sender = sender

    def send(self, to: str, body: str) -> None:
        """Queue one text to the provider."""
        self._sender.send(OutgoingSms(to=to, body=body, ref="fallback"))


@dataclass
class AuthorityServices:
    """The running parts of issue 5: fallbacks (webhook queues) and the trip recorder."""

    fallbacks: LineFallbacks
    trips: TripRecorder

    async def run(self) -> None:
        """Run the webhook queues and the trip recorder until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.fallbacks.run(), name="fallbacks")
            group.create_task(self.trips.run(), name="trip-recorder")


def wire_authority(
    network: Network, store: Store, engine: Engine, sms: SmsSender | None
) -> AuthorityServices:
    """Set `engine.fallback`, listen for validated rides, and return what must run."""
    sender: TextSender = LoggingTextSender() if sms is None else SmsTextSender(sms)
    services = AuthorityServices(
        LineFallbacks(network, sender), TripRecorder(network, TripBook(store))
    )
    engine.fallback = services.fallbacks
    engine.listeners.append(services.trips)
    return services
