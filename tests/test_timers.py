"""Deadlines and their timers, on a real event loop (order, not sleeps, tells what fired)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from dispatcher.events import DeadlineReached, Event
from dispatcher.model import RequestId
from line_service.dispatch.timers import Timers


class Fired:
    """Collects the events the timers submit."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self._arrived = asyncio.Event()

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        self._arrived.set()

    async def until(self, count: int) -> list[Event]:
        async with asyncio.timeout(5):
            while len(self.events) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.events


def after(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_a_past_deadline_fires_at_once_and_later_ones_in_their_order() -> None:
    fired = Fired()
    timers = Timers(fired, timedelta(minutes=1))
    timers.arm(RequestId("late"), after(0.2))
    timers.arm(RequestId("overdue"), after(-60))
    timers.arm(RequestId("soon"), after(0.1))
    assert await fired.until(3) == [
        DeadlineReached(RequestId("overdue")),
        DeadlineReached(RequestId("soon")),
        DeadlineReached(RequestId("late")),
    ]
    timers.shutdown()


async def test_a_disarmed_deadline_never_fires_and_arming_again_replaces_it() -> None:
    fired = Fired()
    timers = Timers(fired, timedelta(minutes=1))
    timers.arm(RequestId("picked-up"), after(0.05))
    timers.disarm(RequestId("picked-up"))
    timers.disarm(RequestId("never-armed"))  # no error
    timers.arm(RequestId("moved"), after(0.05))
    timers.arm(RequestId("moved"), after(0.3))  # replaces the first
    timers.arm(RequestId("marker"), after(0.15))
    # Had either early timer survived, it would have fired before the marker.
    assert await fired.until(2) == [
        DeadlineReached(RequestId("marker")),
        DeadlineReached(RequestId("moved")),
    ]
    timers.shutdown()


async def test_shutdown_cancels_every_armed_deadline() -> None:
    fired = Fired()
    timers = Timers(fired, timedelta(minutes=1))
    timers.arm(RequestId("pending"), after(0.05))
    timers.shutdown()
    other = Timers(fired, timedelta(minutes=1))
    other.arm(RequestId("marker"), after(0.15))
    assert await fired.until(1) == [DeadlineReached(RequestId("marker"))]
    other.shutdown()
