"""Shell: the lines a cluster process dispatches, taken on and handed over while it runs.

Adopting lines: their requests are read back from the database, the engine takes them in one
step (`LinesAdopted`: deadlines re-armed, every sign and terminal of those lines re-asserted),
and the device topics of those lines are subscribed once that state is out.

Handing lines over: the engine forgets them in one step (`LinesDropped`: nothing published or
stored for them after it), the writes already made for them are waited for, their queued
displays are dropped, and their topics unsubscribed. Only then may the caller release their
locks: the next owner restores from what this process stored, and no message of this process
for those lines can reach a device after the next owner's.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta

import structlog

from dispatcher.events import LinesAdopted, LinesDropped
from dispatcher.model import Network
from line_service.dispatch.device_gateway import DeviceGateway
from line_service.dispatch.engine import Engine
from line_service.dispatch.writer import Writer
from line_service.storage.store import Store

log = structlog.get_logger(__name__)

FLUSH_SECONDS = 5.0  # the broker's acknowledgement of the adopted lines' state, at most
DRAIN_SECONDS = 5.0  # the writes of lines handed over, at most


class LineShare:
    """The lines this process dispatches now (`held`), in the lines file's order."""

    def __init__(
        self,
        network: Network,
        store: Store,
        engine: Engine,
        gateway: DeviceGateway,
        writer: Writer,
        clock: Callable[[], datetime],
        restore_window: timedelta,
        on_adopted: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._network = network
        self._store = store
        self._engine = engine
        self._gateway = gateway
        self._writer = writer
        self._clock = clock
        self._restore_window = restore_window
        self._on_adopted = on_adopted
        self.held: tuple[str, ...] = ()
        self._changing = asyncio.Lock()

    def _network_of(self, lines: Iterable[str]) -> Network:
        wanted = set(lines)
        return Network(tuple(line for line in self._network.lines if line.id in wanted))

    async def adopt(self, lines: Iterable[str]) -> None:
        """Dispatch these lines too, from what the database holds of them."""
        async with self._changing:
            new = [line for line in lines if line not in self.held]
            if not new:
                return
            stored = await asyncio.to_thread(
                self._store.live_requests, self._clock(), self._restore_window, new
            )
            aliases = await asyncio.to_thread(
                self._store.aliases_of, [request.id for request in stored]
            )
            held = self._network_of((*self.held, *new))
            await self._gateway.own(frozenset(line.id for line in held.lines))
            await self._engine.submit(LinesAdopted(held, tuple(stored), tuple(aliases)))
            self.held = tuple(line.id for line in held.lines)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gateway.link.flushed(), FLUSH_SECONDS)
            await self._gateway.listen()
            log.info("cluster.lines_adopted", lines=new, requests=len(stored), held=len(self.held))
        if self._on_adopted is not None:
            await self._on_adopted()

    async def release(self, lines: Iterable[str], *, leaving: bool = False) -> bool:
        """Stop dispatching these lines; True once nothing of them is left to store or send
        (their locks may go). With writes pending (the database slow or away) the lines are
        kept and False returned, unless `leaving` (the process stops: it waits a moment for
        them, then hands over anyway)."""
        async with self._changing:
            gone = [line for line in self.held if line in set(lines)]
            if not gone:
                return True
            if self._writer.busy and not leaving:
                log.info("cluster.handover_postponed", lines=gone, reason="writes pending")
                return False
            kept = self._network_of(line for line in self.held if line not in set(gone))
            await self._engine.submit(LinesDropped(kept))
            self.held = tuple(line.id for line in kept.lines)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._writer.drained(), DRAIN_SECONDS)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._gateway.link.flushed(), FLUSH_SECONDS)
            await self._gateway.own(frozenset(self.held))
            log.info("cluster.lines_released", lines=gone, held=len(self.held))
            return True
