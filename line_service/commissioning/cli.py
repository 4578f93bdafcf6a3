"""Adapter: `carpool-line commission LINE` — walk a stop's devices and write the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from line_service.commissioning.checks import RESULT_FR, DeviceCheck, Json, Result, Walk
from line_service.commissioning.report import render_report


def commission_command(
    line_id: Annotated[str, typer.Argument(help="the line to commission")],
    out: Annotated[Path, typer.Option("--out", help="the HTML report to write")],
    stop: Annotated[str | None, typer.Option("--stop", help="one stop only")] = None,
    url: Annotated[str, typer.Option("--url", help="the running service")] = (
        "http://127.0.0.1:8000"
    ),
    token: Annotated[
        str, typer.Option("--token", envvar="CARPOOL_API_TOKEN", help="an operator token")
    ] = "",
    timeout: Annotated[
        float, typer.Option("--timeout", min=1, max=110, help="seconds each device may take")
    ] = 60.0,
) -> None:
    """Test every sign and terminal of the line (or one stop); exit 0 only if all are OK."""
    # httpx with it: importing the CLI (and so `serve`) does not pay for it.
    from line_service.commissioning.api_client import ApiError, HttpApi

    if not token:
        typer.echo("an operator token is needed (--token or CARPOOL_API_TOKEN)", err=True)
        raise typer.Exit(2)
    api = HttpApi(url, token)
    try:
        line = api.line(line_id)
        stops = _stops(line, stop)
        started = datetime.now(UTC)
        walk = Walk(
            api=api,
            line_id=line_id,
            timeout=timedelta(seconds=timeout),
            on_check=_print_check,
            on_prompt=lambda text: typer.echo(f"  → {text}"),
        )
        checks = walk.run(stops)
    except ApiError as exc:
        typer.echo(f"commission: {exc}", err=True)
        raise typer.Exit(2) from exc
    finally:
        api.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        render_report(
            line_id=line["id"],
            line_name=line["name"],
            timezone=line["timezone"],
            stops=[(s["id"], s["name"]) for s in stops],
            checks=checks,
            started_at=started,
            ended_at=datetime.now(UTC),
        ),
        encoding="utf-8",
    )
    failed = sum(1 for check in checks if check.result is not Result.OK)
    typer.echo(f"{len(checks) - failed}/{len(checks)} OK — rapport : {out}")
    if failed or not checks:
        raise typer.Exit(1)


def _stops(line: Json, stop_id: str | None) -> list[Json]:
    stops: list[Json] = [stop for d in line["directions"] for stop in d["stops"]]
    if stop_id is None:
        return stops
    chosen = [stop for stop in stops if stop["id"] == stop_id]
    if not chosen:
        from line_service.commissioning.api_client import ApiError

        raise ApiError(f"no stop {stop_id!r} on line {line['id']}")
    return chosen


def _print_check(check: DeviceCheck) -> None:
    at = check.ended_at.astimezone().strftime("%H:%M:%S")
    typer.echo(
        f"{at}  {check.stop_id:<20} {check.kind:<8} {check.device_id:<24} "
        f"{RESULT_FR[check.result]:<12} {check.detail}"
    )
