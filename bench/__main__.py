"""Shell: `python -m bench` — run the benchmark, print the table, write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path

from bench import failover, national, report
from bench.scenarios import Options, RunResult, Say, one_run

QUICK = Options(
    devices=500,
    rate=50,
    seconds=4,
    steps=(250, 1000),
    step_seconds=1.0,
    ingest=3000,
    waiting=100,
    runs=1,
)


QUICK_FAILOVERS = 1
FAILOVERS = 5


@dataclass(frozen=True, slots=True)
class Plan:
    """What the command line asked for."""

    options: Options
    output: Path
    quiet: bool
    failovers: int
    national_lines: int
    national_devices: int
    only_national: bool
    national_settled: float


def parse(argv: list[str]) -> Plan:
    """Options from the command line."""
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a short run with few devices")
    parser.add_argument("--runs", type=int, help="runs to take medians of (default 3)")
    parser.add_argument("--devices", type=int, help="devices heartbeating (default 5000)")
    parser.add_argument("--rate", type=float, help="presses a second (default 50)")
    parser.add_argument("--seconds", type=float, help="length of the latency phase")
    parser.add_argument("--ingest", type=int, help="heartbeats in the ingest flood")
    parser.add_argument("--waiting", type=int, help="waiting requests at restart (default 1000)")
    parser.add_argument("--steps", help="comma-separated press rates for the sustained test")
    parser.add_argument("--step-seconds", type=float, help="length of each rate step")
    parser.add_argument("--profile", type=Path, help="write the service's cProfile stats here")
    parser.add_argument(
        "--failovers",
        type=int,
        help=f"owner SIGKILLs in the cluster failover measure (default {FAILOVERS}; 0: skip)",
    )
    parser.add_argument(
        "--only-recovery",
        action="store_true",
        help="measure the restart alone (after --history presses); print, write nothing",
    )
    parser.add_argument("--history", type=int, help="presses before the restart, alone")
    parser.add_argument(
        "--national-lines",
        type=int,
        help=f"lines of the national scenario, two processes (default {national.LINES}, "
        f"{national.QUICK_LINES} with --quick; 0: skip)",
    )
    parser.add_argument(
        "--national-devices",
        type=int,
        help=f"devices of the national scenario (default {national.DEVICES:,}, "
        f"{national.QUICK_DEVICES} with --quick)",
    )
    parser.add_argument(
        "--only-national",
        action="store_true",
        help="measure the national scenario alone; print, write nothing",
    )
    parser.add_argument("--output", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    options = QUICK if args.quick else Options()
    chosen = {
        key: getattr(args, key)
        for key in (
            "runs",
            "devices",
            "rate",
            "seconds",
            "ingest",
            "waiting",
            "step_seconds",
            "profile",
            "only_recovery",
            "history",
        )
        if getattr(args, key) is not None
    }
    if not args.only_recovery:
        chosen.pop("only_recovery")
    if args.steps:
        chosen["steps"] = tuple(float(step) for step in args.steps.split(","))
    failovers = args.failovers
    if failovers is None:
        failovers = QUICK_FAILOVERS if args.quick else FAILOVERS
    lines = args.national_lines
    if lines is None:
        lines = national.QUICK_LINES if args.quick else national.LINES
    devices = args.national_devices
    if devices is None:
        devices = national.QUICK_DEVICES if args.quick else national.DEVICES
    return Plan(
        replace(options, **chosen),
        args.output,
        args.quiet,
        failovers,
        lines,
        devices,
        args.only_national,
        national.QUICK_SETTLED_SECONDS if args.quick else national.SETTLED_SECONDS,
    )


def main(argv: list[str]) -> list[RunResult]:
    """Run, print, write; returns the runs (none with --only-national)."""
    plan = parse(argv)
    options = plan.options
    say = Say(plan.quiet)
    if plan.only_national:
        main_national(plan, say)
        return []
    runs: list[RunResult] = []
    for number in range(1, options.runs + 1):
        say(f"run {number}/{options.runs}")
        runs.append(one_run(options, say))
    if options.only_recovery:
        say(_recovery_summary(runs))
        return runs
    took = failover.measure(options.devices, options.signs_per_stop, plan.failovers, say)
    spread = _national(plan, say)
    extra = [*failover.rows(took), *report.national_rows(spread, options)]
    notes = [report.national_details(spread)]
    command = " ".join(["python -m bench", *argv])
    say(report.table([*report.rows(runs, options), *extra]))
    report.write(plan.output, report.results_section(runs, options, command, extra, notes))
    say(f"written to {plan.output}")
    return runs


def main_national(plan: Plan, say: Say) -> national.NationalResult:
    """The national scenario alone: measured and printed, BENCHMARKS.md left as it is."""
    result = _national(plan, say)
    say(report.table(report.national_rows(result, plan.options)))
    say(report.national_details(result))
    return result


def _national(plan: Plan, say: Say) -> national.NationalResult:
    lines, devices, settled = plan.national_lines, plan.national_devices, plan.national_settled
    return national.measure(plan.options, lines, devices, say, settled)


def _recovery_summary(runs: list[RunResult]) -> str:
    spawn = statistics.median(run.recovery_s for run in runs)
    connect = statistics.median(run.recovery_after_connect_s for run in runs)
    cpu = statistics.median(run.recovery_cpu_s for run in runs)
    each = ", ".join(f"{run.recovery_s:.2f}" for run in runs)
    return (
        f"recovery, median of {len(runs)}: {spawn:.2f} s from spawn, {connect:.2f} s after "
        f"connecting, the service's CPU {cpu:.2f} s (each from spawn: {each})"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
