"""Shell: `carpool-line accounts list|revoke` — riders' and drivers' accounts, for operators."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from line_service.accounts.book import AccountBook
from line_service.settings import Settings
from line_service.storage.store import Store
from sms_gateway.phones import to_e164

accounts_app = typer.Typer(
    help="Riders' and drivers' accounts (signed in by a code texted to their number).",
    no_args_is_help=True,
)


@accounts_app.command("list")
def list_() -> None:
    """List accounts: id, number (masked), created, last sign-in, live tokens."""
    store = Store(Settings().database_url)
    try:
        store.create_schema()
        for row in AccountBook(store.engine).accounts(datetime.now(UTC)):
            typer.echo(
                f"{row.id}\t{row.phone_masked}\t{row.created_at.isoformat()}\t"
                f"{row.signed_in_at.isoformat()}\t{row.live_tokens}"
            )
    finally:
        store.dispose()


@accounts_app.command("revoke")
def revoke(
    account: Annotated[str, typer.Argument(help="the account id, or its phone number")],
) -> None:
    """Revoke every token of an account (its holder must sign in again)."""
    store = Store(Settings().database_url)
    try:
        store.create_schema()
        book = AccountBook(store.engine)
        phone = to_e164(account)
        found = book.account_of_phone(phone) if phone is not None else None
        revoked = book.revoke_account(found.id if found is not None else account)
    finally:
        store.dispose()
    if revoked is None:
        typer.echo(f"no account {account!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {revoked} token(s) of account {found.id if found else account}")
