"""Shell: `carpool-line mosquitto-config` — broker accounts and ACL from lines.yaml."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from line_service.broker.mosquitto_config import (
    CREDENTIALS_FILE,
    DEFAULT_DISPATCHER_USER,
    DEFAULT_OBSERVER_USER,
    BrokerConfigError,
    FileOwner,
    TlsListener,
    default_owner,
    dispatcher_users,
    write_broker_config,
)
from line_service.network.lines_file import LinesFileError, load_network


def mosquitto_config(
    out: Annotated[Path, typer.Option("--out", help="directory to write the files into")],
    lines_file: Annotated[Path, typer.Option("--lines-file", help="the line network")] = Path(
        "config/lines.yaml"
    ),
    dispatcher_user: Annotated[
        str,
        typer.Option(help="the dispatcher's username, also its client id (CARPOOL_MQTT_CLIENT_ID)"),
    ] = DEFAULT_DISPATCHER_USER,
    observer_user: Annotated[
        str, typer.Option(help="a read-only account (monitoring, the safety monitor)")
    ] = DEFAULT_OBSERVER_USER,
    processes: Annotated[
        int,
        typer.Option(
            min=1,
            help="service processes of a cluster (CARPOOL_CLUSTER): one dispatcher account "
            "each, named USER, USER-2, USER-3…",
        ),
    ] = 1,
    broker_dir: Annotated[
        Path | None,
        typer.Option(help="where the broker will read these files (default: --out)"),
    ] = None,
    port: Annotated[int, typer.Option(help="plain MQTT listener port")] = 1883,
    bind: Annotated[str, typer.Option(help="address the listeners bind to")] = "0.0.0.0",
    tls_port: Annotated[int | None, typer.Option(help="add a TLS listener on this port")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM)")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM)")] = None,
    tls_ca: Annotated[Path | None, typer.Option(help="CA bundle (PEM), optional")] = None,
    run_as: Annotated[
        str | None, typer.Option(help="user the broker drops privileges to (its `user`)")
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option(
            help="user owning what the broker reads (mode 0640); default: `mosquitto` when run "
            "as root and that user exists, else the files stay yours (0600)"
        ),
    ] = None,
) -> None:
    """Write mosquitto.conf, passwords, acl and credentials.json: each device locked to its topics.

    Passwords of devices already in DIR/credentials.json are kept; new devices get new ones.
    """
    tls = None
    if tls_port is not None or tls_cert is not None or tls_key is not None:
        if tls_port is None or tls_cert is None or tls_key is None:
            typer.echo("a TLS listener needs --tls-port, --tls-cert and --tls-key", err=True)
            raise typer.Exit(2)
        tls = TlsListener(tls_port, tls_cert, tls_key, tls_ca)
    try:
        file_owner = FileOwner.of(owner) if owner else default_owner()
        network = load_network(lines_file)
        written = write_broker_config(
            network,
            out,
            dispatcher_user=dispatcher_user,
            observer_user=observer_user,
            processes=processes,
            owner=file_owner,
            broker_dir=broker_dir,
            port=port,
            bind=bind,
            tls=tls,
            run_as=run_as,
        )
    except LinesFileError as exc:
        for problem in exc.problems:
            typer.echo(f"{lines_file}: {problem}", err=True)
        raise typer.Exit(1) from exc
    except BrokerConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(1) from exc
    except PermissionError as exc:
        typer.echo(f"cannot hand the files to {owner!r} ({exc}): run as root", err=True)
        raise typer.Exit(1) from exc
    dispatchers = dispatcher_users(dispatcher_user, processes)
    devices = len(written.accounts) - len(dispatchers) - 1
    named = ", ".join(f"'{user}'" for user in dispatchers)
    typer.echo(
        f"{out}: mosquitto.conf, passwords, acl for {devices} devices, {named} and "
        f"'{observer_user}' (read-only); {len(written.created)} new password(s)"
    )
    readable = "you only (0600)" if file_owner is None else f"uid {file_owner.uid} (0640)"
    typer.echo(f"the broker's files are readable by {readable}")
    typer.echo(
        f"clear passwords for provisioning: {out / CREDENTIALS_FILE} (mode 0600; keep it secret)"
    )
    typer.echo(
        f"dispatcher: CARPOOL_MQTT_URL=mqtt://{dispatcher_user}:<password from "
        f"{CREDENTIALS_FILE}>@<broker host>:{port} CARPOOL_MQTT_CLIENT_ID={dispatcher_user}"
        + (" (each cluster process with its own account and client id)" if processes > 1 else "")
    )
