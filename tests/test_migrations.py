"""Schema migrations on SQLite and PostgreSQL: they build the models' schema, keep data, and
recognise a database made by `create_all` before migrations existed."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, inspect

from dispatcher.model import Line, LineId
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest, Source
from line_service.authority.trips import TripBook, draft_trip
from line_service.network.lines_file import load_network
from line_service.storage import revision, schema
from line_service.storage.store import Store
from line_service.storage.tables import metadata
from tests.support.requests import ride_request

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "lines.yaml"
T0 = datetime(2026, 11, 23, 6, 0, tzinfo=UTC)
CARPOOL_LINE = str(Path(sys.executable).with_name("carpool-line"))


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store(database_url)
    yield opened
    opened.dispose()


@pytest.fixture(scope="module")
def line() -> Line:
    found = load_network(SHIPPED).line(LineId("calais-dunkerque"))
    assert found is not None
    return found


def picked_up(request_id: str, at: datetime) -> RideRequest:
    return ride_request(
        request_id,
        at,
        stop="calais-est",
        state=RequestState.PICKED_UP,
        cause=Cause.CODE_VALIDATED,
        phone="+33612345678",
        source=Source(Channel.SMS, f"src-{request_id}"),
        code="1234",
        created_at=at - timedelta(minutes=4),
        driver_ref="+33699887766",
    )


def fill(store: Store, line: Line) -> list[RideRequest]:
    """Requests with their history, and a trip for each, through the service's own code (the
    trips are made on a scratch database at head, then copied without the later columns)."""
    requests = [picked_up(f"r{n}", T0 + timedelta(minutes=n)) for n in range(3)]
    store.save([(request, RequestState.WAITING) for request in requests])
    scratch = Store("sqlite://")
    scratch.create_schema()
    book = TripBook(scratch)
    for request in requests:
        draft = draft_trip(line, request, None)
        assert draft is not None
        book.record(draft)
    trip_table = metadata().tables["trip"]
    with scratch.engine.connect() as source, store.engine.begin() as target:
        for row in source.execute(sqlalchemy.select(trip_table)).mappings():
            kept = {k: v for k, v in row.items() if k not in LATER_COLUMNS["trip"]}
            target.execute(sqlalchemy.insert(trip_table).values(kept))
    scratch.dispose()
    stored = [store.request(request.id) for request in requests]  # numbers of finished ones: gone
    assert all(request is not None and request.phone is None for request in stored)
    return [request for request in stored if request is not None]


def assert_kept(store: Store, requests: list[RideRequest]) -> None:
    for request in requests:
        assert store.request(request.id) == request
        assert [event.to_state for event in store.history(request.id)] == ["picked_up"]
    trips = TripBook(store).between(T0 - timedelta(hours=1), T0 + timedelta(hours=1))
    assert sorted(trip.request_id for trip in trips) == [request.id for request in requests]


def differences(store: Store) -> list[object]:
    with store.engine.connect() as connection:
        found: list[object] = compare_metadata(MigrationContext.configure(connection), metadata())
        return found


LATER_TABLES = frozenset(  # created by revisions 0003 to 0009
    {
        "sms_opt_out",
        "account",
        "account_token",
        "sign_in_challenge",
        "driver_trip",
        "trip_review",
        "banned_driver",
        "rpc_journey",
        "party",
        "voice_step",
        "cluster_node",
        "abuse_charge",
    }
)
LATER_COLUMNS = {"trip": ("unpaid_reason",)}  # added by revision 0005


def legacy_metadata() -> MetaData:
    """The models as they were before migrations: revision 0001, without the later index and
    tables."""
    old = MetaData()
    for table in metadata().sorted_tables:
        if table.name in LATER_TABLES:
            continue
        copy = table.to_metadata(old)
        for name in LATER_COLUMNS.get(table.name, ()):
            copy._columns.remove(copy.c[name])
        for index in list(copy.indexes):
            if index.name == "ix_ride_request_created_at":
                copy.indexes.discard(index)
    return old


def test_a_new_database_migrated_to_head_matches_the_models(store: Store) -> None:
    store.create_schema()
    assert schema.current_revision(store.engine) == schema.head_revision() == revision.HEAD
    assert revision.stored_revision(store.engine) == revision.HEAD == schema.head_revision()
    assert differences(store) == []
    with store.engine.connect() as connection:
        where = connection.execute(
            sqlalchemy.text(_VERSION_TABLE_SCHEMA[store.engine.dialect.name])
        )
        # On PostgreSQL the version table lands in this test's own schema (search_path).
        assert where.scalar_one() == _current_schema(connection)


_VERSION_TABLE_SCHEMA = {
    "sqlite": "SELECT 'main' FROM sqlite_master WHERE name = 'alembic_version'",
    "postgresql": (
        "SELECT string_agg(table_schema, ',') FROM information_schema.tables"
        " WHERE table_name = 'alembic_version'"
    ),
}


def _current_schema(connection: sqlalchemy.Connection) -> str:
    if connection.dialect.name == "sqlite":
        return "main"
    current: str = connection.execute(sqlalchemy.text("SELECT current_schema()")).scalar_one()
    assert current.startswith("t_")
    return current


def test_the_first_revision_is_the_old_create_all_schema(store: Store) -> None:
    schema.upgrade(store.engine, "0001")
    with store.engine.connect() as connection:
        found = compare_metadata(MigrationContext.configure(connection), legacy_metadata())
    assert found == []


def test_upgrading_from_the_first_revision_loses_nothing(store: Store, line: Line) -> None:
    schema.upgrade(store.engine, "0001")
    requests = fill(store, line)
    assert differences(store) != []  # the comparison sees the index 0002 adds
    with pytest.raises(
        schema.SchemaBehindError, match=f"at revision 0001, this version needs {revision.HEAD}"
    ):
        store.check_schema()
    store.create_schema()
    assert_kept(store, requests)
    assert differences(store) == []
    indexes = {index["name"] for index in inspect(store.engine).get_indexes("ride_request")}
    assert "ix_ride_request_created_at" in indexes


def test_a_create_all_database_is_stamped_then_upgraded(store: Store, line: Line) -> None:
    legacy_metadata().create_all(store.engine)
    requests = fill(store, line)
    assert schema.current_revision(store.engine) is None
    with pytest.raises(schema.SchemaBehindError, match="run `carpool-line db upgrade`"):
        store.check_schema()
    assert schema.current_revision(store.engine) is None  # serving never writes to an old one
    store.create_schema()
    assert schema.current_revision(store.engine) == revision.HEAD
    assert_kept(store, requests)
    assert differences(store) == []


def test_tables_unlike_the_first_revision_are_refused(store: Store) -> None:
    with store.engine.begin() as connection:
        connection.execute(sqlalchemy.text("CREATE TABLE ride_request (id VARCHAR(64))"))
    with pytest.raises(schema.SchemaError, match="not those of revision 0001"):
        store.create_schema()
    with pytest.raises(schema.SchemaError, match="table trip is missing"):
        store.check_schema()


def test_serving_creates_a_new_database_and_accepts_one_at_head(store: Store) -> None:
    store.check_schema()
    assert schema.current_revision(store.engine) == revision.HEAD
    store.check_schema()


def test_a_revision_from_a_newer_version_is_refused(store: Store) -> None:
    store.create_schema()
    with store.engine.begin() as connection:
        connection.execute(sqlalchemy.text("UPDATE alembic_version SET version_num = '0999'"))
    with pytest.raises(schema.SchemaError, match="unknown to this version"):
        store.check_schema()


def carpool_line(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CARPOOL_DATABASE_URL": database_url,
        "CARPOOL_MQTT_URL": "mqtt://127.0.0.1:1",
        "CARPOOL_HTTP_PORT": "0",
    }
    return subprocess.run(
        [CARPOOL_LINE, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_the_command_line_upgrades_shows_and_serve_refuses(store: Store, database_url: str) -> None:
    legacy_metadata().create_all(store.engine)
    refused = carpool_line(database_url, "serve")
    assert refused.returncode == 2
    assert (
        "the database is at revision 0001 (made before migrations), "
        f"this version needs {revision.HEAD}: "
        "run `carpool-line db upgrade`" in refused.stderr
    )
    before = carpool_line(database_url, "db", "current")
    assert "tables made before migrations" in before.stdout
    upgraded = carpool_line(database_url, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert f"database at revision {revision.HEAD}" in upgraded.stdout
    after = carpool_line(database_url, "db", "current")
    assert (
        f"database revision: {revision.HEAD}; this version needs {revision.HEAD} (up to date)"
        in after.stdout
    )


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_processes_started_together_on_a_new_database_migrate_it_once(database_url: str) -> None:
    # A cluster's nodes started at once (systemd, after a reboot) each find a new database.
    stores = [Store(database_url) for _ in range(4)]
    try:
        with ThreadPoolExecutor(len(stores)) as pool:
            for done in [pool.submit(store.check_schema) for store in stores]:
                done.result()  # none raised: no "relation already exists"
        assert schema.current_revision(stores[0].engine) == revision.HEAD
    finally:
        for store in stores:
            store.dispose()
