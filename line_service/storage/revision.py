"""Adapter: the schema revision this code needs, and the stored one, read without Alembic.

A start on a database already at head (every restart but the first) never imports Alembic
(~0.2 s); `schema` does the rest. A test checks that HEAD is the newest migration.
"""

from __future__ import annotations

from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

HEAD = "0009"
VERSION_TABLE = "alembic_version"
UPGRADE_HINT = "run `carpool-line db upgrade`"


class SchemaError(RuntimeError):
    """The database's schema is not one this version can use as it is."""


class SchemaBehindError(SchemaError):
    """The database is at an older revision than this version needs."""

    def __init__(self, current: str, head: str) -> None:
        super().__init__(
            f"the database is at revision {current}, this version needs {head}: {UPGRADE_HINT}"
        )
        self.current = current
        self.head = head


def stored_revision(engine: Engine) -> str | None:
    """The revision in the database's version table (None when there is no such table)."""
    with engine.connect() as connection:
        if not inspect(connection).has_table(VERSION_TABLE):
            return None
        found = connection.execute(text(f"SELECT version_num FROM {VERSION_TABLE}")).scalars()
        revisions = list(found)
    return revisions[0] if len(revisions) == 1 else None
