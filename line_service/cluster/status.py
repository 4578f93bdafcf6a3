"""Adapter: who is in the cluster now, read from PostgreSQL's own tables.

Every process keeps one lock session named `carpool-line:<node>` (pg_stat_activity) and the
owner holds one advisory lock per line on it (pg_locks). Reading both needs no table of ours:
the answer is what the server itself enforces, not what a process last wrote down.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import psycopg

from line_service.cluster.ownership import APPLICATION_PREFIX, libpq_url, lock_key

CONNECT_TIMEOUT_SECONDS = 5

_SESSIONS = (
    "SELECT pid, application_name, host(client_addr), backend_start, state"
    " FROM pg_stat_activity WHERE application_name LIKE %s ORDER BY backend_start, pid"
)
# A bigint advisory key shows as classid (its high 32 bits) and objid (its low 32 bits); put
# back together in a bigint, it is the signed key again (the shift wraps as two's complement).
_LOCKS = (
    "SELECT pid, (classid::bigint << 32) | objid::bigint FROM pg_locks"
    " WHERE locktype = 'advisory' AND granted AND objsubid = 1 AND database = ("
    "SELECT oid FROM pg_database WHERE datname = current_database())"
)


class ClusterUnreadableError(RuntimeError):
    """The cluster's state cannot be read (not PostgreSQL, or the server does not answer)."""


@dataclass(frozen=True)
class ProcessSession:
    """One `carpool-line serve` process, as its lock session shows it."""

    node: str
    pid: int  # the server process of the session, not the service's
    client_address: str | None  # None: a Unix socket
    since: datetime
    state: str
    lines: tuple[str, ...]  # the lines whose locks it holds

    @property
    def role(self) -> str:
        """`owner` when it holds a line's lock, `standby` otherwise."""
        return "owner" if self.lines else "standby"


@dataclass(frozen=True)
class ClusterStatus:
    """The processes and, per line, the node holding its lock (None: no owner)."""

    processes: tuple[ProcessSession, ...]
    owners: dict[str, str | None]

    def as_json(self) -> dict[str, object]:
        """The `--json` shape."""
        return {
            "processes": [
                {
                    "node": process.node,
                    "role": process.role,
                    "client_address": process.client_address,
                    "since": process.since.isoformat(),
                    "state": process.state,
                    "lines": list(process.lines),
                }
                for process in self.processes
            ],
            "lines": [{"line": line, "owner": owner} for line, owner in self.owners.items()],
        }


def read_status(database_url: str, line_ids: Sequence[str]) -> ClusterStatus:
    """Ask the server which service processes are connected and who holds each line's lock."""
    if not database_url.startswith("postgresql"):
        raise ClusterUnreadableError(
            "the cluster lives in PostgreSQL: CARPOOL_DATABASE_URL must be a postgresql:// URL "
            f"(it is {database_url.split(':', 1)[0]}:…)"
        )
    try:
        with psycopg.connect(
            libpq_url(database_url),
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            application_name="carpool-line-status",
            autocommit=True,
        ) as connection:
            sessions = connection.execute(_SESSIONS, (f"{APPLICATION_PREFIX}%",)).fetchall()
            locks = connection.execute(_LOCKS).fetchall()
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ClusterUnreadableError(f"cannot read the cluster from PostgreSQL: {first}") from exc
    wanted = {lock_key(line): line for line in line_ids}
    held: dict[int, list[str]] = {}
    for pid, value in locks:
        line = wanted.get(int(value))
        if line is not None:
            held.setdefault(int(pid), []).append(line)
    processes = tuple(
        ProcessSession(
            node=str(name).removeprefix(APPLICATION_PREFIX),
            pid=int(pid),
            client_address=None if address is None else str(address),
            since=since,
            state=str(state),
            lines=tuple(line for line in line_ids if line in held.get(int(pid), ())),
        )
        for pid, name, address, since, state in sessions
    )
    owners: dict[str, str | None] = dict.fromkeys(line_ids)
    for process in processes:
        for line in process.lines:
            owners[line] = process.node
    return ClusterStatus(processes, owners)
