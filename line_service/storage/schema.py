"""Adapter: schema migrations (Alembic) — upgrade to head, the current revision, old databases.

Configured here, not by an alembic.ini: the revisions live in `migrations/versions/` inside the
package. A database made by `create_all` before migrations existed has tables but no
`alembic_version`: when its tables are those of the first revision it is stamped with it.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Connection, Engine

from line_service.storage.revision import UPGRADE_HINT, SchemaBehindError, SchemaError

__all__ = ["UPGRADE_HINT", "SchemaBehindError", "SchemaError"]

MIGRATIONS = Path(__file__).with_name("migrations")
FIRST_REVISION = "0001"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for this package's migrations, on `connection` if given."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "rev_%%(rev)s_%%(slug)s")
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The revision this version of the code needs."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise SchemaError(f"no migration under {MIGRATIONS}")
    return head


@dataclass(frozen=True)
class SchemaState:
    """Where a database stands: its revision, and whether it predates migrations."""

    revision: str | None
    service_tables: frozenset[str]

    @property
    def empty(self) -> bool:
        """No revision and none of the service's tables: a new database."""
        return self.revision is None and not self.service_tables

    @property
    def unversioned(self) -> bool:
        """Service tables without a revision: made by `create_all` before migrations."""
        return self.revision is None and bool(self.service_tables)


def schema_state(connection: Connection) -> SchemaState:
    """Read the revision and which of the first revision's tables exist."""
    revision = MigrationContext.configure(connection).get_current_revision()
    if revision is not None:
        return SchemaState(revision, frozenset())
    present = set(inspect(connection).get_table_names())
    return SchemaState(None, frozenset(present & set(_first_revision_columns())))


def current_revision(engine: Engine) -> str | None:
    """The database's revision (None: new, or made before migrations)."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


# Several processes of a cluster started at once on a new database would all create its tables:
# on PostgreSQL they migrate one after the other, under this transaction advisory lock.
MIGRATION_LOCK = int.from_bytes(
    hashlib.blake2b(b"carpool-line/migrations", digest_size=8).digest(), "big", signed=True
)


def upgrade(engine: Engine, target: str = "head") -> None:
    """Migrate to `target` (stamping a pre-migration database with the first revision); on
    PostgreSQL one process at a time, the others then finding the work done."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        state = schema_state(connection)
        config = alembic_config(connection)
        if state.unversioned:
            _check_unversioned(connection)
            command.stamp(config, FIRST_REVISION)
        command.upgrade(config, target)


def check_ready(engine: Engine) -> None:
    """For serving: a new database is created; one at head is fine; anything else raises."""
    head = head_revision()
    with engine.connect() as connection:
        state = schema_state(connection)
    if state.revision == head:
        return
    if state.empty:
        upgrade(engine)
        return
    if state.unversioned:
        with engine.connect() as connection:
            _check_unversioned(connection)
        raise SchemaBehindError(f"{FIRST_REVISION} (made before migrations)", head)
    scripts = ScriptDirectory.from_config(alembic_config())
    if state.revision not in {script.revision for script in scripts.walk_revisions()}:
        raise SchemaError(
            f"the database is at revision {state.revision}, unknown to this version (needs "
            f"{head}): it was migrated by a newer version"
        )
    raise SchemaBehindError(str(state.revision), head)


def _check_unversioned(connection: Connection) -> None:
    """Raise unless the tables are exactly those the first revision creates."""
    expected = _first_revision_columns()
    found = inspect(connection)
    present = set(found.get_table_names())
    problems: list[str] = []
    for table, columns in sorted(expected.items()):
        if table not in present:
            problems.append(f"table {table} is missing")
            continue
        have = {column["name"] for column in found.get_columns(table)}
        if have != columns:
            problems.append(f"table {table} differs in columns {sorted(have ^ columns)}")
    if problems:
        raise SchemaError(
            "the database has tables but no migration history, and they are not those of "
            f"revision {FIRST_REVISION}: " + "; ".join(problems)
        )


_FIRST_COLUMNS: dict[str, set[str]] = {}


_FIRST_COLUMNS_BUILT = threading.Lock()


def _first_revision_columns() -> dict[str, set[str]]:
    """Each table of the first revision with its column names (built once, in memory, by one
    thread: the scratch database lives in the thread that made it)."""
    with _FIRST_COLUMNS_BUILT:
        return _build_first_revision_columns()


def _build_first_revision_columns() -> dict[str, set[str]]:
    if not _FIRST_COLUMNS:
        scratch = create_engine("sqlite://")
        try:
            with scratch.begin() as connection:
                command.upgrade(alembic_config(connection), FIRST_REVISION)
                found = inspect(connection)
                for table in found.get_table_names():
                    if table != "alembic_version":
                        columns = found.get_columns(table)
                        _FIRST_COLUMNS[table] = {column["name"] for column in columns}
        finally:
            scratch.dispose()
    return _FIRST_COLUMNS
