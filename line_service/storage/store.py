"""Adapter: persistence with SQLModel — requests, their history, device status.

SQLite (WAL) by default, any SQLAlchemy URL otherwise (PostgreSQL in production). Calls are
synchronous; the engine runs them in a worker thread so the database never blocks dispatch.
Times are stored in UTC and read back aware.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Column, DateTime, Index, Row, Table, event, insert, text
from sqlalchemy import select as sql_select
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.sql.expression import Executable
from sqlmodel import Field, Session, SQLModel, col, create_engine, select

from dispatcher.model import LineId, RequestId, StopId, TerminalId
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest, Source
from line_service.storage import revision

UpsertShape = tuple[type[SQLModel], tuple[str, ...], tuple[str, ...]]
WaitRow = tuple[StopId, StopId, datetime, datetime]
"""(stop, destination, asked at, left waiting at) of one request that stopped waiting."""

PHONE_KEEPING_STATES = frozenset(
    {RequestState.WAITING, RequestState.ANNOUNCED, RequestState.FALLBACK}
)


def _utc_column(**kwargs: Any) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), **kwargs))


class RideRequestRecord(SQLModel, table=True):
    """One ride request as it now stands."""

    __tablename__ = "ride_request"
    __table_args__ = (Index("ix_ride_request_state", "state"),)

    id: str = Field(primary_key=True, max_length=64)
    line_id: str = Field(max_length=64)
    stop_id: str = Field(max_length=64)
    destination_id: str = Field(max_length=64)
    seats: int
    channel: str = Field(max_length=16)
    source_ref: str = Field(max_length=160, index=True)
    terminal_id: str | None = Field(default=None, max_length=64)
    phone: str | None = Field(default=None, max_length=32)
    code: str | None = Field(default=None, max_length=8)
    state: str = Field(max_length=16)
    cause: str = Field(max_length=32)
    driver_ref: str | None = Field(default=None, max_length=160)
    created_at: datetime = _utc_column(nullable=False, index=True)  # revision 0002
    deadline_at: datetime = _utc_column(nullable=False)
    updated_at: datetime = _utc_column(nullable=False, index=True)


class RequestEventRecord(SQLModel, table=True):
    """One transition in a request's history."""

    __tablename__ = "request_event"

    id: int | None = Field(default=None, primary_key=True)
    request_id: str = Field(max_length=64, index=True)
    at: datetime = _utc_column(nullable=False)
    from_state: str | None = Field(default=None, max_length=16)
    to_state: str = Field(max_length=16)
    cause: str = Field(max_length=32)


class SourceAliasRecord(SQLModel, table=True):
    """Another source naming a request: a press repeated at the terminal, a repeated SMS."""

    __tablename__ = "request_source_alias"

    channel: str = Field(primary_key=True, max_length=16)
    source_ref: str = Field(primary_key=True, max_length=160)
    request_id: str = Field(max_length=64, index=True)


class PhoneHashRecord(SQLModel, table=True):
    """A finished request's rider number, kept only as a salted hash (statistics)."""

    __tablename__ = "rider_phone_hash"

    request_id: str = Field(primary_key=True, max_length=64)
    phone_hash: str = Field(max_length=64, index=True)


class DeviceStatusRecord(SQLModel, table=True):
    """The last known presence of a device."""

    __tablename__ = "device_status"

    kind: str = Field(primary_key=True, max_length=16)
    device_id: str = Field(primary_key=True, max_length=64)
    line_id: str = Field(max_length=64)
    online: bool
    changed_at: datetime = _utc_column(nullable=False)


class TripRecord(SQLModel, table=True):
    """A validated ride (one driver/passenger pair); written by line_service.authority.trips."""

    __tablename__ = "trip"

    id: str = Field(primary_key=True, max_length=64)  # the RPC operator_journey_id
    request_id: str = Field(max_length=64, unique=True)
    operator_trip_id: str = Field(max_length=64, index=True)  # one car run
    line_id: str = Field(max_length=64)
    origin_id: str = Field(max_length=64)
    destination_id: str = Field(max_length=64)
    requested_at: datetime = _utc_column(nullable=False)
    picked_up_at: datetime = _utc_column(nullable=False, index=True)
    arrival_at: datetime = _utc_column(nullable=False)  # estimated from the distance
    distance_m: int
    seats: int
    channel: str = Field(max_length=16)  # how the rider asked
    driver_ref: str = Field(max_length=160, index=True)
    driver_phone_trunc: str | None = Field(default=None, max_length=16)
    driver_identity_key: str | None = Field(default=None, max_length=64)
    passenger_ref: str | None = Field(default=None, max_length=64, index=True)
    passenger_phone_trunc: str | None = Field(default=None, max_length=16)
    passenger_identity_key: str | None = Field(default=None, max_length=64)
    fallback_dispatched: bool = False
    driver_compensation_cents: int = 0
    passenger_contribution_cents: int = 0
    flags: str = Field(default="", max_length=200)  # anti-abuse flags, comma-separated
    unpaid_reason: str | None = Field(default=None, max_length=40)  # revision 0005
    operator_class: str = Field(max_length=1)


def _dialect_insert(dialect: str) -> Callable[[Table], Any]:
    """The dialect's own INSERT (with ON CONFLICT), imported once the database is known: the
    PostgreSQL dialect loads every one of its drivers' modules, which SQLite does without."""
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    from sqlalchemy.dialects.postgresql import insert as postgresql_insert

    return postgresql_insert


def _table(model: type[SQLModel]) -> Table:
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


def _request_row(request: RideRequest) -> dict[str, Any]:
    return {
        "id": request.id,
        "line_id": request.line_id,
        "stop_id": request.stop_id,
        "destination_id": request.destination_id,
        "seats": request.seats,
        "channel": request.source.channel.value,
        "source_ref": request.source.ref,
        "terminal_id": request.terminal_id,
        "phone": request.phone,
        "code": request.code,
        "state": request.state.value,
        "cause": request.cause.value,
        "driver_ref": request.driver_ref,
        "created_at": request.created_at,
        "deadline_at": request.deadline_at,
        "updated_at": request.updated_at,
    }


def as_utc(value: datetime) -> datetime:
    """A time read back from the database, aware UTC (SQLite returns naive datetimes)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def from_record(row: RideRequestRecord | Row[Any]) -> RideRequest:
    """The request a row holds (an ORM record, or a plain row of the same table)."""
    return RideRequest(
        id=RequestId(row.id),
        line_id=LineId(row.line_id),
        stop_id=StopId(row.stop_id),
        destination_id=StopId(row.destination_id),
        seats=row.seats,
        source=Source(Channel(row.channel), row.source_ref),
        terminal_id=TerminalId(row.terminal_id) if row.terminal_id else None,
        phone=row.phone,
        code=row.code,
        state=RequestState(row.state),
        cause=Cause(row.cause),
        created_at=as_utc(row.created_at),
        deadline_at=as_utc(row.deadline_at),
        updated_at=as_utc(row.updated_at),
        driver_ref=row.driver_ref,
    )


class Store:
    """The database behind the service."""

    def __init__(self, url: str, phone_hasher: Callable[[str], str] | None = None) -> None:
        if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        self.url = url
        # Finished requests keep only this hash of the rider's number (none: the number is
        # simply dropped).
        self.phone_hasher = phone_hasher
        # A server can drop idle connections: check them out with a ping. A SQLite file cannot.
        self.engine: Engine = create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
        self._upserts: dict[UpsertShape, Executable] = {}
        self._append_events = insert(_table(RequestEventRecord))
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    def create_schema(self) -> None:
        """Upgrade the schema to the newest revision (a new database gets every table)."""
        from line_service.storage import schema  # Alembic: only when migrating

        schema.upgrade(self.engine)

    def check_schema(self) -> None:
        """For serving: create a new database; raise `SchemaError` if one is behind or unknown."""
        if revision.stored_revision(self.engine) == revision.HEAD:
            return
        from line_service.storage import schema  # Alembic: only when not at head

        schema.check_ready(self.engine)

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def ping(self) -> bool:
        """True when the database answers."""
        try:
            with self.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    def write_problem(self) -> str | None:
        """Why the database refuses a write now (full or read-only disk, read-only server), or
        None when it accepts one. Nothing is changed: SQLite rewrites its header's
        `application_id` with the value it holds (a real commit through the WAL); PostgreSQL
        writes a temporary table in a transaction that is rolled back."""
        try:
            with self.engine.connect() as connection:
                if self.engine.dialect.name == "sqlite":
                    held = int(connection.exec_driver_sql("PRAGMA application_id").scalar() or 0)
                    connection.exec_driver_sql(f"PRAGMA application_id = {held}")
                else:
                    with connection.begin() as probe:
                        connection.execute(text("SET LOCAL statement_timeout = 2000"))
                        connection.execute(
                            text("CREATE TEMPORARY TABLE readiness_probe (x int) ON COMMIT DROP")
                        )
                        connection.execute(text("INSERT INTO readiness_probe VALUES (1)"))
                        probe.rollback()
        except Exception as exc:
            return f"{type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        return None

    def save(
        self,
        changes: Iterable[tuple[RideRequest, RequestState | None]],
        aliases: Iterable[tuple[Source, RequestId]] = (),
    ) -> None:
        """Upsert requests and append their transitions, all in one transaction.

        One bulk statement per table (not a round trip per row): the writer commits batches.
        """
        latest: dict[str, dict[str, Any]] = {}
        hashes: dict[str, dict[str, Any]] = {}
        events: list[dict[str, Any]] = []
        for request, previous_state in changes:
            row = _request_row(request)
            if row["phone"] is not None and request.state not in PHONE_KEEPING_STATES:
                if self.phone_hasher is not None:
                    hashes[request.id] = {
                        "request_id": request.id,
                        "phone_hash": self.phone_hasher(row["phone"]),
                    }
                row["phone"] = None
            latest[request.id] = row
            events.append(
                {
                    "request_id": request.id,
                    "at": request.updated_at,
                    "from_state": previous_state.value if previous_state else None,
                    "to_state": request.state.value,
                    "cause": request.cause.value,
                }
            )
        alias_rows = {
            (source.channel.value, source.ref): {
                "channel": source.channel.value,
                "source_ref": source.ref,
                "request_id": request_id,
            }
            for source, request_id in aliases
        }
        if not events and not alias_rows:
            return
        with self.engine.begin() as connection:
            if alias_rows:
                keys = ["channel", "source_ref"]
                self._upsert(connection, SourceAliasRecord, list(alias_rows.values()), keys)
            if not events:
                return
            self._upsert(connection, RideRequestRecord, list(latest.values()), ["id"])
            if hashes:
                self._upsert(connection, PhoneHashRecord, list(hashes.values()), ["request_id"])
            connection.execute(self._append_events, events)

    def _upsert(
        self,
        connection: Connection,
        model: type[SQLModel],
        rows: list[dict[str, Any]],
        keys: list[str],
    ) -> None:
        if self.engine.dialect.name in ("sqlite", "postgresql"):
            connection.execute(self._upsert_statement(model, tuple(rows[0]), tuple(keys)), rows)
            return
        with Session(bind=connection) as session:  # any other database: portable, slower
            for row in rows:
                session.merge(model(**row))
            session.flush()

    def _upsert_statement(
        self, model: type[SQLModel], columns: tuple[str, ...], keys: tuple[str, ...]
    ) -> Executable:
        """`INSERT … ON CONFLICT (keys) DO UPDATE`, built once per shape (building costs more
        than executing a small batch, and the writer runs it many times a second)."""
        shape: UpsertShape = (model, columns, keys)
        statement = self._upserts.get(shape)
        if statement is None:
            insert_rows = _dialect_insert(self.engine.dialect.name)(_table(model))
            updates = {name: insert_rows.excluded[name] for name in columns if name not in keys}
            statement = insert_rows.on_conflict_do_update(index_elements=list(keys), set_=updates)
            self._upserts[shape] = statement
        return statement

    def save_device_status(
        self, line_id: str, kind: str, device_id: str, online: bool, at: datetime
    ) -> None:
        """Remember a device's presence."""
        self.save_device_statuses([(line_id, kind, device_id, online, at)])

    def save_device_statuses(self, statuses: list[tuple[str, str, str, bool, datetime]]) -> None:
        """Remember several devices' presence in one transaction (one bulk statement)."""
        if not statuses:
            return
        rows = [
            {
                "kind": kind,
                "device_id": device_id,
                "line_id": line_id,
                "online": online,
                "changed_at": at,
            }
            for line_id, kind, device_id, online, at in statuses
        ]
        with self.engine.begin() as connection:
            self._upsert(connection, DeviceStatusRecord, rows, ["kind", "device_id"])

    def live_requests(
        self, now: datetime, recent: timedelta, lines: Iterable[str] | None = None
    ) -> list[RideRequest]:
        """Requests to restore: those waiting or announced, and the others changed within
        `recent` (of these lines only, when given: a cluster process adopting them)."""
        # Waiting requests at any age (their deadlines fire at once); FALLBACK ones, whose code a
        # late driver may still send, only within `recent` like every other finished request.
        # Plain rows, not ORM records: after a busy hour a restart reads tens of thousands, and
        # building records costs ~30 us each (16,000 rows: 0.5 s) before any sign is re-asserted.
        table = _table(RideRequestRecord)
        query = sql_select(table).where(
            table.c.state.in_([RequestState.WAITING.value, RequestState.ANNOUNCED.value])
            | (table.c.updated_at >= now - recent)
        )
        if lines is not None:
            query = query.where(table.c.line_id.in_(list(lines)))
        with self.engine.connect() as connection:
            return [from_record(row) for row in connection.execute(query)]

    def aliases_of(self, request_ids: Iterable[str]) -> list[tuple[Source, RequestId]]:
        """The other sources stored for these requests."""
        wanted = list(request_ids)
        if not wanted:
            return []
        with Session(self.engine) as session:
            rows = session.exec(
                select(SourceAliasRecord).where(col(SourceAliasRecord.request_id).in_(wanted))
            ).all()
            return [
                (Source(Channel(row.channel), row.source_ref), RequestId(row.request_id))
                for row in rows
            ]

    def request(self, request_id: str) -> RideRequest | None:
        """One request by id."""
        with Session(self.engine) as session:
            row = session.get(RideRequestRecord, request_id)
            return from_record(row) if row else None

    def history(self, request_id: str) -> list[RequestEventRecord]:
        """A request's transitions, oldest first."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(RequestEventRecord)
                .where(RequestEventRecord.request_id == request_id)
                .order_by(col(RequestEventRecord.id))
            ).all()
            return list(rows)

    def finished_waits(self, line_id: str, since: datetime) -> list[WaitRow]:
        """The waits of `line_id`'s riders asked since `since` that a car or the taxi ended.

        A wait runs from the request to its transition out of WAITING into PICKED_UP or
        FALLBACK (a taxi called at the guarantee ends the wait too); cancelled and expired
        requests say nothing of how long a car takes.
        """
        requests, events = _table(RideRequestRecord), _table(RequestEventRecord)
        ended = (RequestState.PICKED_UP.value, RequestState.FALLBACK.value)
        query = (
            sql_select(
                requests.c.stop_id, requests.c.destination_id, requests.c.created_at, events.c.at
            )
            .join(events, events.c.request_id == requests.c.id)
            .where(
                (requests.c.line_id == line_id)
                & (requests.c.created_at >= since)
                & (events.c.from_state == RequestState.WAITING.value)
                & events.c.to_state.in_(ended)
            )
        )
        with self.engine.connect() as connection:
            return [
                (StopId(row[0]), StopId(row[1]), as_utc(row[2]), as_utc(row[3]))
                for row in connection.execute(query)
            ]

    def device_statuses(self) -> list[DeviceStatusRecord]:
        """Every device's last known presence."""
        with Session(self.engine) as session:
            return list(session.exec(select(DeviceStatusRecord)).all())


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()
