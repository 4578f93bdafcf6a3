"""Shell: the programs the benchmark starts and stops — Mosquitto, the service, the bare relay."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.network import STOPS_PER_LINE

REPO = Path(__file__).resolve().parents[1]
MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
CARPOOL_LINE = Path(sys.executable).parent / "carpool-line"


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> float:
    """Poll `condition` until it holds; return the instant (perf_counter) it did."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.002)
    return time.perf_counter()


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system, every thread) a process used so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU time this process (the harness, every thread) used so far."""
    times = os.times()
    return times.user + times.system


def rss_kib(pid: int) -> int:
    """Resident memory of a process (VmRSS from /proc), in KiB."""
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1])
    return 0


@dataclass
class Child:
    """A child process with its log file."""

    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """Its process id (it must be running)."""
        assert self.process is not None, f"{self.argv[0]} is not running"
        return self.process.pid

    def spawn(self) -> None:
        """Start it."""
        output = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.argv, env={**os.environ, **self.env}, stdout=output, stderr=output, cwd=REPO
        )
        output.close()

    def alive(self) -> bool:
        """True while it runs; raises if it died on its own."""
        if self.process is None:
            return False
        if self.process.poll() is not None:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.argv[0]} exited {self.process.returncode}: {tail}")
        return True

    def pause(self) -> None:
        """SIGSTOP: it stops reading its socket; the broker queues its messages."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """SIGCONT."""
        os.kill(self.pid, signal.SIGCONT)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.process = None


def mosquitto(directory: Path, port: int) -> Child:
    """A Mosquitto of the benchmark's own on loopback, Nagle off."""
    config = directory / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\n"
        "allow_anonymous true\n"
        "set_tcp_nodelay true\n"
        "persistence false\n"
        "max_queued_messages 1000000\n"
        "max_inflight_messages 100\n"
    )
    return Child([MOSQUITTO, "-c", str(config)], directory / "mosquitto.log")


def start_mosquitto(broker: Child, port: int) -> None:
    """Spawn the broker and wait until it accepts connections."""
    broker.spawn()
    wait_for(lambda: broker.alive() and _listening(port), 10, f"mosquitto on {port}")


def service(
    directory: Path, broker_port: int, lines_file: Path, http_port: int, profile: Path | None
) -> Child:
    """`carpool-line serve` against our broker, SQLite WAL in `directory` (cProfile optional)."""
    env = {
        "CARPOOL_MQTT_URL": f"mqtt://127.0.0.1:{broker_port}",
        "CARPOOL_DATABASE_URL": f"sqlite:///{directory}/bench.sqlite3",
        "CARPOOL_LINES_FILE": str(lines_file),
        "CARPOOL_CACHE_DIR": str(directory / "cache"),
        "CARPOOL_HTTP_PORT": str(http_port),
        "CARPOOL_LOG_FORMAT": "json",
        "CARPOOL_MQTT_CLIENT_ID": f"bench-dispatcher-{broker_port}",
        # The probe presses a few hundred stops up to 2,000 times a second (each terminal far
        # above a real one's rate): the per-device limit is lifted so that it measures the path.
        "CARPOOL_DEVICE_RATE_PER_SECOND": "1000",
        "CARPOOL_DEVICE_BURST": "1000",
    }
    argv = [str(CARPOOL_LINE), "serve"]
    if profile is not None:
        argv = [sys.executable, "-m", "bench.profiled", str(profile), "serve"]
    return Child(argv, directory / "service.log", env)


def cluster_service(
    directory: Path, name: str, broker_port: int, lines_file: Path, database_url: str
) -> tuple[Child, int]:
    """A CARPOOL_CLUSTER process on `database_url` (PostgreSQL), at home in `directory/name`,
    and its HTTP port."""
    home = directory / name
    home.mkdir()
    http_port = free_port()
    child = service(home, broker_port, lines_file, http_port, None)
    child.env.update(
        {
            "CARPOOL_DATABASE_URL": database_url,
            "CARPOOL_CLUSTER": "true",
            "CARPOOL_MQTT_CLIENT_ID": f"bench-{name}-{http_port}",
        }
    )
    return child, http_port


def readiness(http_port: int) -> dict[str, Any] | None:
    """The body of /readyz (200 or 503 both carry it); None while the process does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=1) as answer:
            body: dict[str, Any] = json.load(answer)
    except urllib.error.HTTPError as refused:
        body = json.loads(refused.read() or b"{}")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return body


def service_ready(child: Child, http_port: int) -> bool:
    """True once the service's /readyz answers 200."""
    if not child.alive():
        return False
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=1) as answer:
            return bool(answer.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def relay(directory: Path, broker_port: int, fanout: int) -> Child:
    """The bare aiomqtt echo relay and consumer (`python -m bench.relay`)."""
    argv = [sys.executable, "-m", "bench.relay", str(broker_port), str(fanout)]
    return Child(argv, directory / "relay.log")


def flooder(directory: Path, broker_port: int, line_id: str, sign_id: str) -> Child:
    """One sign flooding its own status (`python -m bench.flooder`)."""
    argv = [sys.executable, "-m", "bench.flooder", str(broker_port), line_id, sign_id]
    return Child(argv, directory / "flooder.log")


def heartbeats(
    directory: Path,
    broker_port: int,
    devices: int,
    period: float,
    fanout: int,
    stops_per_line: int = STOPS_PER_LINE,
) -> Child:
    """The device heartbeat generator (`python -m bench.heartbeats`), for the devices of
    `network.build(devices, fanout, stops_per_line)`."""
    argv = [
        sys.executable,
        "-m",
        "bench.heartbeats",
        str(broker_port),
        str(devices),
        str(period),
        str(fanout),
        str(stops_per_line),
    ]
    return Child(argv, directory / "heartbeats.log")
