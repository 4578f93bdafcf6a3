"""A database that stops accepting writes: /readyz says so (503), the log says so once, and a
fatal signal leaves a line instead of a silent death."""

from __future__ import annotations

import contextlib
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from line_service.storage.store import Store
from tests.support.brokers import Mosquitto
from tests.support.service import ServiceProcess, serving
from tests.support.waiting import wait_until


def test_a_database_that_answers_but_refuses_writes_is_told_apart(
    database_url: str, tmp_path: Path
) -> None:
    store = Store(database_url)
    store.create_schema()
    assert store.write_problem() is None
    if database_url.startswith("sqlite"):
        read_only = f"sqlite:///file:{tmp_path}/carpool.sqlite3?mode=ro&uri=true"
    else:
        read_only = f"{database_url}%20-cdefault_transaction_read_only%3Don"
    refusing = Store(read_only)
    assert refusing.ping()  # reads work: the old check said "ready"
    problem = refusing.write_problem()
    assert problem is not None
    assert "read" in problem.lower()
    refusing.dispose()
    store.dispose()


@contextlib.contextmanager
def small_disk(path: Path, size: str = "8m") -> Iterator[Path]:
    """A tmpfs of its own (root in a container with CAP_SYS_ADMIN), to fill up."""
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode()[:200]}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def readiness(service: ServiceProcess) -> tuple[int, dict[str, bool]]:
    answer = httpx.get(f"{service.base_url}/readyz", timeout=10)
    return answer.status_code, answer.json()


def test_a_full_disk_turns_readyz_503_with_one_error_line_and_back(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "disk") as disk:
        database = f"sqlite:///{disk}/carpool.sqlite3"
        with serving(mosquitto.url, tmp_path, database) as service:
            assert readiness(service) == (200, {"broker": True, "database": True})
            filler = disk / "filler"
            subprocess.run(
                ["dd", "if=/dev/zero", f"of={filler}", "bs=64k"], capture_output=True, check=False
            )
            for _ in range(3):
                assert readiness(service) == (503, {"broker": True, "database": False})
            log = service.log()
            assert log.count('"storage.unwritable"') == 1, log[-2000:]
            assert "disk is full" in log
            filler.unlink()
            wait_until(lambda: readiness(service)[0] == 200, 10, "ready once the disk has room")
            assert '"storage.writable_again"' in service.log()
            assert "Traceback" not in service.log()


def test_a_fatal_signal_is_written_to_the_log(mosquitto: Mosquitto, tmp_path: Path) -> None:
    with serving(mosquitto.url, tmp_path) as service:
        assert service.process is not None
        service.process.send_signal(signal.SIGBUS)
        service.process.wait(10)
        service.process = None
        assert "Fatal Python error: Bus error" in service.log()
