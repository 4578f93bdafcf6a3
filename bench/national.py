"""Shell: the national scenario of issue #15 — ~100 lines, ~10,000 devices heartbeating, the
lines spread over two `carpool-line serve` processes (CARPOOL_CLUSTER) on one PostgreSQL and one
Mosquitto; measured against the bare relay in the same run, then against one process.

The harness starts a throwaway PostgreSQL (the test suite's tests/support/postgres.py), the
bench's own Mosquitto, the bare relay, two cluster processes and the heartbeats of every
device, and waits until every line has an owner and ownership stopped moving. With two
processes: press→sign at `rate` presses a second for the service and for the relay, then the
sustained-rate climb of bench/scenarios.py (same steps, same definition of "held"). With one:
the process owning fewer lines is stopped (SIGTERM), the other one owns every line, and the
climb runs again — same network, same heartbeats. `runs` rounds, every other one starting with
one process (the stopped one started again, as its supervisor would); medians are reported.
While both run each process's /readyz is read every second: the lines it owned are reported,
whatever the service's way of spreading them (one owner of every line, or each its share).

Presses go round the stops of every line in turn (stop 0 of each line, then stop 1 …), so even
a short phase reaches every line and so every process.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench import network, processes
from bench.network import BenchNetwork
from bench.probe import RELAY, SERVICE, Probe
from bench.scenarios import Clocks, Latency, Options, Say, Step, climb
from tests.support.postgres import ThrowawayPostgres  # the suite's own throwaway server

LINES = 100
DEVICES = 10_000
QUICK_LINES = 10
QUICK_DEVICES = 500
TWO = "2 processes"
ONE = "1 process"
NODES = ("a", "b")
SAMPLE_SECONDS = 1.0  # /readyz of each process read this often while both run
SETTLED_SECONDS = 5.0  # ownership unchanged this long (5 lock retries) counts as settled
QUICK_SETTLED_SECONDS = 2.0
CRASH_LOOP = 3  # exits of one process while waiting for the lines to settle: give up


@dataclass
class NationalResult:
    """Every figure of one national run."""

    lines: int = 0
    devices: int = 0
    rounds: int = 0
    latency: dict[str, list[Latency]] = field(default_factory=dict)  # service (2 processes),
    # and the relay: one a round
    sustained: dict[str, list[float]] = field(default_factory=dict)  # TWO, ONE: one a round
    steps: dict[str, list[Step]] = field(default_factory=dict)  # TWO, ONE: the last round's
    owned: dict[str, list[int]] = field(default_factory=dict)  # node → lines, each sample
    exits: dict[str, list[int]] = field(default_factory=dict)  # node → exit codes, restarted
    unowned_samples: int = 0  # samples in which some line had no owner
    shared_samples: int = 0  # … in which some line was claimed by both


def national_network(lines: int, devices: int, signs_per_stop: int) -> tuple[BenchNetwork, int]:
    """`lines` lines of the same number of stops, about `devices` devices in all; and the stops
    a line (what the heartbeat generator needs to build the same network)."""
    per_line = max(1, round(devices / lines / (1 + signs_per_stop)))
    built = network.build(lines * per_line * (1 + signs_per_stop), signs_per_stop, per_line)
    return built, per_line


def spread(net: BenchNetwork, per_line: int) -> BenchNetwork:
    """The same stops, stop 0 of every line first, then stop 1 …: the probe presses in order."""
    order = sorted(range(len(net.stops)), key=lambda index: divmod(index, per_line)[::-1])
    return BenchNetwork(tuple(net.stops[index] for index in order), net.signs_per_stop)


@dataclass
class _Node:
    """One cluster process, started again whenever it exits while wanted (as systemd's
    `Restart=always` would, docs/OPERATIONS.md: a node that loses its lines exits 75 on purpose)."""

    name: str
    child: processes.Child
    http_port: int
    wanted: bool = False
    exits: list[int] = field(default_factory=list)  # exit codes of the restarts
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        """Spawn it; from now on it is restarted if it exits."""
        with self.lock:
            self.child.spawn()
            self.wanted = True

    def stop(self) -> None:
        """SIGTERM (SIGKILL after 15 s); not restarted."""
        with self.lock:
            self.wanted = False
            self.child.stop()

    def supervise(self) -> int | None:
        """Restart it if it exited while wanted; the exit code then."""
        with self.lock:
            process = self.child.process
            if not self.wanted or process is None or process.poll() is None:
                return None
            self.exits.append(process.returncode)
            self.child.process = None
            self.child.spawn()
            return process.returncode

    @property
    def pid(self) -> int:
        """Its process id now."""
        return self.child.pid

    def answers(self) -> bool:
        """True once its /readyz says its role."""
        return self.owned() is not None

    def owned(self) -> frozenset[str] | None:
        """The lines it dispatches (its /readyz), None while it does not answer."""
        process = self.child.process
        if process is None or process.poll() is not None:
            return None
        body = processes.readiness(self.http_port)
        if body is None or "role" not in body:
            return None
        return frozenset(body.get("lines_owned") or ())


class _Background:
    """`tick` every `every` seconds in a daemon thread, from `start` until `stop`."""

    def __init__(self, name: str, every: float, tick: Callable[[], None]) -> None:
        self._every = every
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            self._tick()


class _Supervisor(_Background):
    """Restarts the wanted processes that exit, every 0.2 s, in a thread, until stopped."""

    def __init__(self, nodes: list[_Node], say: Say) -> None:
        super().__init__("supervisor", 0.2, self._restart_exited)
        self._nodes = nodes
        self._say = say

    def _restart_exited(self) -> None:
        for node in self._nodes:
            code = node.supervise()
            if code is not None:
                log = node.child.log_path
                self._say(f"  national: process {node.name} exited {code}, restarted ({log})")


def _node(directory: Path, name: str, broker_port: int, lines: Path, database_url: str) -> _Node:
    child, http_port = processes.cluster_service(
        directory, f"national-{name}", broker_port, lines, database_url
    )
    return _Node(name, child, http_port)


def _ownership(nodes: list[_Node]) -> dict[str, frozenset[str]] | None:
    """Each node's lines, None unless every node answers."""
    found: dict[str, frozenset[str]] = {}
    for node in nodes:
        lines = node.owned()
        if lines is None:
            return None
        found[node.name] = lines
    return found


def _settle(nodes: list[_Node], all_lines: frozenset[str], quiet: float) -> dict[str, int]:
    """Wait until every line has an owner and nothing moved for `quiet` seconds (not for a
    process that keeps exiting: after CRASH_LOOP exits, the error carries its log's end)."""
    last: dict[str, frozenset[str]] | None = None
    since = time.monotonic()
    deadline = since + 120
    exits_before = {node.name: len(node.exits) for node in nodes}
    while True:
        now = _ownership(nodes)
        covered = now is not None and frozenset().union(*now.values()) == all_lines
        if now != last:
            last, since = now, time.monotonic()
        elif covered and now is not None and time.monotonic() - since >= quiet:
            return {name: len(lines) for name, lines in now.items()}
        for node in nodes:
            if len(node.exits) - exits_before[node.name] >= CRASH_LOOP:
                tail = node.child.log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(
                    f"process {node.name} exited {CRASH_LOOP} times before the lines settled "
                    f"(codes {node.exits}); the end of its log:\n{tail}"
                )
        if time.monotonic() > deadline:
            raise TimeoutError(f"ownership of the {len(all_lines)} lines never settled: {last}")
        time.sleep(0.2)


class _Sampler(_Background):
    """Reads every node's /readyz each SAMPLE_SECONDS in a thread, until stopped."""

    def __init__(self, nodes: list[_Node], all_lines: frozenset[str], result: NationalResult):
        super().__init__("readyz-sampler", SAMPLE_SECONDS, self._sample)
        self._nodes = nodes
        self._all = all_lines
        self._result = result

    def _sample(self) -> None:
        now = _ownership(self._nodes)
        if now is None:
            return
        for name, lines in now.items():
            self._result.owned.setdefault(name, []).append(len(lines))
        claimed = [line for lines in now.values() for line in lines]
        if set(claimed) != self._all:
            self._result.unowned_samples += 1
        if len(claimed) != len(set(claimed)):
            self._result.shared_samples += 1


def measure(
    options: Options, lines: int, devices: int, say: Say, settled: float = SETTLED_SECONDS
) -> NationalResult:
    """Start PostgreSQL, a broker, the relay, two cluster processes and every device's
    heartbeats; measure with two processes and with one, `options.runs` rounds; stop them all."""
    result = NationalResult()
    if lines <= 0:
        return result
    built, per_line = national_network(lines, devices, options.signs_per_stop)
    net = spread(built, per_line)
    all_lines = frozenset(stop.line_id for stop in net.stops)
    result.lines, result.devices = len(all_lines), net.devices
    database = ThrowawayPostgres()
    with tempfile.TemporaryDirectory(prefix="carpool-bench-national-") as tmp:
        directory = Path(tmp)
        port = processes.free_port()
        lines_file = network.write_lines_file(built, directory / "lines.yaml")
        broker = processes.mosquitto(directory, port)
        relay = processes.relay(directory, port, options.signs_per_stop)
        heartbeats = processes.heartbeats(
            directory, port, net.devices, options.heartbeat_period, options.signs_per_stop, per_line
        )
        nodes: list[_Node] = []
        probe: Probe | None = None
        supervisor: _Supervisor | None = None
        try:
            database.start()
            nodes = [_node(directory, name, port, lines_file, database.url) for name in NODES]
            processes.start_mosquitto(broker, port)
            probe = Probe(port, net)
            relay.spawn()
            processes.wait_for(probe.relay_ready.is_set, 30, "the bare relay")
            supervisor = _Supervisor(nodes, say)
            supervisor.start()
            for node in nodes:  # one after the other: the first one makes the schema
                node.start()
                processes.wait_for(node.answers, 90, f"process {node.name}")
            heartbeats.spawn()
            say(f"  national: {net.devices} devices, {len(all_lines)} lines, 2 processes")
            cluster = _Cluster(nodes, all_lines, settled, say)
            for number in range(options.runs):
                # Every other round starts with one process: neither count always comes second,
                # on a database grown by the other's presses.
                for count in (TWO, ONE) if number % 2 == 0 else (ONE, TWO):
                    say(f"  national: round {number + 1}/{options.runs}, {count}")
                    if count == TWO:
                        cluster.both()
                        _two_processes(probe, cluster, broker, heartbeats, options, result, say)
                    else:
                        kept = cluster.one()
                        probe.run_rate(SERVICE, options.rate, 1.0)
                        clocks = Clocks((kept.pid,), broker.pid, heartbeats.pid)
                        best, result.steps[ONE] = _climb(probe, options, nodes, clocks, say, ONE)
                        result.sustained.setdefault(ONE, []).append(best)
            result.rounds = options.runs
        finally:
            if supervisor is not None:
                supervisor.stop()
            result.exits = {node.name: node.exits for node in nodes}
            for node in nodes:
                node.stop()
            for child in (heartbeats, relay):
                child.stop()
            if probe is not None:
                probe.close()
            broker.stop()
            database.stop()
    return result


class _Cluster:
    """The two processes, both running or one of them stopped."""

    def __init__(self, nodes: list[_Node], all_lines: frozenset[str], settled: float, say: Say):
        self.nodes = nodes
        self.all_lines = all_lines
        self.settled = settled
        self.say = say
        self.stopped: _Node | None = None

    def both(self) -> None:
        """Start the stopped one again (as its supervisor would); return once every line has an
        owner and ownership has not moved for `settled` seconds."""
        if self.stopped is not None:
            self.stopped.start()
            processes.wait_for(self.stopped.answers, 90, f"process {self.stopped.name}")
            self.stopped = None
        counts = _settle(self.nodes, self.all_lines, self.settled)
        self.say(f"  national: lines owned {_owned_text(counts)}")

    def one(self) -> _Node:
        """Stop (SIGTERM) the process owning fewer lines; return the other once it owns every
        line."""
        if self.stopped is None:
            counts = {node.name: len(node.owned() or ()) for node in self.nodes}
            self.stopped = min(reversed(self.nodes), key=lambda node: counts[node.name])
            self.stopped.stop()
        kept = next(node for node in self.nodes if node is not self.stopped)
        processes.wait_for(
            lambda: kept.owned() == self.all_lines, 60, f"process {kept.name} owning every line"
        )
        self.say(f"  national: {self.stopped.name} stopped, {kept.name} owns every line")
        return kept


def _two_processes(
    probe: Probe,
    cluster: _Cluster,
    broker: processes.Child,
    heartbeats: processes.Child,
    options: Options,
    result: NationalResult,
    say: Say,
) -> None:
    """Press→sign of the service and the relay, then the climb, with both processes; /readyz
    of each read meanwhile."""
    sampler = _Sampler(cluster.nodes, cluster.all_lines, result)
    sampler.start()
    try:
        for target in (RELAY, SERVICE):
            probe.run_rate(target, options.rate, 1.0)
        for target in (RELAY, SERVICE):
            phase = probe.run_rate(target, options.rate, options.seconds)
            result.latency.setdefault(target.name, []).append(Latency.of(phase))
            say(f"  national latency {target.name}: {result.latency[target.name][-1]}")
        clocks = Clocks(tuple(node.pid for node in cluster.nodes), broker.pid, heartbeats.pid)
        best, result.steps[TWO] = _climb(probe, options, cluster.nodes, clocks, say, TWO)
        result.sustained.setdefault(TWO, []).append(best)
    finally:
        sampler.stop()
    say(f"  national: lines owned while both ran {_samples_text(result)}")


def _climb(
    probe: Probe, options: Options, nodes: list[_Node], clocks: Clocks, say: Say, count: str
) -> tuple[float, list[Step]]:
    """The climb of bench/scenarios.py; NaN if a process exited meanwhile (its CPU time and its
    presses are another process's then)."""
    exits = sum(len(node.exits) for node in nodes)
    try:
        best, steps = climb(probe, SERVICE, options, clocks, say, f"national, {count}")
    except FileNotFoundError:  # /proc/PID of a process restarted during a step
        best, steps = float("nan"), []
    if sum(len(node.exits) for node in nodes) != exits:
        say(f"  national, {count}: a process exited during the climb; not counted")
        return float("nan"), steps
    return best, steps


def _owned_text(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}: {count}" for name, count in counts.items())


def owned_range(samples: list[int]) -> tuple[int, int, float]:
    """Fewest, most and median lines of a node's samples (NaN median without any)."""
    if not samples:
        return 0, 0, float("nan")
    return min(samples), max(samples), statistics.median(samples)


def _samples_text(result: NationalResult) -> str:
    parts = []
    for name, samples in result.owned.items():
        low, high, _ = owned_range(samples)
        parts.append(f"{name}: {low}–{high}")
    return (
        f"{', '.join(parts)} over {max(map(len, result.owned.values()), default=0)} samples "
        f"({result.unowned_samples} with a line unowned, {result.shared_samples} shared)"
    )
