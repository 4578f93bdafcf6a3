"""Shell: one benchmark run — start everything, measure every figure, stop everything."""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from bench import network, processes
from bench.probe import RELAY, SERVICE, PhaseResult, Probe, Target

P99_LIMIT = 0.050


@dataclass(frozen=True, slots=True)
class Options:
    """What to measure, and how much."""

    devices: int = 5000
    signs_per_stop: int = 2
    rate: float = 50.0
    seconds: float = 15.0
    heartbeat_period: float = 30.0
    steps: tuple[float, ...] = (100, 250, 500, 750, 1000, 1500, 2000)
    step_seconds: float = 2.0
    ingest: int = 20_000
    waiting: int = 1000
    runs: int = 3
    profile: Path | None = None
    only_recovery: bool = False
    history: int = 15_000  # presses (each cancelled) before the restart, with only_recovery


@dataclass(frozen=True, slots=True)
class Latency:
    """Percentiles of one phase, in milliseconds."""

    p50: float
    p99: float
    max: float
    count: int
    lost: int

    @classmethod
    def of(cls, phase: PhaseResult) -> Latency:
        """Summarise a phase (nearest-rank percentiles)."""
        ordered = sorted(phase.latencies) or [float("nan")]

        def rank(q: float) -> float:
            return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))] * 1000

        return cls(rank(0.50), rank(0.99), ordered[-1] * 1000, len(phase.latencies), phase.lost)


@dataclass(frozen=True, slots=True)
class CpuPerPress:
    """CPU milliseconds one press cycle (press, displays, cancel) cost each process in a step."""

    consumer: float  # the service, or the bare relay
    broker: float
    harness: float  # the measuring client and the heartbeat generator


@dataclass(frozen=True, slots=True)
class Step:
    """One rate step of the sustained test."""

    rate: float
    latency: Latency
    skipped: int
    cpu: CpuPerPress
    held: bool


@dataclass
class RunResult:
    """Every figure of one run."""

    latency: dict[str, Latency] = field(default_factory=dict)
    sustained: dict[str, float] = field(default_factory=dict)
    steps: dict[str, list[Step]] = field(default_factory=dict)
    ingest: dict[str, float] = field(default_factory=dict)
    rss_mib: dict[str, float] = field(default_factory=dict)
    recovery_s: float = float("nan")
    recovery_after_connect_s: float = float("nan")
    recovered_signs: int = 0
    recovered_lit: int = 0
    recovery_cpu_s: float = float("nan")  # the service's CPU time (every thread) until then


class _Stack:
    """The processes of one run."""

    def __init__(self, directory: Path, options: Options) -> None:
        self.net = network.build(options.devices, options.signs_per_stop)
        self.port = processes.free_port()
        self.http_port = processes.free_port()
        lines = network.write_lines_file(self.net, directory / "lines.yaml")
        self.broker = processes.mosquitto(directory, self.port)
        self.service = processes.service(
            directory, self.port, lines, self.http_port, options.profile
        )
        self.relay = processes.relay(directory, self.port, options.signs_per_stop)
        self.heartbeats = processes.heartbeats(
            directory, self.port, options.devices, options.heartbeat_period, options.signs_per_stop
        )
        flooded = self.net.stops[-1]
        self.flooder = processes.flooder(directory, self.port, flooded.line_id, flooded.sign_ids[0])
        self.probe: Probe | None = None

    def start(self) -> Probe:
        processes.start_mosquitto(self.broker, self.port)
        self.probe = Probe(self.port, self.net)
        self.relay.spawn()
        processes.wait_for(
            lambda: self.probe is not None and self.probe.relay_ready.is_set(), 30, "the bare relay"
        )
        self.service.spawn()
        processes.wait_for(
            lambda: processes.service_ready(self.service, self.http_port),
            60,
            f"the service (log: {self.service.log_path})",
        )
        self.heartbeats.spawn()
        return self.probe

    def stop(self) -> None:
        for child in (self.flooder, self.heartbeats, self.relay, self.service):
            child.stop()
        if self.probe is not None:
            self.probe.close()
        self.broker.stop()


def one_run(options: Options, say: Say) -> RunResult:
    """Start a broker, the service, the relay and the devices; measure; stop them all."""
    result = RunResult()
    with tempfile.TemporaryDirectory(prefix="carpool-bench-") as tmp:
        stack = _Stack(Path(tmp), options)
        try:
            probe = stack.start()
            say(f"  {stack.net.devices} devices on {len(stack.net.stops)} stops; warming up")
            if options.only_recovery:
                _history(probe, options, say)
            else:
                _before_recovery(probe, stack, options, result, say)
            _recovery(probe, stack, options, result)
            say(
                f"  recovery: {result.recovery_s:.2f} s from spawn "
                f"({result.recovery_after_connect_s:.2f} s after connecting; "
                f"the service's CPU {result.recovery_cpu_s:.2f} s)"
            )
        finally:
            stack.stop()
    return result


def _before_recovery(
    probe: Probe, stack: _Stack, options: Options, result: RunResult, say: Say
) -> None:
    """Every phase of a full run but the restart: latency, flood, memory, rates, ingest."""
    for target in (RELAY, SERVICE):
        probe.run_rate(target, options.rate, 1.0)
    for target in (RELAY, SERVICE):
        phase = probe.run_rate(target, options.rate, options.seconds)
        result.latency[target.name] = Latency.of(phase)
        say(f"  latency {target.name}: {result.latency[target.name]}")
    _flooded(probe, stack, options, result, say)
    result.rss_mib[SERVICE.name] = processes.rss_kib(stack.service.pid) / 1024
    result.rss_mib[RELAY.name] = processes.rss_kib(stack.relay.pid) / 1024
    for target in (SERVICE, RELAY):
        _sustained(probe, target, stack, options, result, say)
    for target, child in ((RELAY, stack.relay), (SERVICE, stack.service)):
        result.ingest[target.name] = _ingest(probe, target, child, stack, options)
        say(f"  ingest {target.name}: {result.ingest[target.name]:.0f} msg/s")


def _history(probe: Probe, options: Options, say: Say) -> None:
    """Requests made and cancelled before a restart measured alone: a full run leaves ~16,000
    of them in the restore window, and reading them back is part of the restart."""
    rate = 500.0
    say(f"  {options.history} presses at {rate:g}/s, each cancelled, before the restart")
    probe.run_rate(SERVICE, rate, options.history / rate)


FLOODED = " during a flood"
"""Suffix of the latency phases measured while one device floods its own status."""


def _flooded(probe: Probe, stack: _Stack, options: Options, result: RunResult, say: Say) -> None:
    """Press→sign of every stop while one sign floods: a device degrades itself only."""
    stack.flooder.spawn()
    try:
        for target in (RELAY, SERVICE):
            phase = probe.run_rate(target, options.rate, options.seconds)
            result.latency[target.name + FLOODED] = Latency.of(phase)
            say(f"  latency {target.name}{FLOODED}: {result.latency[target.name + FLOODED]}")
    finally:
        stack.flooder.stop()


def _sustained(
    probe: Probe,
    target: Target,
    stack: _Stack,
    options: Options,
    result: RunResult,
    say: Say,
) -> None:
    consumer = stack.service if target is SERVICE else stack.relay
    clocks = Clocks((consumer.pid,), stack.broker.pid, stack.heartbeats.pid)
    best, steps = climb(probe, target, options, clocks, say, target.name)
    result.sustained[target.name] = best
    result.steps[target.name] = steps


@dataclass(frozen=True, slots=True)
class Clocks:
    """The processes whose CPU a rate step counts: the consumer(s), the broker, the heartbeats."""

    consumers: tuple[int, ...]
    broker: int
    heartbeats: int


def climb(
    probe: Probe, target: Target, options: Options, clocks: Clocks, say: Say, label: str
) -> tuple[float, list[Step]]:
    """Run `options.steps` in turn until one is not held: the highest rate held, and each step.

    Held: p99 under P99_LIMIT, nothing lost or skipped, and the harness kept pace (the step's
    presses sent within 15 % of its length)."""
    best = 0.0
    steps: list[Step] = []
    for rate in options.steps:
        pids = (*clocks.consumers, clocks.broker, clocks.heartbeats)
        before = [processes.cpu_seconds(pid) for pid in pids] + [processes.own_cpu_seconds()]
        phase = probe.run_rate(target, rate, options.step_seconds)
        after = [processes.cpu_seconds(pid) for pid in pids] + [processes.own_cpu_seconds()]
        spent = [
            (end - start) * 1000 / max(1, phase.sent)
            for start, end in zip(before, after, strict=True)
        ]
        consumers = len(clocks.consumers)
        cpu = CpuPerPress(
            consumer=sum(spent[:consumers]),
            broker=spent[consumers],
            harness=spent[consumers + 1] + spent[consumers + 2],
        )
        latency = Latency.of(phase)
        kept_pace = phase.send_seconds <= options.step_seconds * 1.15
        held = latency.p99 < P99_LIMIT * 1000 and not (phase.lost or phase.skipped) and kept_pace
        steps.append(Step(rate, latency, phase.skipped, cpu, held))
        say(
            f"  {label} at {rate:g}/s: p99 {latency.p99:.1f} ms, lost {phase.lost}, "
            f"CPU per press {cpu.consumer:.2f} ms (broker {cpu.broker:.2f}, harness "
            f"{cpu.harness:.2f}){'' if held else ' — not held'}"
        )
        if not held:
            break
        best = rate
    return best, steps


def _ingest(
    probe: Probe, target: Target, child: processes.Child, stack: _Stack, options: Options
) -> float:
    """Heartbeats a second the consumer drains once resumed, with the broker feeding it."""
    stack.heartbeats.pause()
    child.pause()
    try:
        probe.flood(target, options.ingest)
        probe.reset()
        if not probe.press(target):
            raise RuntimeError("no free stop for the ingest marker")
        resumed_at = time.perf_counter()
        child.resume()
        processes.wait_for(lambda: probe.latencies_so_far() >= 1, 120, "the ingest marker")
        drained = probe.last_lit_at - resumed_at
    finally:
        child.resume()
        stack.heartbeats.resume()
    probe.run_rate(target, 1, 1)  # let the marker's cancel settle
    return options.ingest / drained


def _recovery(probe: Probe, stack: _Stack, options: Options, result: RunResult) -> None:
    waiting = min(options.waiting, len(stack.net.stops))
    probe.run_rate(SERVICE, 500, waiting / 500, cancel=False)
    stack.service.stop()
    all_signs = len(stack.net.stops) * stack.net.signs_per_stop
    probe.resync_lit = set()
    probe.resync_seen = set()
    probe.dispatcher_online_at = None
    spawned_at = time.perf_counter()
    stack.service.spawn()

    def reasserted() -> bool:
        seen = probe.resync_seen
        return seen is not None and len(seen) >= all_signs and stack.service.alive()

    done_at = processes.wait_for(reasserted, 60, "every sign re-asserted")
    result.recovery_cpu_s = processes.cpu_seconds(stack.service.pid)
    result.recovery_s = done_at - spawned_at
    connected_at = probe.dispatcher_online_at
    if connected_at is not None:
        result.recovery_after_connect_s = done_at - connected_at
    result.recovered_signs = len(probe.resync_seen or ())
    result.recovered_lit = len(probe.resync_lit)
    probe.resync_seen = None
    processes.wait_for(
        lambda: processes.service_ready(stack.service, stack.http_port), 60, "service ready"
    )
    probe.cancel_all(SERVICE)


def reference_rate(runs: list[RunResult]) -> float | None:
    """The highest rate both the service and the relay held in every run (CPU compared there)."""
    held: set[float] | None = None
    for run in runs:
        for target in (SERVICE, RELAY):
            rates = {step.rate for step in run.steps.get(target.name, []) if step.held}
            held = rates if held is None else held & rates
    return max(held) if held else None


def step_at(run: RunResult, target: Target, rate: float) -> Step:
    """A run's step of `target` at `rate`."""
    return next(step for step in run.steps[target.name] if step.rate == rate)


def median(values: list[float]) -> float:
    """The median, NaN for no values."""
    return statistics.median(values) if values else float("nan")


class Say:
    """Progress lines to stdout (silenced in the smoke test)."""

    def __init__(self, quiet: bool = False) -> None:
        self.quiet = quiet

    def __call__(self, text: str) -> None:
        if not self.quiet:
            print(text, flush=True)
