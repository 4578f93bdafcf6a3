"""Composition root: the money commands — campaigns check/simulate, payouts, drivers ban/unban."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from dispatcher.model import Network
from line_service.authority.campaigns import Campaign, Ledger
from line_service.authority.cli import _network, _store, configured_campaigns
from line_service.authority.driver_identity import shown_driver
from line_service.settings import Settings
from line_service.storage.store import as_utc

campaigns_app = typer.Typer(
    help="Incentive campaigns (who pays drivers what).", no_args_is_help=True
)
drivers_app = typer.Typer(help="Drivers the operator banned.", no_args_is_help=True)

MonthOption = Annotated[str, typer.Option(help="the month, YYYY-MM")]
PROGRESS_FROM = 2000  # journeys: below this, the simulation is too quick to show progress


def _month(text: str) -> str:
    if re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", text) is None:
        raise typer.BadParameter(f"{text!r} is not a month like 2026-11", param_hint="--month")
    return text


def _campaigns(path: Path | None, network: Network) -> list[Campaign]:
    settings = Settings()
    return configured_campaigns(settings.model_copy(update={"campaigns_file": path}), network)


@campaigns_app.command("check")
def check_command(file: Annotated[Path, typer.Argument(help="campaigns YAML file")]) -> None:
    """Check a campaigns file: every problem with its path (exit 2), else a summary."""
    settings = Settings()
    campaigns = _campaigns(file, _network(settings))
    typer.echo(f"{file}: {len(campaigns)} campaign(s)")


@campaigns_app.command("simulate")
def simulate_command(
    file: Annotated[Path, typer.Argument(help="campaigns YAML file")],
    month: MonthOption,
) -> None:
    """What the campaigns would have cost on the month's stored trips (no registry needed)."""
    from line_service.authority.money import trip_money
    from line_service.authority.presence import month_presence
    from line_service.authority.report import month_bounds

    settings = Settings()
    network = _network(settings)
    campaigns = _campaigns(file, network)
    zone = ZoneInfo(network.lines[0].timezone if network.lines else "Europe/Paris")
    first, last, start, end = month_bounds(_month(month), zone)
    store = _store(settings)

    shown = [-1]  # the last tenth reported

    def progress(done: int, total: int) -> None:
        tenth = done * 10 // total
        if total >= PROGRESS_FROM and tenth != shown[0]:
            shown[0] = tenth
            typer.echo(f"  {done}/{total} journeys ({tenth * 10} %)", err=True)

    try:
        money = trip_money(store, network, campaigns, first, last, progress=progress)
        presence = month_presence(
            store, network, campaigns, money, (start, end), until=datetime.now(UTC)
        )
    finally:
        store.dispose()
    in_month = [t for t in money.trips if start <= as_utc(t.picked_up_at) < end]
    payable = sum(1 for t in in_month if money.payable(t))
    typer.echo(f"{month}: {len(in_month)} trip(s), {payable} payable (clean, identified driver)")
    for line in simulation_table(campaigns, money.ledger, [t.id for t in in_month], presence):
        typer.echo(line)


def simulation_table(
    campaigns: list[Campaign],
    ledger: Ledger,
    journey_ids: list[str],
    presence: Mapping[str, Mapping[str, int]] | None = None,
) -> list[str]:
    """The simulation's table: per campaign, journeys and euros paid, budget used, capped
    (a presence campaign: its bonuses, and the drivers who earned one)."""
    presence = presence or {}
    header = (
        f"{'campaign':<24} {'siret':<14} {'journeys':>8} {'paid EUR':>10} "
        f"{'budget used':>22} {'capped':>6}"
    )
    lines = [header, "-" * len(header)]
    for campaign in campaigns:
        found = [
            i
            for j in journey_ids
            for i in ledger.incentives.get(j, [])
            if i.campaign_id == campaign.id
        ]
        used = ledger.budget_used.get(campaign.id, 0)
        budget = "no budget"
        if campaign.budget_cents:
            share = used / campaign.budget_cents
            budget = f"{used / 100:.2f}/{campaign.budget_cents / 100:.0f} ({share:.0%})"
        bonuses = presence.get(campaign.id, {})
        paid = sum(i.amount_cents for i in found) + sum(bonuses.values())
        lines.append(
            f"{campaign.id[:24]:<24} {campaign.siret or '-':<14} {len(found):>8} "
            f"{paid / 100:>10.2f} {budget:>22} {len(ledger.capped.get(campaign.id, ())):>6}"
        )
        if bonuses:
            lines.append(f"  {campaign.id}: presence bonus for {len(bonuses)} driver(s)")
        if campaign.id in ledger.budget_exhausted:
            lines.append(f"  {campaign.id}: budget exhausted")
        capped = sorted(ledger.capped.get(campaign.id, ()))
        if capped:
            shown = ", ".join(shown_driver(key) for key in capped[:10])
            lines.append(f"  {campaign.id}: capped: {shown}")
    total = sum(ledger.paid(j) for j in journey_ids)
    total += sum(cents for drivers in presence.values() for cents in drivers.values())
    lines.append(f"total paid: {total / 100:.2f} EUR")
    return lines


def payouts_command(
    month: MonthOption,
    out: Annotated[Path, typer.Option("--out", help="folder to write the CSV files into")],
    statuses: Annotated[
        Path | None,
        typer.Option(
            help="JSON {journey id: registry status} instead of the statuses the service's "
            "registry outbox stored"
        ),
    ] = None,
) -> None:
    """Write the month's payouts: per driver, per sponsor (funding call), banned drivers."""
    from line_service.authority.driver_bans import DriverBans
    from line_service.authority.payouts import (
        MappingStatuses,
        RegistryStatuses,
        compute_payouts,
        write_payouts,
    )
    from line_service.authority.rpc_outbox import RpcOutbox

    settings = Settings()
    network = _network(settings)
    campaigns = _campaigns(settings.campaigns_file, network)
    try:
        given = MappingStatuses.from_file(statuses) if statuses else None
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(str(exc)[:300], param_hint="--statuses") from exc
    store = _store(settings)
    try:
        # The statuses the service's registry outbox stored, unless a file gives them.
        known: RegistryStatuses = (
            given if given is not None else RpcOutbox(store, network, lambda: datetime.now(UTC))
        )
        payouts = compute_payouts(
            store, network, campaigns, _month(month), known, datetime.now(UTC)
        )
        paths = write_payouts(payouts, network, DriverBans(store), out)
    finally:
        store.dispose()
    total = sum(payouts.per_driver.values())
    typer.echo(
        f"{month}: {len(payouts.paid)} journey(s) paid to {len(payouts.per_driver)} driver(s), "
        f"{total / 100:.2f} EUR"
    )
    for reason, count in sorted(payouts.held.items()):
        typer.echo(f"  held back: {count} journey(s): {reason}")
    for path in paths:
        typer.echo(f"  {path}")


@drivers_app.command("ban")
def ban_command(
    driver: Annotated[str, typer.Argument(help="the driver: +33…, tel:+33… or account:<id>")],
    reason: Annotated[str, typer.Option(help="why (kept with the ban)")] = "",
) -> None:
    """Ban a driver: they earn nothing from now on (unpaid journeys included)."""
    from line_service.authority.driver_bans import DriverBans, UnknownDriverRefError

    store = _store(Settings())
    try:
        row = DriverBans(store).ban(driver, reason[:500], datetime.now(UTC))
    except UnknownDriverRefError as exc:
        raise typer.BadParameter(str(exc), param_hint="DRIVER") from exc
    finally:
        store.dispose()
    typer.echo(f"banned {row.driver_key} (registry id {row.registry_user_id or 'none'})")


@drivers_app.command("unban")
def unban_command(driver: Annotated[str, typer.Argument(help="the driver")]) -> None:
    """Lift a ban."""
    from line_service.authority.driver_bans import DriverBans, UnknownDriverRefError

    store = _store(Settings())
    try:
        lifted = DriverBans(store).unban(driver)
    except UnknownDriverRefError as exc:
        raise typer.BadParameter(str(exc), param_hint="DRIVER") from exc
    finally:
        store.dispose()
    typer.echo("ban lifted" if lifted else "that driver was not banned")


@drivers_app.command("list")
def list_command() -> None:
    """The banned drivers, with the ids the registry knows them by."""
    from line_service.authority.driver_bans import DriverBans

    store = _store(Settings())
    try:
        rows = DriverBans(store).banned()
    finally:
        store.dispose()
    for row in rows:
        typer.echo(
            f"{row.driver_key}\t{row.registry_user_id or '-'}\t"
            f"{row.banned_at.date().isoformat()}\t{row.reason}"
        )
    typer.echo(f"{len(rows)} banned driver(s)")
