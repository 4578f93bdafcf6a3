"""Shell: `python -m bench.press_cost` — CPU one press cycle costs the service and the relay.

For deciding changes on a noisy machine: wall-clock latencies move with the neighbours' load,
a process's own CPU time (user + system, `/proc/PID/stat`) much less. Starts its own Mosquitto,
the service (the bench's synthetic network) and the bare relay, no heartbeats; then, for each
target in turn and `--rounds` times, drives `--presses` press cycles (press, 2 displays, cancel,
2 blank displays, the screens) at `--rate` a second and divides the consumer's CPU time by the
presses. The consumer's idle CPU over a like span is measured first and subtracted (timers,
keepalives). Prints every round and the medians, service ÷ relay:

    .venv/bin/python -m bench.press_cost --presses 2000 --rate 250 --rounds 5

`--pid-file FILE` writes the service's and the relay's pids (to attach `py-spy record --pid` or
`strace -c -p` to them meanwhile);
`--hold SECONDS` keeps pressing the service that long at `--rate` before measuring (a profiler's
window).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from bench import network, processes
from bench.probe import RELAY, SERVICE, Probe, Target


def _user_system(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process so far (every thread), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def _cpu_per_press(
    probe: Probe, target: Target, pid: int, presses: int, rate: float
) -> tuple[float, float]:
    """User and system CPU milliseconds per press cycle."""
    user, system = _user_system(pid)
    phase = probe.run_rate(target, rate, presses / rate)
    user_after, system_after = _user_system(pid)
    if phase.lost or phase.skipped:
        print(f"  {target.name}: {phase.lost} lost, {phase.skipped} skipped", file=sys.stderr)
    sent = max(1, phase.sent)
    return (user_after - user) * 1000 / sent, (system_after - system) * 1000 / sent


def _idle_per_second(pid: int, seconds: float = 2.0) -> float:
    before = processes.cpu_seconds(pid)
    time.sleep(seconds)
    return (processes.cpu_seconds(pid) - before) / seconds


def main(argv: list[str]) -> dict[str, float]:
    """Run; returns the median CPU milliseconds per press cycle of each target."""
    parser = argparse.ArgumentParser(prog="python -m bench.press_cost", description=__doc__)
    parser.add_argument("--devices", type=int, default=5000)
    parser.add_argument("--presses", type=int, default=2000, help="press cycles per round")
    parser.add_argument("--rate", type=float, default=250.0, help="presses a second")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--pid-file", type=Path)
    parser.add_argument("--hold", type=float, default=0.0)
    args = parser.parse_args(argv)
    results: dict[str, list[float]] = {SERVICE.name: [], RELAY.name: []}
    rss: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="carpool-press-cost-") as tmp:
        directory = Path(tmp)
        net = network.build(args.devices)
        port, http_port = processes.free_port(), processes.free_port()
        lines = network.write_lines_file(net, directory / "lines.yaml")
        broker = processes.mosquitto(directory, port)
        service = processes.service(directory, port, lines, http_port, None)
        relay = processes.relay(directory, port, net.signs_per_stop)
        probe: Probe | None = None
        try:
            processes.start_mosquitto(broker, port)
            probe = Probe(port, net)
            relay.spawn()
            processes.wait_for(probe.relay_ready.is_set, 30, "the bare relay")
            service.spawn()
            processes.wait_for(
                lambda: processes.service_ready(service, http_port), 60, "the service"
            )
            if args.pid_file is not None:
                args.pid_file.write_text(f"{service.pid} {relay.pid}\n")
            consumers = ((SERVICE, service.pid), (RELAY, relay.pid))
            for target, _ in consumers:
                probe.run_rate(target, args.rate, 1.0)  # warm-up
            if args.hold:
                probe.run_rate(SERVICE, args.rate, args.hold)
            idle = {target.name: _idle_per_second(pid) for target, pid in consumers}
            for number in range(1, args.rounds + 1):
                for target, pid in consumers:
                    user, system = _cpu_per_press(probe, target, pid, args.presses, args.rate)
                    # The idle cost of the span, spread over its presses.
                    cost = user + system - idle[target.name] * 1000 / args.rate
                    results[target.name].append(cost)
                    rss[target.name] = processes.rss_kib(pid) / 1024
                    print(
                        f"round {number} {target.name}: {cost:.3f} ms CPU per press cycle "
                        f"(user {user:.3f}, system {system:.3f})"
                    )
        finally:
            for child in (relay, service):
                child.stop()
            if probe is not None:
                probe.close()
            broker.stop()
    medians = {name: statistics.median(values) for name, values in results.items()}
    # Each round's ratio compares two spans measured back to back, under about the same load.
    ratio = statistics.median(
        service / relay
        for service, relay in zip(results[SERVICE.name], results[RELAY.name], strict=True)
    )
    print(
        f"median of {args.rounds}: service {medians[SERVICE.name]:.3f} ms, relay "
        f"{medians[RELAY.name]:.3f} ms, ratio (median of the rounds' ratios) {ratio:.2f}× "
        f"({args.presses} presses at {args.rate:g}/s, {args.devices} devices, idle subtracted: "
        f"service {idle[SERVICE.name] * 1000:.1f} ms/s, relay {idle[RELAY.name] * 1000:.1f} ms/s); "
        f"RSS service {rss[SERVICE.name]:.0f} MiB, relay {rss[RELAY.name]:.0f} MiB"
    )
    return medians


if __name__ == "__main__":
    main(sys.argv[1:])
