"""Line ownership on a real PostgreSQL: one holder per line, the owner's name told to the
others, and a fence that shuts once the lock session is gone."""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy
from pydantic import ValidationError

from line_service.cluster.ownership import (
    APPLICATION_PREFIX,
    FRESH_SECONDS,
    LineOwnership,
    lock_key,
)
from line_service.cluster.standby import look
from line_service.settings import Settings

LINES = ("calais-dunkerque", "lille-roubaix")


class Cells:
    """The dispatch side, recording what it is told to adopt."""

    def __init__(self) -> None:
        self.adopted: list[tuple[str, ...]] = []

    async def adopt(self, lines: tuple[str, ...]) -> None:
        self.adopted.append(lines)

    async def release(self, lines: tuple[str, ...], *, leaving: bool = False) -> bool:
        return True


class FakeMonotonic:
    """A monotonic clock the test moves (a process resumed after SIGSTOP sees such a jump)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_lock_keys_are_fixed_64_bit_values_one_per_line() -> None:
    keys = {lock_key(line) for line in LINES}
    assert len(keys) == len(LINES)
    assert all(-(2**63) <= key < 2**63 for key in keys)
    assert lock_key("calais-dunkerque") == lock_key("calais-dunkerque")  # every process agrees


def test_a_cluster_needs_postgresql() -> None:
    with pytest.raises(ValidationError, match="needs a PostgreSQL CARPOOL_DATABASE_URL"):
        Settings(cluster=True, database_url="sqlite:///var/carpool.sqlite3")
    assert Settings(cluster=True, database_url="postgresql+psycopg://db/carpool").cluster


def _held_back(database_url: str, node: str) -> tuple[str, bool]:
    """A node's lock session's state, and whether it keeps vacuum from a transaction committed
    just now (its `backend_xmin` at or before that transaction)."""
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.begin() as connection:
            committed = int(connection.execute(sqlalchemy.text("SELECT txid_current()")).one()[0])
        with engine.connect() as connection:
            state, horizon = connection.execute(
                sqlalchemy.text(
                    "SELECT state, backend_xmin::text::bigint FROM pg_stat_activity"
                    " WHERE application_name = :name"
                ),
                {"name": f"{APPLICATION_PREFIX}{node}"},
            ).one()
            return str(state), horizon is not None and int(horizon) <= committed
    finally:
        engine.dispose()


def _terminate(database_url: str, node: str) -> None:
    """End a node's lock session from the server side (as the idle timeout would)."""
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sqlalchemy.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = :name"
                ),
                {"name": f"{APPLICATION_PREFIX}{node}"},
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_one_holder_the_owner_named_and_the_fence_shut_once_the_session_dies(
    database_url: str,
) -> None:
    clock = FakeMonotonic()
    first = LineOwnership(database_url, LINES, "node-a", clock)
    second = LineOwnership(database_url, LINES, "node-b")
    try:
        cells = Cells()
        await look(first, cells)  # alone: every line
        assert first.role == "owner"
        assert first.owned == LINES
        assert [set(lines) for lines in cells.adopted] == [set(LINES)]
        await look(second, cells)  # every line held: nothing to take
        assert second.role == "standby"
        assert second.owner_hint == "node-a"
        refusal = second.refusal()
        assert refusal is not None
        assert "'node-a'" in refusal
        assert first.refusal() is None
        assert await first.fence()
        # Idle in its transaction (what the idle timeout watches), keeping vacuum from nothing
        # the rest of the database commits meanwhile.
        state, _ = await asyncio.to_thread(_held_back, database_url, "node-a")
        assert state == "idle in transaction"
        clock.now += FRESH_SECONDS + 0.1
        assert await first.fence()  # a heartbeat; between statements it holds no snapshot
        assert await asyncio.to_thread(_held_back, database_url, "node-a") == (
            "idle in transaction",
            False,
        )

        await asyncio.to_thread(_terminate, database_url, "node-a")
        assert await first.fence()  # confirmed a moment ago: no query on each publication
        clock.now += FRESH_SECONDS + 0.1  # … but after a gap, it asks again
        assert not await first.fence()
        assert first.lost.is_set()
        assert first.role == "standby"
        await look(second, cells)  # the lines went with the session: alone now, it takes them
        assert second.role == "owner"
        assert [set(lines) for lines in cells.adopted] == [set(LINES)] * 2
    finally:
        await first.close()
        await second.close()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_lines_are_held_one_by_one_seen_by_the_others_and_handed_back(
    database_url: str,
) -> None:
    first = LineOwnership(database_url, LINES, "node-a")
    second = LineOwnership(database_url, LINES, "node-b")
    try:
        assert (await first.survey()).nodes == {"node-a"}  # alone so far
        assert await first.take([LINES[0]]) == (LINES[0],)
        seen = await second.survey()
        assert seen.nodes == {"node-a", "node-b"}
        assert seen.holders == {LINES[0]: "node-a"}
        assert await second.take(LINES) == (LINES[1],)  # the held one is not taken
        assert (first.owned, second.owned) == ((LINES[0],), (LINES[1],))
        assert second.owner_of(LINES[0]) == "node-a"
        assert second.owner_of(LINES[1]) == "node-b"
        assert second.refusal(LINES[1]) is None
        refused = second.refusal(LINES[0])
        assert refused is not None
        assert "'node-a'" in refused
        assert await first.verify()
        assert await second.verify()
        await first.give([LINES[0]])
        assert first.owned == ()
        assert first.role == "standby"
        assert await first.verify()  # holding nothing, there is nothing to lose
        assert await second.take([LINES[0]]) == (LINES[0],)
        assert second.owned == LINES
        # In its long transaction, the first still sees the second arrive and take both.
        assert (await first.survey()).nodes == {"node-a", "node-b"}
        assert (await first.survey()).holders == dict.fromkeys(LINES, "node-b")
    finally:
        await first.close()
        await second.close()
