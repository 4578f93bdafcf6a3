"""Shell: failover time of a CARPOOL_CLUSTER pair — SIGKILL the owner, time until every sign of
the network was told its display again by the process that took over.

Two `carpool-line serve` processes share a throwaway PostgreSQL server (the test suite's own,
tests/support/postgres.py) and the bench's Mosquitto. For each failover the harness finds the
owner (/readyz 200, role `owner`), kills it, waits until a display arrived for every sign after
the kill, checks that the other process now owns the lines, and starts the killed one again (as
a supervisor would) and waits until it stands by before the next kill.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from bench import mqtt_client, network, processes
from bench.report import Row, table
from bench.scenarios import Say, median
from tests.support.postgres import ThrowawayPostgres  # the suite's own throwaway server

DISPLAYS = "carpool/v1/+/signs/+/display"
FAILOVER_TARGET_SECONDS = 5.0  # the takeover bound of tests/test_cluster.py


@dataclass
class FailoverResult:
    """Seconds from each SIGKILL of the owner to every sign re-asserted by the new owner."""

    takeovers: list[float] = field(default_factory=list)
    signs: int = 0

    @property
    def median(self) -> float:
        """Median takeover (NaN without any)."""
        return median(self.takeovers) if self.takeovers else float("nan")

    @property
    def max(self) -> float:
        """Slowest takeover (NaN without any)."""
        return max(self.takeovers) if self.takeovers else float("nan")


class _Displays:
    """When each sign last received a display (perf_counter), from a broker subscription."""

    def __init__(self, port: int) -> None:
        self._lock = threading.Lock()
        self.last: dict[str, float] = {}
        self._client = mqtt_client.connect(port, f"bench-failover-{port}", self._on_message)
        self._client.subscribe(DISPLAYS, qos=1)

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.last[message.topic] = time.perf_counter()

    def all_since(self, topics: list[str], instant: float) -> bool:
        """True once every topic had a display after `instant`."""
        with self._lock:
            return all(self.last.get(topic, -1.0) > instant for topic in topics)

    def close(self) -> None:
        mqtt_client.close(self._client)


def _role(http_port: int) -> str | None:
    """`owner` or `standby` from /readyz (200 or 503 both carry it); None while not answering."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/readyz", timeout=1) as answer:
            body: dict[str, Any] = json.load(answer)
    except urllib.error.HTTPError as refused:
        body = json.loads(refused.read() or b"{}")
    except (urllib.error.URLError, OSError, ValueError):
        return None
    role = body.get("role")
    return str(role) if role is not None else None


@dataclass
class _Node:
    child: processes.Child
    http_port: int


def _node(directory: Path, name: str, broker_port: int, lines: Path, database_url: str) -> _Node:
    home = directory / name
    home.mkdir()
    http_port = processes.free_port()
    child = processes.service(home, broker_port, lines, http_port, None)
    child.env.update(
        {
            "CARPOOL_DATABASE_URL": database_url,
            "CARPOOL_CLUSTER": "true",
            "CARPOOL_MQTT_CLIENT_ID": f"bench-{name}-{http_port}",
        }
    )
    return _Node(child, http_port)


def _in_role(node: _Node, role: str) -> bool:
    return node.child.alive() and _role(node.http_port) == role


def _failover(owner: _Node, heir: _Node, displays: _Displays, sign_topics: list[str]) -> float:
    """Kill the owner; the seconds until every sign had a display again. Then the heir must
    answer as the owner, and the killed process comes back (as its supervisor would start it)
    and stands by."""
    killed_at = time.perf_counter()
    os.kill(owner.child.pid, signal.SIGKILL)
    done_at = processes.wait_for(
        lambda: displays.all_since(sign_topics, killed_at), 60, "every sign re-asserted"
    )
    assert owner.child.process is not None
    owner.child.process.wait(10)
    owner.child.process = None
    processes.wait_for(lambda: _in_role(heir, "owner"), 30, "the new owner's /readyz")
    owner.child.spawn()
    processes.wait_for(lambda: _in_role(owner, "standby"), 60, "the killed one back as standby")
    return done_at - killed_at


def measure(devices: int, signs_per_stop: int, failovers: int, say: Say) -> FailoverResult:
    """Start PostgreSQL, a broker and two cluster processes; kill the owner `failovers` times."""
    result = FailoverResult()
    if failovers <= 0:
        return result
    net = network.build(devices, signs_per_stop)
    sign_topics = [
        f"carpool/v1/{stop.line_id}/signs/{sign}/display"
        for stop in net.stops
        for sign in stop.sign_ids
    ]
    result.signs = len(sign_topics)
    database = ThrowawayPostgres()
    with tempfile.TemporaryDirectory(prefix="carpool-bench-failover-") as tmp:
        directory = Path(tmp)
        port = processes.free_port()
        lines = network.write_lines_file(net, directory / "lines.yaml")
        broker = processes.mosquitto(directory, port)
        nodes: list[_Node] = []
        displays: _Displays | None = None
        try:
            database.start()
            nodes = [_node(directory, name, port, lines, database.url) for name in ("a", "b")]
            processes.start_mosquitto(broker, port)
            displays = _Displays(port)
            nodes[0].child.spawn()
            processes.wait_for(lambda: _in_role(nodes[0], "owner"), 60, "the first owner")
            nodes[1].child.spawn()
            processes.wait_for(lambda: _in_role(nodes[1], "standby"), 60, "the standby")
            say(f"  failover: {len(sign_topics)} signs, two processes on PostgreSQL")
            for number in range(1, failovers + 1):
                owner, heir = (nodes[0], nodes[1]) if _in_role(nodes[0], "owner") else nodes[::-1]
                result.takeovers.append(_failover(owner, heir, displays, sign_topics))
                say(f"  failover {number}/{failovers}: {result.takeovers[-1]:.2f} s")
        finally:
            for node in nodes:
                node.child.stop()
            if displays is not None:
                displays.close()
            broker.stop()
            database.stop()
    return result


def rows(result: FailoverResult) -> list[Row]:
    """The failover rows of the results table (none when the measure was skipped)."""
    if not result.takeovers:
        return []
    count = len(result.takeovers)
    where = f"{count} SIGKILL(s), {result.signs} signs"
    return [
        Row(
            f"failover: kill → every sign re-asserted, median ({where})",
            result.median,
            None,
            "s",
            "≤ 5 s",
            result.median <= FAILOVER_TARGET_SECONDS,
        ),
        Row("failover: kill → every sign re-asserted, max", result.max, None, "s", "", None),
    ]


def main(argv: list[str]) -> FailoverResult:
    """`python -m bench.failover`: this measure alone, printed (BENCHMARKS.md is not written)."""
    parser = argparse.ArgumentParser(prog="python -m bench.failover", description=__doc__)
    parser.add_argument("--devices", type=int, default=5000, help="network size (default 5000)")
    parser.add_argument("--failovers", type=int, default=5, help="owner kills (default 5)")
    args = parser.parse_args(argv)
    result = measure(args.devices, 2, args.failovers, Say(False))
    print(table(rows(result)))
    print("takeovers (s): " + ", ".join(f"{took:.2f}" for took in result.takeovers))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
