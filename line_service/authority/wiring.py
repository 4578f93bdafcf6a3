"""Shell: the wait guarantee's fallbacks and the trip recorder, built for the engine."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from dispatcher.model import Network
from line_service.authority.campaigns_file import campaigns_for
from line_service.authority.driver_identity import Driver, identify_driver
from line_service.authority.fallback import LineFallbacks, TextSender
from line_service.authority.identities import IdentityResolver
from line_service.authority.rpc_client import AccessTokens, RpcClient
from line_service.authority.rpc_outbox import RpcOutbox, RpcSender
from line_service.authority.trips import TripBook, TripRecorder
from line_service.settings import Settings
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
    outbox: RpcOutbox
    sender: RpcSender

    async def run(self) -> None:
        """Run the webhook queues, the trip recorder and the registry outbox until cancelled."""
        async with asyncio.TaskGroup() as group:
            group.create_task(self.fallbacks.run(), name="fallbacks")
            group.create_task(self.trips.run(), name="trip-recorder")
            group.create_task(self.sender.run(), name="rpc-outbox")


def registry_client(settings: Settings, clock: Callable[[], datetime]) -> RpcClient | None:
    """The registry client these settings name (None without CARPOOL_RPC_URL). The outbox
    retries durably itself: one attempt per call here."""
    if not settings.rpc_url.strip():
        return None
    tokens = AccessTokens(
        settings.rpc_access_key, settings.rpc_secret_key.get_secret_value(), clock
    )
    return RpcClient(settings.rpc_url, tokens, max_attempts=1)


def build_authority(
    network: Network,
    store: Store,
    sms: SmsSender,
    settings: Settings | None = None,
    clock: Callable[[], datetime] | None = None,
    identify: Callable[[str], Driver | None] = identify_driver,
) -> AuthorityServices:
    """The line's fallbacks (texts go through the SMS provider), the trip recorder (who drove
    said by `identify`, numbers the database vouches for by `IdentityResolver`) and the registry
    outbox; the engine is given the first two (its fallback dispatcher, and a listener for
    validated rides)."""
    settings = settings or Settings()
    clock = clock or _now
    sender: TextSender = SmsTextSender(sms)
    # The journeys' incentives[] are the campaigns' (a broken campaigns file stops the start).
    campaigns = campaigns_for(settings.campaigns_file, network)
    delay = timedelta(seconds=settings.rpc_send_delay_seconds)
    outbox = RpcOutbox(store, network, clock, delay, campaigns)
    rpc = RpcSender(
        outbox, registry_client(settings, clock), timedelta(seconds=settings.rpc_poll_seconds)
    )
    recorder = TripRecorder(
        network,
        TripBook(store, network),
        identify,
        identities=IdentityResolver(store),
        on_recorded=rpc.wake,
    )
    return AuthorityServices(LineFallbacks(network, sender), recorder, outbox, rpc)


def _now() -> datetime:
    return datetime.now(UTC)
