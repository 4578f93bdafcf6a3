"""Shell: the database writer — group commits in a worker thread, follow-ups after each commit.

A failed commit is retried with backoff and never dropped: the requests stay queued, in order,
and their follow-ups (terminal screens, answers to callers) wait until the data is stored.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog

from dispatcher.effects import SaveDevicePresence
from dispatcher.model import RequestId
from dispatcher.request_machine import RequestState, RideRequest, Source
from line_service.storage.store import Store

log = structlog.get_logger(__name__)

# Under load, commits are spaced at least this far apart, so each carries what arrived
# meanwhile: a transaction's fixed cost (~130 us of CPU on SQLite, under the GIL the event loop
# needs) is shared by many changes. An idle writer commits at once: a lone press waits for
# nothing. Only terminal screens and API answers wait for a commit; signs never do.
GROUP_COMMIT_SECONDS = 0.010

Change = tuple[RideRequest, RequestState | None]
Alias = tuple[Source, RequestId]


@dataclass
class _Batch:
    changes: list[Change] = field(default_factory=list)
    aliases: list[Alias] = field(default_factory=list)
    follow_ups: list[Callable[[], None]] = field(default_factory=list)


class Writer:
    """Queues writes from the engine (never blocking it) and commits them in batches."""

    def __init__(
        self,
        store: Store,
        max_retry_delay: float = 5.0,
        refuse_after: float = 5.0,
        group_commit_seconds: float = GROUP_COMMIT_SECONDS,
        on_stuck: Callable[[list[RequestId]], None] | None = None,
        gate: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        """`gate` is asked before each commit: False stops the writer for good, nothing stored
        and nobody told (a cluster's owner that lost its lines is standing down)."""
        self._store = store
        self._gate = gate
        self.group_commit_seconds = group_commit_seconds
        self._refuse_after = refuse_after
        self._refused: set[RequestId] = set()
        self._on_stuck = on_stuck
        self._pending = _Batch()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._max_retry_delay = max_retry_delay
        self.commits = 0
        self.failures = 0
        self._statuses: dict[tuple[str, str, str], tuple[bool, datetime]] = {}
        self._status_flush: asyncio.Task[None] | None = None

    def save(
        self, changes: list[Change], then: Callable[[], None], aliases: list[Alias] | None = None
    ) -> None:
        """Store these request changes (and source aliases), then call `then`."""
        self._pending.changes.extend(changes)
        self._pending.aliases.extend(aliases or ())
        self._pending.follow_ups.append(then)
        self._idle.clear()
        self._wake.set()

    def save_device_status(self, presence: SaveDevicePresence) -> None:
        """Remember a device's presence (best effort, off the engine).

        Only changes of presence reach here (the core asks for none on a repeated heartbeat);
        coalesced: the newest status per device, written in one transaction by one worker job
        at a time.
        """
        key = (presence.line_id, presence.kind.value, presence.device_id)
        self._statuses[key] = (presence.online, presence.at)
        if self._status_flush is None or self._status_flush.done():
            self._status_flush = asyncio.get_running_loop().create_task(self._flush_statuses())

    async def _flush_statuses(self) -> None:
        while self._statuses:
            batch, self._statuses = self._statuses, {}
            try:
                await asyncio.to_thread(self._save_statuses, batch)
            except Exception as exc:
                log.error("writer.device_status_failed", error=str(exc)[:300])

    def _save_statuses(self, batch: dict[tuple[str, str, str], tuple[bool, datetime]]) -> None:
        self._store.save_device_statuses(
            [
                (line_id, kind, device_id, online, at)
                for (line_id, kind, device_id), (online, at) in batch.items()
            ]
        )

    @property
    def busy(self) -> bool:
        """True while something queued is not yet committed and followed up."""
        return not self._idle.is_set()

    async def drained(self) -> None:
        """Return once everything queued so far is committed."""
        await self._idle.wait()

    async def run(self) -> None:
        """Commit until cancelled."""
        loop = asyncio.get_running_loop()
        last_commit_at = -float("inf")
        while True:
            await self._wake.wait()
            since = loop.time() - last_commit_at
            if since < self.group_commit_seconds:
                await asyncio.sleep(self.group_commit_seconds - since)
            self._wake.clear()
            batch, self._pending = self._pending, _Batch()
            last_commit_at = loop.time()
            await self._commit(batch)
            for follow_up in batch.follow_ups:
                try:
                    follow_up()
                except Exception:
                    log.exception("writer.follow_up_failed")
            if not (self._pending.changes or self._pending.aliases or self._pending.follow_ups):
                self._idle.set()

    async def _commit(self, batch: _Batch) -> None:
        if not (batch.changes or batch.aliases):
            return  # only follow-ups, kept in order behind earlier writes
        if self._gate is not None and not await self._gate():
            log.error("writer.fenced", changes=len(batch.changes))
            await asyncio.get_running_loop().create_future()  # never: the process is ending
        delay = 0.05
        failing_since: float | None = None
        loop = asyncio.get_running_loop()
        while True:
            try:
                await asyncio.to_thread(self._store.save, batch.changes, batch.aliases)
            except Exception as exc:
                self.failures += 1
                failing_since = failing_since if failing_since is not None else loop.time()
                log.error(
                    "writer.commit_failed",
                    error=str(exc)[:300],
                    changes=len(batch.changes),
                    retry_in=delay,
                )
                if loop.time() - failing_since >= self._refuse_after:
                    self._refuse_unstored(batch)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_retry_delay)
                continue
            self.commits += 1
            self._refused.difference_update(request.id for request, _ in batch.changes)
            return

    def _refuse_unstored(self, batch: _Batch) -> None:
        """Ask for the refusal of requests accepted during the outage (each once).

        Never silently: they are kept and stored when the database is back, refusal included.
        """
        created = [
            request.id
            for request, previous in (*batch.changes, *self._pending.changes)
            if previous is None and request.is_live and request.id not in self._refused
        ]
        if created and self._on_stuck is not None:
            self._refused.update(created)
            log.error("writer.refusing_unstored", requests=len(created))
            self._on_stuck(created)
