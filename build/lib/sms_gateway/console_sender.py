"""Adapter: the development SMS provider — logs each message instead of sending it."""

from __future__ import annotations

import structlog

from sms_gateway.sender import OutgoingSms, masked

log = structlog.get_logger(__name__)


class ConsoleSender:
    """Logs messages (number masked) and keeps them in `sent` for inspection."""

    def __init__(self) -> None:
        self.sent: list[OutgoingSms] = []

    def send(self, message: OutgoingSms) -> None:
        """Log the message at once."""
        self.sent.append(message)
        del self.sent[:-100]
        log.info("sms.console", to=masked(message.to), ref=message.ref, body=message.body)

    async def run(self) -> None:
        """Nothing to deliver in the background."""
