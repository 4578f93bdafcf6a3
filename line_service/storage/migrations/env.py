"""Adapter: Alembic environment — runs the revisions on the connection `schema` hands over."""

from __future__ import annotations

from alembic import context

from line_service.storage.tables import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `carpool-line db …`, which passes the connection")
context.configure(
    connection=connection,
    target_metadata=metadata(),
    render_as_batch=True,  # SQLite alters a table by copying it: autogenerate writes batch ops
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
