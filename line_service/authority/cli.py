"""Composition root: the authority's commands (export rpc, export bnlc, report, send-rpc)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from dispatcher.model import Network
from line_service.authority.campaigns import Campaign
from line_service.authority.campaigns_file import CampaignsFileError, campaigns_for
from line_service.network.lines_file import LinesFileError, load_network
from line_service.settings import Settings
from line_service.storage.store import Store

export_app = typer.Typer(help="Export data for the transport authority.", no_args_is_help=True)

DateOption = Annotated[str, typer.Option(help="a date, YYYY-MM-DD")]
OutOption = Annotated[Path, typer.Option("--out", help="file to write")]


def _network(settings: Settings) -> Network:
    try:
        return load_network(settings.lines_file)
    except LinesFileError as exc:
        for problem in exc.problems:
            typer.echo(f"{settings.lines_file}: {problem}", err=True)
        raise typer.Exit(2) from exc


def configured_campaigns(settings: Settings, network: Network) -> list[Campaign]:
    """The campaigns of `CARPOOL_CAMPAIGNS_FILE` (each problem printed, exit 2), else each
    line's own compensation rule."""
    try:
        return campaigns_for(settings.campaigns_file, network)
    except CampaignsFileError as exc:
        for problem in exc.problems:
            typer.echo(f"{exc.source}: {problem}", err=True)
        raise typer.Exit(2) from exc


def _store(settings: Settings) -> Store:
    store = Store(settings.database_url)
    store.create_schema()
    return store


def _date(text: str, option: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise typer.BadParameter(
            f"{text!r} is not a date like 2026-03-01", param_hint=option
        ) from exc


@export_app.command("rpc")
def export_rpc_command(
    first: Annotated[str, typer.Option("--from", help="first day, YYYY-MM-DD")],
    last: Annotated[str, typer.Option("--to", help="last day (included), YYYY-MM-DD")],
    out: OutOption,
) -> None:
    """Write the period's journeys for the Registre de preuve de covoiturage (JSON array)."""
    from line_service.authority.rpc_export import export_rpc, write_journeys

    start, end = _date(first, "--from"), _date(last, "--to")
    if end < start:
        raise typer.BadParameter("--to is before --from", param_hint="--to")
    settings = Settings()
    network = _network(settings)
    campaigns = configured_campaigns(settings, network)
    store = _store(settings)
    try:
        export = export_rpc(store, network, start, end, campaigns)
    finally:
        store.dispose()
    write_journeys(export.journeys, out)
    typer.echo(f"{out}: {len(export.journeys)} journey(s) from {start} to {end}")
    for reason, count in sorted(export.skipped.items()):
        typer.echo(f"  not exported: {count} trip(s): {reason}")
    _refuse_invalid(export.invalid, "journey(s)")


@export_app.command("bnlc")
def export_bnlc_command(
    out: OutOption,
    siren: Annotated[str | None, typer.Option(help="SIREN of the publisher")] = None,
    owner: Annotated[str | None, typer.Option(help="owner of the places")] = None,
    updated: Annotated[str | None, typer.Option(help="date_maj, default today")] = None,
) -> None:
    """Write the stops as BNLC places (CSV, schema v0.3.0)."""
    from line_service.authority.bnlc_export import export_bnlc, write_bnlc

    if siren is not None and re.fullmatch(r"\d{9}", siren) is None:
        raise typer.BadParameter("a SIREN is 9 digits", param_hint="--siren")
    updated_on = date.today() if updated is None else _date(updated, "--updated")
    export = export_bnlc(_network(Settings()), updated_on, siren, owner)
    write_bnlc(export.rows, out)
    typer.echo(f"{out}: {len(export.rows)} place(s)")
    if export.skipped:
        typer.echo(f"  not exported (no insee code): {', '.join(export.skipped)}")
    _refuse_invalid(export.invalid, "place(s)")


@export_app.command("gtfs")
def export_gtfs_command(
    out: OutOption,
    start: Annotated[str | None, typer.Option(help="first day of the feed, default today")] = None,
    days: Annotated[int, typer.Option(min=7, max=730, help="days the feed covers")] = 365,
    route_type: Annotated[
        int, typer.Option(help="routes.txt route_type (1550: carpooling line; 3: bus)")
    ] = 1550,
) -> None:
    """Write the lines as a GTFS feed (zip): routes, stops, calendar, frequencies = waits."""
    from line_service.authority.gtfs_export import FeedOptions, build_feed, to_zip
    from line_service.authority.gtfs_feed import feed_headway

    first = date.today() if start is None else _date(start, "--start")
    settings = Settings()
    network = _network(settings)
    store = _store(settings)
    try:
        options = FeedOptions(
            start=first,
            publisher_name="carpool-line",
            publisher_url=settings.public_url,
            days=days,
            route_type=route_type,
        )
        feed = build_feed(network, options, feed_headway(settings, network, store))
    finally:
        store.dispose()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(to_zip(feed))
    counts = ", ".join(
        f"{len(feed[name])} {name.removesuffix('.txt')}"
        for name in ("routes.txt", "stops.txt", "trips.txt", "frequencies.txt")
    )
    typer.echo(f"{out}: {counts}, {first} to {options.end}")


def report_command(
    month: Annotated[str, typer.Option(help="the month, YYYY-MM")],
    out: OutOption,
) -> None:
    """Write the monthly report (self-contained HTML with plots)."""
    from line_service.authority.report import compute_figures, render_html

    if re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month) is None:
        raise typer.BadParameter(f"{month!r} is not a month like 2026-03", param_hint="--month")
    settings = Settings()
    network = _network(settings)
    campaigns = configured_campaigns(settings, network)
    store = _store(settings)
    try:
        figures = compute_figures(store, network, month, campaigns)
    finally:
        store.dispose()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_html(figures, network), encoding="utf-8")
    typer.echo(f"{out}: {figures.requests} request(s), {figures.trips} trip(s) in {month}")


def attestation_command(
    phone: Annotated[str, typer.Option(help="the rider's or driver's number, e.g. +33612345678")],
    year: Annotated[int, typer.Option(min=2000, max=2100, help="the calendar year")],
    out: OutOption,
) -> None:
    """Write a person's trip attestation for a year (printable HTML, in French)."""
    from line_service.authority.attestation import (
        render_attestation,
        trips_of_person,
        year_bounds,
    )
    from sms_gateway.phones import phone_hash, to_e164

    number = to_e164(phone)
    if number is None:
        raise typer.BadParameter(f"{phone!r} is not a phone number", param_hint="--phone")
    settings = Settings()
    network = _network(settings)
    store = _store(settings)
    salt = settings.phone_hash_salt.get_secret_value()
    start, end = year_bounds(year, network.lines[0].timezone if network.lines else "Europe/Paris")
    try:
        trips = trips_of_person(store, number, lambda p: phone_hash(p, salt), start, end)
    finally:
        store.dispose()
    out.parent.mkdir(parents=True, exist_ok=True)
    page = render_attestation(network, number, year, trips, datetime.now(UTC))
    out.write_text(page, encoding="utf-8")
    typer.echo(f"{out}: {len(trips)} trip(s) in {year}")


def send_rpc_command(
    file: Annotated[Path, typer.Argument(help="journeys written by `export rpc`")],
    url: Annotated[str, typer.Option(help="registry base URL")] = (
        "https://api.covoiturage.beta.gouv.fr"
    ),
    token: Annotated[str, typer.Option(envvar="CARPOOL_RPC_TOKEN", help="API token")] = "",
    access_key: Annotated[
        str, typer.Option(envvar="CARPOOL_RPC_ACCESS_KEY", help="API key (with the secret)")
    ] = "",
    secret_key: Annotated[str, typer.Option(envvar="CARPOOL_RPC_SECRET_KEY", hidden=True)] = "",
) -> None:
    """Post journeys to the registry (409 = already there); exit 1 if any was not accepted.

    Journeys invalid against the v3.4 schema or under 1 km are not sent: each is reported.
    Auth: a fixed token (CARPOOL_RPC_TOKEN), or the registry's key pair (CARPOOL_RPC_ACCESS_KEY,
    CARPOOL_RPC_SECRET_KEY) traded for short-lived tokens.
    """
    from collections import Counter

    from line_service.authority.rpc_client import AccessTokens, Outcome, Result, RpcClient

    journeys: list[dict[str, Any]] = json.loads(file.read_text(encoding="utf-8"))

    async def send() -> list[Result]:
        keys = access_key and secret_key and not token
        client = RpcClient(url, AccessTokens(access_key, secret_key) if keys else token)
        try:
            return await client.send_all(journeys)
        finally:
            await client.aclose()

    results = asyncio.run(send())
    counts = Counter(result.outcome for result in results)
    for result in results:
        if result.outcome in (Outcome.INVALID, Outcome.BREAKS_TERMS):
            for problem in result.detail.split("; "):
                typer.echo(f"journey {result.journey_id}: {problem} (not sent)", err=True)
        elif result.outcome is Outcome.REJECTED:
            terms = ", ".join(str(violation) for violation in result.terms)
            why = f"terms: {terms}" if terms else result.detail[:200]
            typer.echo(f"journey {result.journey_id}: rejected ({result.status}): {why}", err=True)
    typer.echo(", ".join(f"{outcome.value}: {n}" for outcome, n in counts.items()) or "nothing")
    if set(counts) - {Outcome.CREATED, Outcome.ALREADY_THERE}:
        raise typer.Exit(1)


def _refuse_invalid(invalid: Mapping[str, list[str]], what: str) -> None:
    """Print why each invalid record was left out (with its field) and exit 1, if any was."""
    if not invalid:
        return
    for reports in invalid.values():
        for report in reports:
            typer.echo(report, err=True)
    typer.echo(f"  not exported: {len(invalid)} invalid {what} (above)", err=True)
    raise typer.Exit(1)
