"""Shell: `carpool-line db upgrade|current|revision` — the schema's migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from line_service.settings import Settings
from line_service.storage.store import Store

# Alembic is imported by each command, not here: `serve` loads this module and never needs it
# on a database already at head.

db_app = typer.Typer(
    help="The database schema: upgrade it, show its revision, write a new migration.",
    no_args_is_help=True,
)


def _store() -> Store:
    return Store(Settings().database_url)


@db_app.command("upgrade")
def upgrade_command(
    revision: Annotated[str, typer.Argument(help="target revision")] = "head",
) -> None:
    """Migrate CARPOOL_DATABASE_URL to the newest revision (or the one given)."""
    from line_service.storage import schema

    store = _store()
    try:
        before = schema.current_revision(store.engine)
        schema.upgrade(store.engine, revision)
        after = schema.current_revision(store.engine)
    except schema.SchemaError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    finally:
        store.dispose()
    typer.echo(f"database at revision {after} (was {before or 'new or unversioned'})")


@db_app.command("current")
def current_command() -> None:
    """Print the revision of CARPOOL_DATABASE_URL and the one this version needs."""
    from line_service.storage import schema

    store = _store()
    try:
        with store.engine.connect() as connection:
            state = schema.schema_state(connection)
    finally:
        store.dispose()
    head = schema.head_revision()
    if state.empty:
        current, status = "none", "new database: `serve` or `carpool-line db upgrade` creates it"
    elif state.unversioned:
        current = f"none (tables made before migrations, taken as {schema.FIRST_REVISION})"
        status = f"behind: {schema.UPGRADE_HINT}"
    else:
        current = str(state.revision)
        status = "up to date" if current == head else f"not {head}: {schema.UPGRADE_HINT}"
    typer.echo(f"database revision: {current}; this version needs {head} ({status})")


@db_app.command("revision")
def revision_command(
    message: Annotated[str, typer.Option("-m", "--message", help="what the revision does")],
    autogenerate: Annotated[
        bool, typer.Option(help="draft operations from the models' differences")
    ] = True,
) -> None:
    """Write a new migration under line_service/storage/migrations/versions (developers).

    Autogenerate compares the models with CARPOOL_DATABASE_URL, which must be at head.
    """
    from alembic import command

    from line_service.storage import schema

    store = _store()
    try:
        schema.upgrade(store.engine)
        head = schema.head_revision()
        with store.engine.begin() as connection:
            command.revision(
                schema.alembic_config(connection),
                message=message,
                autogenerate=autogenerate,
                rev_id=f"{int(head) + 1:04d}",
            )
    finally:
        store.dispose()
