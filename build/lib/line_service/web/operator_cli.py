"""Composition root: `carpool-line operator …` — API tokens for people and systems."""

from __future__ import annotations

from typing import Annotated

import typer

from line_service.settings import Settings
from line_service.storage.store import Store
from line_service.web.operator_accounts import Role, add_operator, list_operators, remove_operator

operator_app = typer.Typer(help="Manage API tokens (stored hashed in the database).")


@operator_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="who holds the token (e.g. a person's login)")],
    role: Annotated[Role, typer.Option(help="viewer, operator or admin")] = Role.OPERATOR,
) -> None:
    """Create an operator (or give a new token to an existing one); print the token once."""
    if not 1 <= len(name) <= 80:
        typer.echo("NAME must have 1 to 80 characters", err=True)
        raise typer.Exit(2)
    store = Store(Settings().database_url)
    try:
        token = add_operator(store, name, role)
    finally:
        store.dispose()
    typer.echo(token)
    typer.echo(f"token for {name} ({role.value}): shown once, keep it safe", err=True)


@operator_app.command("list")
def list_() -> None:
    """List operators and their roles (never their tokens)."""
    store = Store(Settings().database_url)
    try:
        for row in list_operators(store):
            typer.echo(f"{row.name}\t{row.role}\t{row.created_at.isoformat()}")
    finally:
        store.dispose()


@operator_app.command("remove")
def remove(name: Annotated[str, typer.Argument(help="the operator to revoke")]) -> None:
    """Revoke an operator's token."""
    store = Store(Settings().database_url)
    try:
        found = remove_operator(store, name)
    finally:
        store.dispose()
    if not found:
        typer.echo(f"no operator named {name!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {name}")
