"""The command line as an operator uses it: check a lines file, refuse to serve a broken one."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from tests.support.service import CARPOOL_LINE, REPO


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CARPOOL_LINE), *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_check_config_accepts_the_shipped_line() -> None:
    result = run("check-config", "config/lines.yaml")
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert "1 line(s)" in result.stdout


def test_check_config_names_the_path_of_each_problem(tmp_path: Path) -> None:
    broken = (REPO / "config" / "lines.yaml").read_text().replace("code: MRK", "code: CAL", 1)
    path = tmp_path / "lines.yaml"
    path.write_text(broken)
    result = run("check-config", str(path))
    assert result.returncode == 1
    assert "lines[0].directions[0].stops[1].code" in result.stderr


def test_check_config_checks_the_corridors_file_too(tmp_path: Path) -> None:
    result = run("check-config", "config/corridors.yaml")
    assert result.returncode == 0, result.stderr
    assert "corridors file" in result.stdout

    shipped = (REPO / "config" / "corridors.yaml").read_text()
    broken = shipped.replace("km: 0", "km: -3", 1)
    assert broken != shipped
    path = tmp_path / "corridors.yaml"
    path.write_text(broken)
    result = run("check-config", str(path))
    assert result.returncode == 1
    assert "corridors[0].stops[0].km" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_serve_refuses_to_start_on_a_broken_lines_file(tmp_path: Path) -> None:
    path = tmp_path / "lines.yaml"
    path.write_text("lines:\n  - id: Not A Slug\n")
    result = run("serve", env={"CARPOOL_LINES_FILE": str(path), "CARPOOL_HTTP_PORT": "0"})
    assert result.returncode == 2
    assert "lines[0].id" in result.stderr
    assert "refusing to start" in result.stderr


def test_check_config_on_a_missing_file_says_so(tmp_path: Path) -> None:
    result = run("check-config", str(tmp_path / "absent.yaml"))
    assert result.returncode == 1
    assert "absent.yaml" in result.stderr


def test_serve_says_which_port_is_taken_instead_of_crashing(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        taken = holder.getsockname()[1]
        result = run(
            "serve",
            env={
                "CARPOOL_HTTP_PORT": str(taken),
                "CARPOOL_DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite3",
            },
        )
    assert result.returncode == 2
    assert f"127.0.0.1:{taken} is already in use" in result.stderr
    assert "CARPOOL_HTTP_PORT" in result.stderr
    assert "Traceback" not in result.stderr
