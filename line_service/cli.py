"""Composition root: the `carpool-line` command line."""

from __future__ import annotations

import asyncio
import faulthandler
import gc
import os
import signal
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from pydantic import SecretStr

from dispatcher.model import Network
from dispatcher.request_machine import RequestState
from line_service.accounts.cli import accounts_app
from line_service.authority.cli import (
    attestation_command,
    export_app,
    report_command,
    send_rpc_command,
)
from line_service.authority.money_cli import campaigns_app, drivers_app, payouts_command
from line_service.broker.cli import mosquitto_config
from line_service.cluster.cli import cluster_app
from line_service.commissioning.cli import commission_command
from line_service.logging_setup import configure_logging, secret_values
from line_service.network.lines_file import LinesFileError, load_network
from line_service.network.orphans import LostRidersError, Orphans, orphans
from line_service.planning.cli import register as register_plan
from line_service.planning.corridors_check import check_corridors
from line_service.privacy.cli import privacy_app
from line_service.settings import EMBEDDED, Settings
from line_service.storage.cli import db_app
from line_service.storage.revision import SchemaError
from line_service.web.operator_cli import operator_app

DEMO_TOKEN = "demo-operateur"
DEMO_SHARED_ADDRESS = {"request_rate_per_address": 1_000_000, "code_guess_identity_budget": 1_000}
REASSERT_FIRST_SECONDS = 5.0

app = typer.Typer(help="Operate dynamic carpool lines.", no_args_is_help=True)


@app.command("check-config")
def check_config(
    path: Annotated[Path, typer.Argument(help="lines.yaml, or a corridors/scenario file")],
    database: Annotated[
        str | None,
        typer.Option(
            "--database",
            help="Also check the file against the riders waiting in this database (a URL)",
        ),
    ] = None,
) -> None:
    """Check a lines file (or a corridors file for `plan`); print every problem with its path,
    exit 1 if any. With `--database`, also what the file lost that waiting riders need."""
    if _is_corridors_file(path):
        problems = check_corridors(path)
        for problem in problems:
            typer.echo(f"{path}: {problem}", err=True)
        if problems:
            raise typer.Exit(1)
        typer.echo(f"{path}: OK — corridors file")
        return
    try:
        network = load_network(path)
    except LinesFileError as exc:
        for problem in exc.problems:
            typer.echo(f"{path}: {problem}", err=True)
        raise typer.Exit(1) from exc
    stops = sum(len(line.all_stops()) for line in network.lines)
    devices = len(network.devices())
    against = ""
    if database is not None:
        lost, waiting = _lost_against(network, database)
        for orphan in lost:
            typer.echo(f"{path}: {orphan}", err=True)
        if lost:
            raise typer.Exit(1)
        against = f"; {waiting} waiting rider(s) in the database, none at a place the file lost"
    typer.echo(
        f"{path}: OK — {len(network.lines)} line(s), {stops} stops, {devices} devices{against}"
    )


def _lost_against(network: Network, database_url: str) -> tuple[list[Orphans], int]:
    """What waiting riders stored in the database need that `network` lacks, and how many wait.

    A database that cannot be read is a clear message and exit 2, not a traceback.
    """
    from line_service.storage.store import Store  # the database side, only when asked

    store = Store(database_url)
    try:
        store.create_schema()
        stored = store.live_requests(datetime.now(UTC), timedelta(0))
    except Exception as exc:
        typer.echo(f"cannot read the database: {str(exc).splitlines()[0][:300]}", err=True)
        raise typer.Exit(2) from exc
    finally:
        store.dispose()
    waiting = sum(request.state is RequestState.WAITING for request in stored)
    return orphans(network, stored), waiting


def _is_corridors_file(path: Path) -> bool:
    """A file whose top level has `corridors:` and no `lines:` (read loosely: the checks that
    follow report what is wrong with it)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    keys = {line.split(":", 1)[0] for line in text.splitlines() if line[:1].isalpha()}
    return "corridors" in keys and "lines" not in keys


app.command("mosquitto-config")(mosquitto_config)
app.add_typer(operator_app, name="operator")
app.add_typer(accounts_app, name="accounts")
app.add_typer(privacy_app, name="privacy")
app.add_typer(export_app, name="export")
app.add_typer(db_app, name="db")
app.add_typer(cluster_app, name="cluster")
app.command("report")(report_command)
app.command("attestation")(attestation_command)
app.command("send-rpc")(send_rpc_command)
app.command("commission")(commission_command)
app.add_typer(campaigns_app, name="campaigns")
app.add_typer(drivers_app, name="drivers")
app.command("payouts")(payouts_command)
register_plan(app)


@app.command()
def serve(
    demo: Annotated[bool, typer.Option("--demo", help="Simulated devices and traffic")] = False,
    end_orphans: Annotated[
        bool,
        typer.Option(
            "--end-orphans",
            help="Cancel (as the operator) riders waiting on a place the lines file lost, "
            "and tell them, instead of refusing to start",
        ),
    ] = False,
) -> None:
    """Run the service (HTTP API, dispatcher, MQTT link)."""
    settings = Settings()
    if demo and "CARPOOL_IGNORE_SERVICE_HOURS" not in os.environ:
        settings = settings.model_copy(update={"ignore_service_hours": True})
    if demo and settings.sms_provider != "console":
        # Simulated riders have made-up numbers: the demo must never text anybody.
        typer.echo("demo mode: SMS go to the console provider (no SMS is sent)", err=True)
        settings = settings.model_copy(update={"sms_provider": "console"})
    if demo:
        # Every simulated app rider and driver calls from 127.0.0.1, as one client would.
        shared = {
            name: value
            for name, value in DEMO_SHARED_ADDRESS.items()
            if f"CARPOOL_{name.upper()}" not in os.environ
        }
        settings = settings.model_copy(update=shared)
    if demo and "CARPOOL_API_TOKENS" not in os.environ:
        settings = settings.model_copy(update={"api_tokens": SecretStr(f"demo:{DEMO_TOKEN}:admin")})
        typer.echo(f"demo dashboard: http://{settings.http_host}:{settings.http_port}/", err=True)
        typer.echo(f"demo token (admin, demo mode only): {DEMO_TOKEN}", err=True)
    configure_logging(settings.log_format, settings.log_level, secret_values(settings))
    # A fatal signal (SIGBUS when a memory-mapped SQLite file loses its disk, SIGSEGV) leaves
    # "Fatal Python error: Bus error" and every thread's stack on stderr, not a silent death.
    faulthandler.enable()
    # No cyclic collection until the signs are re-asserted (`_serve` turns it back on then):
    # start-up builds what lives as long as the process (frozen once restored, see runtime.py),
    # leaves no cycles to free, and the collector's passes over it cost ~0.1 s of a restart's CPU.
    gc.disable()
    try:
        _start(settings, demo, end_orphans)
    finally:
        gc.enable()


def _start(settings: Settings, demo: bool, end_orphans: bool) -> None:
    """Read the lines file, check the ports, run the service; clear messages on the way out."""
    try:
        network = load_network(settings.lines_file, settings.cache_dir)
    except LinesFileError as exc:
        for problem in exc.problems:
            typer.echo(f"{settings.lines_file}: {problem}", err=True)
        typer.echo("refusing to start: fix the lines file", err=True)
        raise typer.Exit(2) from exc
    busy = _ports_in_use(settings)
    if busy:
        for problem in busy:
            typer.echo(problem, err=True)
        typer.echo("refusing to start: free the port or choose another", err=True)
        raise typer.Exit(2)
    try:
        asyncio.run(_serve(settings, network, demo, end_orphans))
    except SchemaError as exc:  # a new database is created; one that is behind is not touched
        typer.echo(str(exc), err=True)
        typer.echo("refusing to start: the database schema does not match this version", err=True)
        raise typer.Exit(2) from exc
    except LostRidersError as exc:
        for orphan in exc.lost:
            typer.echo(f"{settings.lines_file}: {orphan}", err=True)
        typer.echo(
            "refusing to start: restore what the lines file lost, or end these riders "
            "(`serve --end-orphans` cancels them and tells them; `check-config PATH "
            "--database URL` lists them)",
            err=True,
        )
        raise typer.Exit(2) from exc


async def _serve(settings: Settings, network: Network, demo: bool, end_orphans: bool) -> None:
    """Dispatch first, the web side after: a restart re-asserts every sign before it imports
    and starts the HTTP API, the dashboard and the SMS webhook (the HTTP side waits for the
    signs at most `REASSERT_FIRST_SECONDS`: a broker that is down must not keep /readyz away).

    SIGTERM and SIGINT stop the HTTP server, then the dispatcher, which commits what is queued
    before the process ends with the signal.
    """
    from line_service.demo import demo_jobs
    from line_service.runtime import build_runtime, running

    stop = asyncio.Event()
    caught = _catch_stop_signals(stop)
    runtime = build_runtime(settings, network=network)
    jobs = demo_jobs(settings) if demo else ()
    async with running(runtime, jobs, end_lost_riders=end_orphans) as live:
        reasserted = asyncio.create_task(live.settled())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait(
            (reasserted, stopping),
            timeout=REASSERT_FIRST_SECONDS,
            return_when=asyncio.FIRST_COMPLETED,
        )
        reasserted.cancel()
        gc.enable()
        if not stop.is_set():
            import uvicorn

            from line_service.app import create_app

            application = create_app(settings, runtime=live, already_running=True)
            config = uvicorn.Config(
                application,
                host=settings.http_host,
                port=settings.http_port,
                log_config=None,
                access_log=False,
                lifespan="on",
                # uvicorn would believe X-Forwarded-For from 127.0.0.1: CARPOOL_TRUSTED_PROXIES
                # decides alone (line_service/web/abuse_guard.py).
                proxy_headers=False,
            )
            server = uvicorn.Server(config)
            stopping.add_done_callback(lambda _: setattr(server, "should_exit", True))
            await server.serve()  # hands the signals it caught back to ours when it returns
        stopping.cancel()
    for signum in caught:
        signal.signal(signum, signal.SIG_DFL)
        signal.raise_signal(signum)


def _catch_stop_signals(stop: asyncio.Event) -> list[int]:
    """Route SIGTERM and SIGINT to `stop`; the list fills with the signals received."""
    loop = asyncio.get_running_loop()
    caught: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        caught.append(signum)
        loop.call_soon_threadsafe(stop.set)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, on_signal)
    return caught


def _ports_in_use(settings: Settings) -> list[str]:
    """Ports this service must bind that something else holds (a clear message, not a trace)."""
    wanted = [(settings.http_host, settings.http_port, "CARPOOL_HTTP_PORT")]
    if settings.mqtt_url == EMBEDDED:
        wanted.append(("127.0.0.1", settings.embedded_mqtt_port, "CARPOOL_EMBEDDED_MQTT_PORT"))
    busy = []
    for host, port, setting in wanted:
        if port == 0:
            continue
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, port))
            except OSError as exc:
                busy.append(f"{host}:{port} is already in use ({exc.strerror}); set {setting}")
    return busy


def main() -> None:
    """Entry point of `carpool-line`."""
    app()
