"""Shell: failover time of a CARPOOL_CLUSTER pair — SIGKILL one process, time until every sign
of the lines it dispatched was told its display again by the process that took them over.

Two `carpool-line serve` processes share a throwaway PostgreSQL server (the test suite's own,
tests/support/postgres.py) and the bench's Mosquitto; the lines spread over them (each takes
about half). For each failover the harness reads which lines the victim dispatches (/readyz),
kills it, waits until a display arrived after the kill for every sign of those lines, checks
that the other process now dispatches every line, then starts the killed one again (as a
supervisor would) and waits until the lines are shared again before the next kill, the other
process being the next victim.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import threading
import time
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
    """Seconds from each SIGKILL of a process to every sign of its lines re-asserted by the
    other."""

    takeovers: list[float] = field(default_factory=list)
    moved: list[int] = field(default_factory=list)  # lines the killed process held, each time
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


def _owned(http_port: int) -> set[str] | None:
    """The lines a process dispatches, from /readyz; None while it does not answer."""
    body = processes.readiness(http_port)
    lines = body.get("lines_owned") if body is not None else None
    return {str(line) for line in lines} if isinstance(lines, list) else None


@dataclass
class _Node:
    child: processes.Child
    http_port: int


def _node(directory: Path, name: str, broker_port: int, lines: Path, database_url: str) -> _Node:
    return _Node(*processes.cluster_service(directory, name, broker_port, lines, database_url))


def _shared(nodes: list[_Node], lines: set[str]) -> bool:
    """Every line dispatched by exactly one process, and as many processes dispatching some as
    there are lines to go round."""
    held = [_owned(node.http_port) if node.child.alive() else None for node in nodes]
    if any(owned is None for owned in held):
        return False
    seen = [line for owned in held for line in owned or ()]
    busy = sum(1 for owned in held if owned)
    return len(seen) == len(set(seen)) == len(lines) and busy == min(len(nodes), len(lines))


def _holds(node: _Node, lines: set[str]) -> bool:
    return node.child.alive() and _owned(node.http_port) == lines


def _failover(
    victim: _Node, heir: _Node, nodes: list[_Node], displays: _Displays, signs: dict[str, str]
) -> tuple[float, int]:
    """Kill the victim; the seconds until every sign of its lines had a display again, and how
    many lines it held. Then the heir must dispatch every line, and the killed process comes
    back (as its supervisor would start it) and takes its share again."""
    moved = _owned(victim.http_port) or set()
    topics = [topic for topic, line in signs.items() if line in moved]
    killed_at = time.perf_counter()
    os.kill(victim.child.pid, signal.SIGKILL)
    done_at = processes.wait_for(
        lambda: displays.all_since(topics, killed_at), 60, "every moved sign re-asserted"
    )
    assert victim.child.process is not None
    victim.child.process.wait(10)
    victim.child.process = None
    every_line = set(signs.values())
    processes.wait_for(lambda: _holds(heir, every_line), 30, "the heir holding every line")
    victim.child.spawn()
    processes.wait_for(lambda: _shared(nodes, every_line), 60, "the lines shared again")
    return done_at - killed_at, len(moved)


def measure(devices: int, signs_per_stop: int, failovers: int, say: Say) -> FailoverResult:
    """Start PostgreSQL, a broker and two cluster processes; kill one `failovers` times, each
    in turn."""
    result = FailoverResult()
    if failovers <= 0:
        return result
    net = network.build(devices, signs_per_stop)
    signs = {
        f"carpool/v1/{stop.line_id}/signs/{sign}/display": stop.line_id
        for stop in net.stops
        for sign in stop.sign_ids
    }
    result.signs = len(signs)
    every_line = set(signs.values())
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
            processes.wait_for(lambda: _holds(nodes[0], every_line), 60, "the first process")
            nodes[1].child.spawn()
            processes.wait_for(lambda: _shared(nodes, every_line), 60, "the lines shared")
            say(f"  failover: {len(signs)} signs, {len(every_line)} lines over two processes")
            for number in range(1, failovers + 1):
                victim, heir = (nodes[0], nodes[1]) if number % 2 else (nodes[1], nodes[0])
                if not _owned(victim.http_port):  # fewer lines than processes: kill a holder
                    victim, heir = heir, victim
                took, moved = _failover(victim, heir, nodes, displays, signs)
                result.takeovers.append(took)
                result.moved.append(moved)
                say(f"  failover {number}/{failovers}: {took:.2f} s ({moved} lines moved)")
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
    moved = round(median([float(n) for n in result.moved])) if result.moved else 0
    where = f"{count} SIGKILL(s), ~{moved} line(s) moved each, {result.signs} signs in all"
    return [
        Row(
            f"failover: kill → every sign of its lines re-asserted, median ({where})",
            result.median,
            None,
            "s",
            "≤ 5 s",
            result.median <= FAILOVER_TARGET_SECONDS,
        ),
        Row(
            "failover: kill → its signs re-asserted, max",
            result.max,
            None,
            "s",
            "",
            None,
        ),
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
