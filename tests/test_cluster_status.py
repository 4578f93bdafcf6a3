"""`carpool-line cluster status` as an operator runs it, against two real `serve` processes on
PostgreSQL: who is connected, who owns each line, and clear refusals where it cannot tell."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.brokers import free_port
from tests.support.faults import eventually
from tests.support.service import LINE, write_lines_file
from tests.test_cli import run
from tests.test_cluster import Pair, owns_the_line, pair  # noqa: F401 - the fixture, shared


def status(database_url: str, lines: Path, *flags: str, **env: str) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `carpool-line cluster status`."""
    env = {"CARPOOL_DATABASE_URL": database_url, "CARPOOL_LINES_FILE": str(lines), **env}
    result = run("cluster", "status", *flags, env=env)
    return result.returncode, result.stdout, result.stderr


def node(process_port: int) -> str:
    """The node name a test process runs as (its MQTT client id)."""
    return f"dispatcher-{process_port}"


def as_json(cluster: Pair) -> dict[str, Any]:
    code, out, err = status(cluster.database_url, cluster.first.lines_file, "--json")
    assert code == 0, err
    body: dict[str, Any] = json.loads(out)
    return body


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_status_lists_both_processes_and_the_owner_then_the_heir_after_a_kill(
    pair: Pair,  # noqa: F811
) -> None:
    first, second = node(pair.first.http_port), node(pair.second.http_port)
    body = await asyncio.to_thread(as_json, pair)
    processes = {process["node"]: process for process in body["processes"]}
    assert set(processes) == {first, second}
    assert processes[first]["role"] == "owner"
    assert processes[first]["lines"] == [LINE]
    assert processes[second]["role"] == "standby"
    assert processes[second]["lines"] == []
    assert {process["client_address"] for process in processes.values()} == {"127.0.0.1"}
    assert all(process["since"] for process in processes.values())
    assert body["lines"] == [{"line": LINE, "owner": first}]

    code, table, _ = await asyncio.to_thread(status, pair.database_url, pair.first.lines_file)
    assert code == 0
    assert "2 process(es)" in table
    assert f"{LINE}\t{first}" in table

    await asyncio.to_thread(pair.first.kill)
    await eventually(lambda: asyncio.to_thread(owns_the_line, pair.second), 10, "new owner")
    body = await asyncio.to_thread(as_json, pair)
    assert [process["node"] for process in body["processes"]] == [second]
    assert body["lines"] == [{"line": LINE, "owner": second}]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_line_nobody_owns_says_no_owner(database_url: str, tmp_path: Path) -> None:
    code, table, err = status(database_url, write_lines_file(tmp_path))
    assert code == 0, err
    assert "0 process(es)" in table
    assert f"{LINE}\tno owner" in table


def test_sqlite_and_an_unreachable_server_are_one_clear_sentence(tmp_path: Path) -> None:
    lines = write_lines_file(tmp_path)
    code, out, err = status(f"sqlite:///{tmp_path}/carpool.sqlite3", lines)
    assert code == 2
    assert out == ""
    assert err.strip().splitlines() == [
        "the cluster lives in PostgreSQL: CARPOOL_DATABASE_URL must be a postgresql:// URL "
        "(it is sqlite:…)"
    ]
    nobody = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    code, out, err = status(nobody, lines)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("cannot read the cluster from PostgreSQL: connection failed")
    assert "Traceback" not in err


def test_a_missing_lines_file_or_a_refused_setting_is_one_clear_sentence(tmp_path: Path) -> None:
    nobody = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    code, _, err = status(nobody, tmp_path / "nowhere.yaml")
    assert code == 2
    assert err.strip().splitlines() == [
        f"{tmp_path / 'nowhere.yaml'}: (file): cannot read the file: No such file or directory"
    ]
    sqlite = f"sqlite:///{tmp_path}/carpool.sqlite3"
    code, _, err = status(sqlite, write_lines_file(tmp_path), CARPOOL_CLUSTER="true")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("settings refused: ")
    assert "needs a PostgreSQL CARPOOL_DATABASE_URL" in err
