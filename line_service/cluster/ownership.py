"""Adapter: line ownership through PostgreSQL session advisory locks, and the fence that keeps a
deposed owner quiet.

Each line is owned by the process holding `pg_try_advisory_lock(lock_key(line))` on a dedicated
connection kept for the process's life. In this slice a process owns every line of the network
or none (all-or-nothing: two processes can never split the lines and both wait for the rest).

The lock connection stays inside an open transaction with `idle_in_transaction_session_timeout`:
PostgreSQL ends the session (and frees its locks) when the process stops sending statements —
SIGKILL (the socket closes: at once), SIGSTOP or a frozen host (no heartbeat: after
IDLE_TIMEOUT_SECONDS), a network cut (the server's timer fires without the client). TCP
keepalives alone would not do: the kernel of a stopped process still answers them.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import time
from collections.abc import Callable, Sequence

import psycopg
import structlog
from sqlalchemy.engine import make_url

log = structlog.get_logger(__name__)

LOCK_NAMESPACE = b"carpool-line/"
RETRY_SECONDS = 1.0  # a standby tries the locks again this often
HEARTBEAT_SECONDS = 0.5  # the owner confirms it still holds them this often
IDLE_TIMEOUT_SECONDS = 3  # the server drops a silent owner's session (and its locks) after
FRESH_SECONDS = 1.0  # a confirmation older than this is checked again before publishing
CHECK_TIMEOUT_SECONDS = 2.0  # an unanswered check counts as lost: never publish on a guess
APPLICATION_PREFIX = "carpool-line:"


def lock_key(line_id: str) -> int:
    """The advisory lock key of a line: 64 signed bits of a hash of its id (stable everywhere)."""
    digest = hashlib.blake2b(LOCK_NAMESPACE + line_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL (`postgresql+psycopg://…`) as libpq reads it."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


class LineOwnership:
    """Takes, holds and checks the lines' locks; `lost` is set once they are not held any more."""

    def __init__(
        self,
        database_url: str,
        line_ids: Sequence[str],
        node: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = libpq_url(database_url)
        self._lines = tuple(line_ids)
        self._keys = tuple(lock_key(line) for line in self._lines)
        self.node = node
        self._monotonic = monotonic
        self._connection: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._checked_at = -math.inf
        self._checking = asyncio.Lock()
        self.owned: tuple[str, ...] = ()
        self.owner_hint: str | None = None  # who holds the lines, when a standby could tell
        self.tried = asyncio.Event()  # set after the first attempt, won or not
        self.lost = asyncio.Event()

    @property
    def role(self) -> str:
        """`owner` while the lines are held, `standby` otherwise."""
        return "owner" if self.owned and not self.lost.is_set() else "standby"

    def refusal(self) -> str | None:
        """Why this process takes no change now: a standby names the owner when it knows it."""
        if self.role == "owner":
            return None
        owner = f"process {self.owner_hint!r}" if self.owner_hint else "another process"
        return (
            f"this process is a standby: {owner} dispatches lines {list(self._lines)}; send "
            "changes to the owner (GET /readyz answers 200 there), or try again shortly"
        )

    async def acquire(self) -> None:
        """Return once every line's lock is held; try again every RETRY_SECONDS until then."""
        while True:
            try:
                if await self._try_all():
                    self._checked_at = self._monotonic()
                    self.owned = self._lines
                    self.tried.set()
                    log.info("cluster.lines_owned", lines=list(self._lines), node=self.node)
                    return
                self.owner_hint = await self._holder()
            except (psycopg.Error, OSError) as exc:
                log.warning("cluster.lock_attempt_failed", error=str(exc)[:200])
                await self.close()
            self.tried.set()
            await asyncio.sleep(RETRY_SECONDS)

    async def _connected(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self._connection is None or self._connection.closed:
            application = f"{APPLICATION_PREFIX}{self.node}"[:63]
            self._connection = await psycopg.AsyncConnection.connect(
                self._url, application_name=application, connect_timeout=5
            )
            # Not autocommit: this statement opens the transaction the session then idles in.
            await self._connection.execute(
                f"SET idle_in_transaction_session_timeout = '{IDLE_TIMEOUT_SECONDS}s'"
            )
        return self._connection

    async def _try_all(self) -> bool:
        connection = await self._connected()
        taken: list[int] = []
        for key in self._keys:
            cursor = await connection.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            row = await cursor.fetchone()
            if row is None or row[0] is not True:
                for held in taken:  # all or nothing
                    await connection.execute("SELECT pg_advisory_unlock(%s)", (held,))
                return False
            taken.append(key)
        return True

    async def _holder(self) -> str | None:
        """The node holding the first line's lock, from its session's application name."""
        connection = await self._connected()
        key = self._keys[0]
        cursor = await connection.execute(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'advisory' AND l.granted"
            " AND l.classid = ((%s::bigint >> 32) & 4294967295)::oid"
            " AND l.objid = (%s::bigint & 4294967295)::oid AND l.objsubid = 1",
            (key, key),
        )
        row = await cursor.fetchone()
        name = str(row[0]) if row is not None else ""
        if not name.startswith(APPLICATION_PREFIX):
            return None
        return name.removeprefix(APPLICATION_PREFIX)

    async def fence(self) -> bool:
        """True when this process may publish for its lines now: the locks were confirmed less
        than FRESH_SECONDS ago (monotonic: a process resumed after SIGSTOP sees the gap), or
        are confirmed now. False once lost."""
        if self.lost.is_set() or not self.owned:
            return False
        if self._monotonic() - self._checked_at < FRESH_SECONDS:
            return True
        return await self.verify()

    async def verify(self) -> bool:
        """Ask the lock session whether it still holds every lock; step down when it does not."""
        async with self._checking:
            if self.lost.is_set():
                return False
            try:
                held = await asyncio.wait_for(self._held(), CHECK_TIMEOUT_SECONDS)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                log.error("cluster.lock_check_failed", error=str(exc)[:200] or type(exc).__name__)
                held = False
            if held:
                self._checked_at = self._monotonic()
                return True
            self.owned = ()
            self.lost.set()
            log.error("cluster.ownership_lost", node=self.node)
            return False

    async def _held(self) -> bool:
        connection = self._connection
        if connection is None or connection.closed:
            return False
        cursor = await connection.execute(
            "SELECT count(*) FROM pg_locks"
            " WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()"
        )
        row = await cursor.fetchone()
        return row is not None and int(str(row[0])) >= len(self._keys)

    async def keep(self) -> None:
        """The owner's heartbeat: confirm the locks every HEARTBEAT_SECONDS until they are lost
        (each check is a statement, which also keeps the idle timeout from ending the session)."""
        while True:
            if not await self.verify():
                return
            await asyncio.sleep(HEARTBEAT_SECONDS)

    async def close(self) -> None:
        """Close the lock session (its locks go with it)."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                await connection.close()
            except (psycopg.Error, OSError) as exc:
                log.warning("cluster.lock_close_failed", error=str(exc)[:200])
