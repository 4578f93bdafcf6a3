"""The database writer's group commit: an idle writer commits at once, a busy one in batches."""

from __future__ import annotations

import asyncio
import functools
import threading
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest

from dispatcher.request_machine import (
    RideRequest,
)
from line_service.dispatch.writer import Writer
from line_service.storage.store import Store
from tests.support.requests import ride_request

NOW = datetime(2026, 3, 4, 7, 0, tzinfo=UTC)


class RecordingStore:
    """Stands in for the database: remembers which requests each commit carried."""

    def __init__(self) -> None:
        self.commits: list[list[str]] = []
        self._lock = threading.Lock()

    def save(
        self,
        changes: Iterable[tuple[RideRequest, str | None]],
        aliases: Iterable[object] = (),
    ) -> None:
        with self._lock:
            self.commits.append([request.id for request, _ in changes])


def a_request(name: str) -> RideRequest:
    return ride_request(
        name,
        NOW,
        stop="calais",
        destination="dunkerque",
        terminal="t-calais",
        wait=timedelta(minutes=30),
    )


@pytest.fixture
async def writer() -> AsyncIterator[tuple[Writer, RecordingStore]]:
    store = RecordingStore()
    writer = Writer(cast(Store, store))
    task = asyncio.create_task(writer.run())
    yield writer, store
    task.cancel()


async def test_an_idle_writer_commits_a_lone_change_at_once(
    writer: tuple[Writer, RecordingStore],
) -> None:
    writer_, store = writer
    writer_.group_commit_seconds = 3600.0  # a writer that waited its interval would hang here
    followed_up: list[str] = []
    writer_.save([(a_request("r1"), None)], lambda: followed_up.append("r1"))
    await asyncio.wait_for(writer_.drained(), 5)
    assert store.commits == [["r1"]]
    assert followed_up == ["r1"]


async def test_changes_arriving_right_after_a_commit_share_the_next_one(
    writer: tuple[Writer, RecordingStore],
) -> None:
    writer_, store = writer
    writer_.group_commit_seconds = 0.3
    writer_.save([(a_request("r1"), None)], lambda: None)
    await asyncio.wait_for(writer_.drained(), 5)
    # Three presses a few loop turns apart, within the interval: one transaction, in order.
    followed_up: list[str] = []
    for name in ("r2", "r3", "r4"):
        writer_.save([(a_request(name), None)], functools.partial(followed_up.append, name))
        for _ in range(3):
            await asyncio.sleep(0)
    await asyncio.wait_for(writer_.drained(), 5)
    assert store.commits == [["r1"], ["r2", "r3", "r4"]]
    assert followed_up == ["r2", "r3", "r4"]


async def test_a_shut_gate_stores_nothing_and_tells_nobody() -> None:
    store = RecordingStore()
    asked = asyncio.Event()

    async def fence() -> bool:  # a cluster owner that lost its lines
        asked.set()
        return False

    writer = Writer(cast(Store, store), gate=fence)
    task = asyncio.create_task(writer.run())
    told: list[str] = []
    try:
        writer.save([(a_request("r1"), None)], lambda: told.append("r1"))
        await asyncio.wait_for(asked.wait(), 5)
        writer.save([], lambda: told.append("later"))  # a follow-up queued behind it
        with pytest.raises(TimeoutError):  # it never drains: it stopped for good
            await asyncio.wait_for(writer.drained(), 0.5)
        assert store.commits == []
        assert told == []
    finally:
        task.cancel()
