"""Shell: `carpool-line cluster status` — the processes of a CARPOOL_CLUSTER service and the
owner of each line, as PostgreSQL sees them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from line_service.network.lines_file import LinesFileError, load_network
from line_service.settings import Settings

if TYPE_CHECKING:  # psycopg is imported by the command alone, not by every start of the CLI
    from line_service.cluster.status import ClusterStatus

cluster_app = typer.Typer(
    help="Many processes on one PostgreSQL (CARPOOL_CLUSTER): who runs, who owns each line.",
    no_args_is_help=True,
)

NO_OWNER = "no owner"


def _table(status: ClusterStatus) -> list[str]:
    rows = [f"{len(status.processes)} process(es)"]
    for process in status.processes:
        where = process.client_address or "local socket"
        since = process.since.isoformat(timespec="seconds")
        rows.append(
            f"  {process.node}\t{process.role}\tfrom {where}\tsince {since}\t{process.state}"
        )
    rows.append("lines")
    for line, owner in status.owners.items():
        rows.append(f"  {line}\t{owner or NO_OWNER}")
    return rows


@cluster_app.command("status")
def status_command(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """List the service's processes (node, client address, since when, session state) and each
    line's owner, from CARPOOL_DATABASE_URL and CARPOOL_LINES_FILE; exit 2 when they cannot be
    read. A line with no owner has no dispatcher now."""
    from line_service.cluster.status import ClusterUnreadableError, read_status

    try:
        settings = Settings()
    except ValidationError as exc:
        typer.echo(f"settings refused: {exc.errors()[0]['msg']}", err=True)
        raise typer.Exit(2) from exc
    try:
        network = load_network(settings.lines_file)
    except LinesFileError as exc:
        typer.echo(f"{settings.lines_file}: {exc.problems[0]}", err=True)
        raise typer.Exit(2) from exc
    try:
        status = read_status(settings.database_url, [line.id for line in network.lines])
    except ClusterUnreadableError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from exc
    if as_json:
        typer.echo(json.dumps(status.as_json(), indent=2))
        return
    for row in _table(status):
        typer.echo(row)
