"""Adapter: the abuse limits' ledger in the database — the `abuse_charge` table.

Each row is one event counted against a key (`code:<identity>`, `code-line:<line>`,
`request:<identity>`, `request-address:<address>`): when, a tag (a line's wrong code names the
identity that sent it), and the id of the charge it belongs to (a right code deletes its
charge's rows). Identities are salted hashes of numbers or account ids, never a number.

A charge reads its keys' events and writes what the pure policy decided in one transaction that
first locks those keys: on PostgreSQL a transaction advisory lock per key (in one order, so
two charges never deadlock; released at commit), on SQLite `BEGIN IMMEDIATE` (one writer at a
time). Two processes charging the same identity at once are thus counted one after the other,
and never both get its last try. A refusal needs no lock: the decision is first made on a
plain read, and only one that counts something is made again under the locks (a flood of
refused guesses is one SELECT each, and never queues behind the line's lock; a refusal on a
read a moment old is the answer the guess would have had a moment earlier, as counts only
fall by refunds and age). Rows older than the longest window are deleted by the
retention job (line_service/privacy).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol, TypeVar

from sqlalchemy import Column, DateTime, Index, delete, insert, select, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import Field, SQLModel, col

KEY_LENGTH = 200
LOCK_SPACE = 0x41425553  # "ABUS": the first half of every advisory lock key taken here


class AbuseChargeRecord(SQLModel, table=True):
    """One event counted by the abuse limits (a wrong code, a ride request)."""

    __tablename__ = "abuse_charge"
    __table_args__ = (Index("ix_abuse_charge_key_at", "key", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=KEY_LENGTH)
    tag: str = Field(max_length=KEY_LENGTH)
    charge_id: str = Field(max_length=32, index=True)
    at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


Seen = tuple[tuple[datetime, str], ...]
"""A key's events (time, tag), oldest first."""
T = TypeVar("T")


class Counted(Protocol):
    """One event to count: against which key, with which tag (line_service.abuse's Charge)."""

    @property
    def key(self) -> str: ...

    @property
    def tag(self) -> str: ...


Decide = Callable[[Mapping[str, Seen]], tuple[T, Sequence[Counted]]]


def stored_key(value: str) -> str:
    """`value` as stored: itself, or past the column's length a digest of it (same for all)."""
    if len(value) <= KEY_LENGTH:
        return value
    return "sha256:" + hashlib.sha256(value.encode()).hexdigest()


def lock_key(key: str) -> int:
    """The advisory lock of a key: 32 signed bits of a hash of it (stable everywhere)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), signed=True)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


TABLE = AbuseChargeRecord.__table__  # type: ignore[attr-defined]


class DatabaseLedger:
    """The abuse limits' counts, shared by every process on the database (blocking: call it
    from a worker thread)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def charge(
        self, keys: Sequence[str], since: datetime, at: datetime, charge_id: str, decide: Decide[T]
    ) -> T:
        stored = {key: stored_key(key) for key in keys}
        with self._engine.connect() as connection:
            verdict, charges = decide(self._read(connection, stored, since))
            if not charges:  # a refusal: nothing to count, no lock to take
                return verdict
            connection.rollback()
            self._lock(connection, list(stored.values()))
            verdict, charges = decide(self._read(connection, stored, since))
            if charges:
                connection.execute(
                    insert(TABLE),
                    [
                        {
                            "key": stored_key(charge.key),
                            "tag": stored_key(charge.tag),
                            "charge_id": charge_id,
                            "at": _utc(at),
                        }
                        for charge in charges
                    ],
                )
            connection.commit()
        return verdict

    def _read(
        self, connection: Connection, stored: dict[str, str], since: datetime
    ) -> dict[str, Seen]:
        rows = connection.execute(
            select(TABLE.c.key, TABLE.c.at, TABLE.c.tag)
            .where(TABLE.c.key.in_(list(stored.values())), TABLE.c.at > _utc(since))
            .order_by(TABLE.c.at, TABLE.c.id)
        ).all()
        found: dict[str, list[tuple[datetime, str]]] = {}
        for key, when, tag in rows:
            found.setdefault(key, []).append((_utc(when), tag))
        return {key: tuple(found.get(name, ())) for key, name in stored.items()}

    def refund(self, charge_id: str) -> None:
        with self._engine.begin() as connection:
            connection.execute(delete(TABLE).where(TABLE.c.charge_id == charge_id))

    def seen(self, key: str, since: datetime) -> Seen:
        with self._engine.connect() as connection:
            return self._read(connection, {key: stored_key(key)}, since)[key]

    def forget_before(self, cutoff: datetime) -> int:
        with self._engine.begin() as connection:
            result = connection.execute(
                delete(TABLE).where(col(AbuseChargeRecord.at) < _utc(cutoff))
            )
        return int(result.rowcount)

    def _lock(self, connection: Connection, keys: list[str]) -> None:
        """Lock the keys until the transaction ends (SQLite: the whole database, briefly)."""
        if connection.dialect.name == "sqlite":
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        if connection.dialect.name != "postgresql":
            return  # another database: only row inserts are atomic (one process only)
        for lock in sorted({lock_key(key) for key in keys}):
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:space, :lock)"),
                {"space": LOCK_SPACE, "lock": lock},
            )
