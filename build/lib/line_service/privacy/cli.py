"""Shell: `carpool-line privacy export|erase --phone N` — access and erasure requests (RGPD)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import typer

from line_service.privacy.personal_data import (
    NotACarpoolDatabaseError,
    PhoneKeys,
    erase,
    export,
    keys_for,
)
from line_service.settings import Settings
from line_service.storage.store import Store
from sms_gateway.phones import to_e164

privacy_app = typer.Typer(
    help="Personal data: export or erase what the service holds about a phone number.",
    no_args_is_help=True,
)

PhoneOption = Annotated[
    str, typer.Option("--phone", help="The number, in any usual form (+33 6…, 06 12 34 56 78)")
]


def _keys(raw: str, settings: Settings) -> PhoneKeys:
    phone = to_e164(raw)
    if phone is None:
        typer.echo(
            f"not a valid phone number: {raw!r} (try +33612345678 or 06 12 34 56 78)", err=True
        )
        raise typer.Exit(2)
    return keys_for(phone, settings.phone_hash_salt.get_secret_value())


@privacy_app.command("export")
def export_command(phone: PhoneOption) -> None:
    """Print, as JSON, everything stored about this number (CARPOOL_DATABASE_URL)."""
    settings = Settings()
    keys = _keys(phone, settings)
    store = Store(settings.database_url)
    try:
        data = export(store.engine, keys, datetime.now(UTC))
    except NotACarpoolDatabaseError as exc:
        typer.echo(f"{exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        store.dispose()
    typer.echo(json.dumps(data, ensure_ascii=False, indent=2))


@privacy_app.command("erase")
def erase_command(phone: PhoneOption) -> None:
    """Erase this number everywhere (hashes become a random pseudonym); print counts as JSON."""
    settings = Settings()
    keys = _keys(phone, settings)
    store = Store(settings.database_url)
    try:
        erasure = erase(store.engine, keys)
    except NotACarpoolDatabaseError as exc:
        typer.echo(f"{exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        store.dispose()
    typer.echo(
        json.dumps(
            {
                "erased": erasure.counts,
                "rows": sum(erasure.counts.values()),
                "open_requests": erasure.open_requests,
            }
        )
    )
    if erasure.open_requests:
        typer.echo(
            f"warning: {erasure.open_requests} request(s) of this number are still open in the "
            "running service; run this command again once they have ended.",
            err=True,
        )
