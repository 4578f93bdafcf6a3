"""Shared fixtures: real brokers and databases started by the tests themselves."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy

from line_service.storage.store import Store
from tests.support.brokers import Mosquitto, free_port
from tests.support.mqtt_probe import MqttProbe
from tests.support.postgres import ThrowawayPostgres
from tests.support.rpc_standin import Registry

# Where the throwaway server of this session listens, for the summary at the end of the run.
_STARTED_POSTGRES: list[str] = []


@pytest.fixture
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A Mosquitto of this test's own, on a free port."""
    broker = Mosquitto(free_port(), tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield broker
    broker.stop()


@pytest.fixture
def probe(mosquitto: Mosquitto) -> Iterator[MqttProbe]:
    """A plain MQTT client on this test's broker, seeing everything under carpool/v1/."""
    client = MqttProbe(mosquitto.port, ("carpool/v1/#",))
    yield client
    client.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """`CARPOOL_TEST_POSTGRES_URL` when set; else a throwaway server of this session's own."""
    configured = os.environ.get("CARPOOL_TEST_POSTGRES_URL")
    if configured:
        yield configured
        return
    server = ThrowawayPostgres()
    try:
        server.start()
        _STARTED_POSTGRES.append(f"127.0.0.1:{server.port} ({server.directory})")
        yield server.url
    finally:
        server.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which PostgreSQL the run used."""
    for where in _STARTED_POSTGRES:
        terminalreporter.write_line(f"throwaway PostgreSQL of this run: {where}, now removed")


def _postgres_schema_url(server_url: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sqlalchemy.create_engine(server_url)
    try:
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text(f'CREATE SCHEMA "{schema}"'))
    except sqlalchemy.exc.OperationalError as exc:
        admin.dispose()
        raise RuntimeError(f"PostgreSQL is required at {server_url}: {exc}") from exc
    separator = "&" if "?" in server_url else "?"
    yield f"{server_url}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as connection:
        connection.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def own_postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL server of this test alone, which it may restart (never the shared one)."""
    server = ThrowawayPostgres()
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The same test on SQLite (a file) and on PostgreSQL (a schema of its own); `own-postgresql`
    (indirect parameter only): the `test` database of the test's `own_postgres` server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/carpool.sqlite3"
    elif request.param == "own-postgresql":
        own: ThrowawayPostgres = request.getfixturevalue("own_postgres")
        yield own.url
    else:
        yield from _postgres_schema_url(request.getfixturevalue("postgres_url"))


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """A store on the test's database, with the schema made (a test module may define its own)."""
    opened = Store(database_url)
    opened.create_schema()
    yield opened
    opened.dispose()


@pytest.fixture
def registry() -> Iterator[Registry]:
    """A local stand-in of the national registry (RPC v3.4) on a free port."""
    stand_in = Registry()
    yield stand_in
    stand_in.close()


@pytest.fixture
def cluster_env() -> dict[str, str]:
    """Settings both processes of tests/test_cluster.py's `pair` get besides CARPOOL_CLUSTER
    (a test module may override it)."""
    return {}
