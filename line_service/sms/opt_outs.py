"""Shell: numbers that wrote STOP get no text from the service until they write again.

The list is kept by salted hash (no number in clear), in memory for the send path and in the
`sms_opt_out` table so it survives a restart. Every outbound text goes through `OptOutSender`,
whatever asked for it (a rider's notification, a taxi's call): one place decides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import structlog

from sms_gateway.sender import OutgoingSms, SmsSender, masked

log = structlog.get_logger(__name__)


class OptOuts:
    """The hashes of the numbers that asked for no more texts."""

    def __init__(self, hasher: Callable[[str], str]) -> None:
        self._hasher = hasher
        self._hashes: set[str] = set()
        self.skipped = 0

    def load(self, hashes: Iterable[str]) -> None:
        """Adopt the stored list (at start)."""
        self._hashes.update(hashes)

    def replace(self, hashes: Iterable[str]) -> None:
        """Take the stored list as it is now (a cluster: another process may have taken a
        STOP or a new text since)."""
        self._hashes = set(hashes)

    def add(self, phone: str) -> str:
        """The number wrote STOP; its hash, to store."""
        hashed = self._hasher(phone)
        self._hashes.add(hashed)
        return hashed

    def remove(self, phone: str) -> str | None:
        """The number wrote again; its hash if it had opted out, to forget in storage."""
        hashed = self._hasher(phone)
        if hashed not in self._hashes:
            return None
        self._hashes.discard(hashed)
        return hashed

    def blocks(self, phone: str) -> bool:
        """True when this number must not be texted."""
        return bool(self._hashes) and self._hasher(phone) in self._hashes


class OptOutSender:
    """A provider that drops every text to a number that wrote STOP (logged, counted)."""

    def __init__(self, inner: SmsSender, opt_outs: OptOuts) -> None:
        self._inner = inner
        self._opt_outs = opt_outs

    @property
    def provider(self) -> SmsSender:
        """The provider behind the filter."""
        return self._inner

    def send(self, message: OutgoingSms) -> None:
        """Queue the text unless its number opted out."""
        if self._opt_outs.blocks(message.to):
            self._opt_outs.skipped += 1
            log.info("sms.opted_out_skipped", to=masked(message.to), ref=message.ref)
            return
        self._inner.send(message)

    async def run(self) -> None:
        """The provider's delivery loop."""
        await self._inner.run()
