"""Adapter: deadlines on the event loop, periodic work with APScheduler (its one importer).

The database, not the scheduler, is the source of truth for deadlines: timers live in memory and
are re-armed from the stored requests at every start. A deadline already past fires at once.
Each press arms a deadline and most disarm it again within minutes: those are plain loop timers
(an APScheduler job costs a signature check, a trigger and a wake-up of its own apiece), checked
against the wall clock when they fire, as APScheduler's are.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from dispatcher.effects import ArmMessageExpiry
from dispatcher.events import DeadlineReached, Event, LeaseRefreshDue, OperatorMessageCleared
from dispatcher.model import RequestId


class Timers:
    """Arms request deadlines and the periodic lease refresh; fires events into the engine."""

    def __init__(self, submit: Callable[[Event], None], lease_refresh: timedelta) -> None:
        self._submit = submit
        self._scheduler = AsyncIOScheduler(
            timezone="UTC",
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1},
        )
        self._lease_refresh = lease_refresh
        self._deadlines: dict[RequestId, asyncio.TimerHandle] = {}

    def start(self) -> None:
        """Start the scheduler and the lease refresh (call inside the running loop)."""
        self._scheduler.add_job(
            self._refresh,
            "interval",
            seconds=self._lease_refresh.total_seconds(),
            id="lease-refresh",
            replace_existing=True,
        )
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop firing."""
        for handle in self._deadlines.values():
            handle.cancel()
        self._deadlines.clear()
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def arm(self, request_id: RequestId, at: datetime) -> None:
        """Fire DeadlineReached(request_id) at `at` (at once if `at` is past); replaces any."""
        self.disarm(request_id)
        delay = max(0.0, (at - datetime.now(UTC)).total_seconds())
        loop = asyncio.get_running_loop()
        self._deadlines[request_id] = loop.call_later(delay, self._deadline_due, request_id, at)

    def disarm(self, request_id: RequestId) -> None:
        """Forget a deadline (no error if it already fired)."""
        handle = self._deadlines.pop(request_id, None)
        if handle is not None:
            handle.cancel()

    def _deadline_due(self, request_id: RequestId, at: datetime) -> None:
        if datetime.now(UTC) < at:  # the wall clock went back meanwhile: wait for the rest
            self.arm(request_id, at)
            return
        del self._deadlines[request_id]
        self._submit(DeadlineReached(request_id))

    def arm_message_expiry(self, effect: ArmMessageExpiry) -> None:
        """Withdraw an operator message at its expiry."""
        self._scheduler.add_job(
            self._send,
            "date",
            run_date=effect.at,
            args=[OperatorMessageCleared(effect.line_id, effect.sign_id, effect.message_id)],
            id=f"message:{effect.sign_id}:{effect.message_id}",
            replace_existing=True,
        )

    async def _send(self, event: Event) -> None:
        # Coroutine jobs run on the event loop; a plain function would run on a worker thread.
        self._submit(event)

    async def _refresh(self) -> None:
        self._submit(LeaseRefreshDue())
