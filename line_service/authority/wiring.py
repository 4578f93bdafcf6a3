"""Shell: the wait guarantee's fallbacks and the trip recorder, built for the engine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from dispatcher.model import Network
from line_service.authority.driver_identity import Driver, identify_driver
from line_service.authority.fallback import LineFallbacks, TextSender
from line_service.authority.trips import TripBook, TripRecorder
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
    """The running parts of the authority: fallbacks (webhook queues) and the trip recorder."""

    fallbacks: LineFallbacks
    trips: TripRecorder

    async def run(self) -> None:
        """Run the webhook queues and the trip recorder until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.fallbacks.run(), name="fallbacks")
            group.create_task(self.trips.run(), name="trip-recorder")


def build_authority(
    network: Network,
    store: Store,
    sms: SmsSender,
    identify: Callable[[str], Driver | None] = identify_driver,
) -> AuthorityServices:
    """The line's fallbacks (texts go through the SMS provider) and the trip recorder; the
    engine is given both (its fallback dispatcher, and a listener for validated rides).
    `identify` says who drove from a trip's driver_ref (`driver_identity`)."""
    sender: TextSender = SmsTextSender(sms)
    trips = TripRecorder(network, TripBook(store, network), identify)
    return AuthorityServices(LineFallbacks(network, sender), trips)
