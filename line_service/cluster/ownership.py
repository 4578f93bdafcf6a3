"""Adapter: line ownership through PostgreSQL session advisory locks, and the fence that keeps a
deposed owner quiet.

Each line is owned by the process holding `pg_try_advisory_lock(lock_key(line))` on a dedicated
connection kept for the process's life (one session per process, whatever its number of lines:
a hundred lines cost one connection, not a hundred). Which lines a process reaches for is
line_service/cluster/placement.py's rule; this module takes, holds, gives back and checks.

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
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import psycopg
import structlog
from sqlalchemy.engine import make_url

log = structlog.get_logger(__name__)

LOCK_NAMESPACE = b"carpool-line/"
RETRY_SECONDS = 1.0  # a process looks at who holds what this often
HEARTBEAT_SECONDS = 0.5  # the owner confirms it still holds them this often
IDLE_TIMEOUT_SECONDS = 3  # the server drops a silent owner's session (and its locks) after
FRESH_SECONDS = 1.0  # a confirmation older than this is checked again before publishing
RELOOK_SECONDS = 0.2  # an extra survey for the door, at most this often
CHECK_TIMEOUT_SECONDS = 2.0  # an unanswered check counts as lost: never publish on a guess
APPLICATION_PREFIX = "carpool-line:"


def lock_key(line_id: str) -> int:
    """The advisory lock key of a line: 64 signed bits of a hash of its id (stable everywhere)."""
    digest = hashlib.blake2b(LOCK_NAMESPACE + line_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def libpq_url(database_url: str) -> str:
    """The SQLAlchemy URL (`postgresql+psycopg://…`) as libpq reads it."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


@dataclass(frozen=True, slots=True)
class Survey:
    """What the server says at one look: the connected processes and who holds which line."""

    nodes: frozenset[str]  # every process with a lock session, this one included
    holders: dict[str, str]  # line → node holding its lock (lines nobody holds are absent)


# A bigint advisory key shows as classid (its high 32 bits) and objid (its low 32 bits); put
# back together in a bigint, it is the signed key again (the shift wraps as two's complement).
_SURVEY = (
    "SELECT a.application_name, l.key FROM pg_stat_activity a LEFT JOIN ("
    " SELECT pid, (classid::bigint << 32) | objid::bigint AS key FROM pg_locks"
    " WHERE locktype = 'advisory' AND granted AND objsubid = 1"
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    ") l ON l.pid = a.pid WHERE a.application_name LIKE %s"
)


class LineOwnership:
    """Takes, holds, gives back and checks the lines' locks on one session; `lost` is set once
    the session's locks are not held any more (then every line is lost at once)."""

    def __init__(
        self,
        database_url: str,
        line_ids: Sequence[str],
        node: str,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = libpq_url(database_url)
        self.lines = tuple(line_ids)
        self._keys = {line: lock_key(line) for line in self.lines}
        self._lines_by_key = {key: line for line, key in self._keys.items()}
        self.node = node
        self._monotonic = monotonic
        self._connection: psycopg.AsyncConnection[tuple[object, ...]] | None = None
        self._checked_at = -math.inf
        self._relooked_at = -math.inf
        self._checking = asyncio.Lock()
        self.owned: tuple[str, ...] = ()  # in the lines file's order
        self.holders: dict[str, str] = {}  # lines held elsewhere at the last look → their node
        self.nodes: frozenset[str] = frozenset()  # processes connected at the last look
        self.tried = asyncio.Event()  # set after the first look and take, won or not
        self.lost = asyncio.Event()

    @property
    def role(self) -> str:
        """`owner` while this process holds at least one line, `standby` otherwise."""
        return "owner" if self.owned and not self.lost.is_set() else "standby"

    def owns(self, line_id: str) -> bool:
        """Whether this process dispatches the line now."""
        return line_id in self.owned and not self.lost.is_set()

    def owner_of(self, line_id: str) -> str | None:
        """The node dispatching the line: this one, or the holder seen at the last look."""
        return self.node if self.owns(line_id) else self.holders.get(line_id)

    @property
    def owner_hint(self) -> str | None:
        """A node seen holding a line (a standby names it to clients), or None."""
        return next(iter(self.holders.values()), None)

    def refusal(self, line_id: str | None = None) -> str | None:
        """Why this process takes no change for the line now (None: it takes it). Without a
        line, whether it takes changes at all."""
        if (line_id is None and self.role == "owner") or (
            line_id is not None and self.owns(line_id)
        ):
            return None
        known = self.owner_of(line_id) if line_id is not None else self.owner_hint
        owner = f"process {known!r}" if known else "another process"
        what = f"line {line_id!r}" if line_id is not None else f"lines {list(self.lines)}"
        return (
            f"this process does not dispatch {what}: {owner} does; send changes to it "
            "(GET /readyz answers 200 there), or try again shortly"
        )

    async def survey(self) -> Survey:
        """Ask the server who is connected and who holds which line."""
        connection = await self._connected()
        # The session idles in one long transaction, and PostgreSQL keeps the first view of
        # pg_stat_activity a transaction took: ask for a fresh one.
        await connection.execute("SELECT pg_stat_clear_snapshot()")
        cursor = await connection.execute(_SURVEY, (f"{APPLICATION_PREFIX}%",))
        nodes: set[str] = {self.node}
        holders: dict[str, str] = {}
        for name, key in await cursor.fetchall():
            node = str(name).removeprefix(APPLICATION_PREFIX)
            nodes.add(node)
            line = self._lines_by_key.get(int(str(key))) if key is not None else None
            if line is not None and node != self.node:
                holders[line] = node
        self.nodes = frozenset(nodes)
        self.holders = holders
        return Survey(self.nodes, holders)

    async def look_again(self) -> None:
        """A survey now, for a request about a line whose owner this process does not know
        yet (it moved since the last look); at most one every RELOOK_SECONDS, failures
        ignored (the client is told to try again)."""
        if self._monotonic() - self._relooked_at < RELOOK_SECONDS:
            return
        self._relooked_at = self._monotonic()
        try:
            await self.survey()
        except (psycopg.Error, OSError) as exc:
            log.warning("cluster.look_failed", error=str(exc)[:200])

    async def take(self, line_ids: Iterable[str]) -> tuple[str, ...]:
        """Try each line's lock; the lines won (added to `owned`)."""
        connection = await self._connected()
        won: list[str] = []
        for line in line_ids:
            if line in self.owned or line not in self._keys:
                continue  # session locks count: a second take would need a second give
            cursor = await connection.execute(
                "SELECT pg_try_advisory_lock(%s)", (self._keys[line],)
            )
            row = await cursor.fetchone()
            if row is not None and row[0] is True:
                won.append(line)
        if won:
            self._checked_at = self._monotonic()
            self.owned = self._in_order({*self.owned, *won})
            for line in won:
                self.holders.pop(line, None)
            log.info("cluster.lines_taken", lines=won, owned=len(self.owned), node=self.node)
        return tuple(won)

    async def give(self, line_ids: Iterable[str]) -> None:
        """Hand lines back (the caller stopped dispatching them first): their locks released,
        a peer takes them at its next look."""
        given = [line for line in line_ids if line in self.owned]
        if not given:
            return
        self.owned = self._in_order(set(self.owned) - set(given))
        connection = await self._connected()
        for line in given:
            await connection.execute("SELECT pg_advisory_unlock(%s)", (self._keys[line],))
        log.info("cluster.lines_given", lines=given, owned=len(self.owned), node=self.node)

    def _in_order(self, lines: set[str]) -> tuple[str, ...]:
        return tuple(line for line in self.lines if line in lines)

    async def _connected(self) -> psycopg.AsyncConnection[tuple[object, ...]]:
        if self.lost.is_set():
            raise OSError("the lock session was lost: this process holds no line any more")
        if self._connection is None or self._connection.closed:
            if self.owned:  # the session (and its locks) went away under us
                self._step_down()
                raise OSError("the lock session was lost: this process holds no line any more")
            application = f"{APPLICATION_PREFIX}{self.node}"[:63]
            self._connection = await psycopg.AsyncConnection.connect(
                self._url, application_name=application, connect_timeout=5
            )
            # Not autocommit: this statement opens the transaction the session then idles in.
            await self._connection.execute(
                f"SET idle_in_transaction_session_timeout = '{IDLE_TIMEOUT_SECONDS}s'"
            )
        return self._connection

    async def fence(self) -> bool:
        """True when this process may publish for its lines now: the locks were confirmed less
        than FRESH_SECONDS ago (monotonic: a process resumed after SIGSTOP sees the gap), or
        are confirmed now. False once lost. Holding no line, nothing can be published for one
        (the gateway sends displays for held lines only): True."""
        if self.lost.is_set():
            return False
        if not self.owned:
            return True
        if self._monotonic() - self._checked_at < FRESH_SECONDS:
            return True
        return await self.verify()

    async def verify(self) -> bool:
        """Ask the lock session whether it still holds every lock; step down when it does not.
        Holding no line, there is nothing to lose: True."""
        async with self._checking:
            if self.lost.is_set():
                return False
            if not self.owned:
                return True
            try:
                held = await asyncio.wait_for(self._held(), CHECK_TIMEOUT_SECONDS)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                log.error("cluster.lock_check_failed", error=str(exc)[:200] or type(exc).__name__)
                held = False
            if held:
                self._checked_at = self._monotonic()
                return True
            self._step_down()
            return False

    def _step_down(self) -> None:
        self.owned = ()
        self.lost.set()
        log.error("cluster.ownership_lost", node=self.node)

    async def _held(self) -> bool:
        connection = self._connection
        if connection is None or connection.closed:
            return False
        wanted = len(self.owned)
        cursor = await connection.execute(
            "SELECT count(*) FROM pg_locks"
            " WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid()"
        )
        row = await cursor.fetchone()
        return row is not None and int(str(row[0])) >= wanted

    async def close(self) -> None:
        """Close the lock session (its locks go with it)."""
        connection, self._connection = self._connection, None
        self.owned = ()
        if connection is not None:
            try:
                await connection.close()
            except (psycopg.Error, OSError) as exc:
                log.warning("cluster.lock_close_failed", error=str(exc)[:200])
