"""Test support: the real service as a child process, driven from outside like production."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.brokers import free_port
from tests.support.waiting import wait_until

REPO = Path(__file__).resolve().parents[2]
CARPOOL_LINE = Path(sys.executable).parent / "carpool-line"
LINE = "calais-dunkerque"


def write_lines_file(directory: Path, always_open: bool = True, **tuning: Any) -> Path:
    """The shipped lines.yaml, open at all hours by default (tests run at any time)."""
    data = yaml.safe_load((REPO / "config" / "lines.yaml").read_text())
    for line in data["lines"]:
        if always_open:
            line.pop("service_hours", None)
        if tuning:
            line["tuning"] = {**line.get("tuning", {}), **tuning}
    path = directory / "lines.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


@dataclass
class ServiceProcess:
    """`carpool-line serve` with its own port, database and log file."""

    broker_url: str
    database_url: str
    lines_file: Path
    directory: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    serve_args: tuple[str, ...] = ()
    http_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def base_url(self) -> str:
        """Where its HTTP API answers."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log_path(self) -> Path:
        """Its combined output."""
        return self.directory / "service.log"

    def log(self) -> str:
        """Everything it printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def start(self, wait_ready: bool = True) -> None:
        """Start it and wait until /readyz answers 200."""
        env = {
            **os.environ,
            "CARPOOL_MQTT_URL": self.broker_url,
            "CARPOOL_DATABASE_URL": self.database_url,
            "CARPOOL_LINES_FILE": str(self.lines_file),
            "CARPOOL_CACHE_DIR": str(self.directory / "cache"),
            "CARPOOL_HTTP_PORT": str(self.http_port),
            "CARPOOL_LOG_FORMAT": "json",
            "CARPOOL_MQTT_CLIENT_ID": f"dispatcher-{self.http_port}",
            **self.extra_env,
        }
        output = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [str(CARPOOL_LINE), "serve", *self.serve_args],
            env=env,
            stdout=output,
            stderr=output,
            cwd=REPO,
        )
        self.starts += 1
        if wait_ready:
            wait_until(self.ready, 30, f"service ready (log: {self.log()[-2000:]})", poll=0.05)

    def ready(self) -> bool:
        """True when /readyz answers 200."""
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"service exited {self.process.returncode}: {self.log()[-3000:]}")
        try:
            return httpx.get(f"{self.base_url}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: no cleanup, no last words (but the broker publishes its will)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        """SIGTERM and wait for a clean exit."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        self.process = None


@contextlib.contextmanager
def serving(
    broker_url: str,
    directory: Path,
    database_url: str | None = None,
    extra_env: dict[str, str] | None = None,
) -> Iterator[ServiceProcess]:
    """The service running (open at all hours) until the block ends."""
    process = ServiceProcess(
        broker_url=broker_url,
        database_url=database_url or f"sqlite:///{directory}/carpool.sqlite3",
        lines_file=write_lines_file(directory),
        directory=directory,
        extra_env=extra_env or {},
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()
