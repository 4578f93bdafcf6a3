"""Adapter: deadlines and periodic work with APScheduler (the one module that imports it).

The database, not the scheduler, is the source of truth for deadlines: jobs live in memory and
are re-armed from the stored requests at every start. A deadline already past fires at once.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

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
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def arm(self, request_id: RequestId, at: datetime) -> None:
        """Fire DeadlineReached(request_id) at `at` (at once if `at` is past)."""
        self._scheduler.add_job(
            self._fire,
            "date",
            run_date=at,
            args=[request_id],
            id=f"deadline:{request_id}",
            replace_existing=True,
        )

    def disarm(self, request_id: RequestId) -> None:
        """Forget a deadline (no error if it already fired)."""
        job = self._scheduler.get_job(f"deadline:{request_id}")
        if job is not None:
            job.remove()

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

    async def _fire(self, request_id: RequestId) -> None:
        self._submit(DeadlineReached(request_id))

    async def _send(self, event: Event) -> None:
        # Coroutine jobs run on the event loop; a plain function would run on a worker thread.
        self._submit(event)

    async def _refresh(self) -> None:
        self._submit(LeaseRefreshDue())
