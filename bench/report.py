"""Shell: the results table (medians of the runs) and BENCHMARKS.md."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.national import ONE, SAMPLE_SECONDS, TWO, NationalResult, owned_range
from bench.probe import RELAY, SERVICE
from bench.scenarios import (
    FLOODED,
    Options,
    RunResult,
    Step,
    median,
    reference_rate,
    step_at,
)

BEGIN = "<!-- bench:results:begin -->"
END = "<!-- bench:results:end -->"


@dataclass(frozen=True, slots=True)
class Row:
    """One line of the table."""

    measure: str
    service: float
    baseline: float | None
    unit: str
    target: str
    met: bool | None

    @property
    def ratio(self) -> float | None:
        """service / baseline."""
        if self.baseline is None or not self.baseline or math.isnan(self.baseline):
            return None
        if math.isnan(self.service):
            return None
        return self.service / self.baseline


def _med(runs: list[RunResult], pick: Callable[[RunResult], float]) -> float:
    return median([pick(run) for run in runs])


def rows(runs: list[RunResult], options: Options) -> list[Row]:
    """The headline figures, medians over the runs."""
    return [*_latency_rows(runs, options), *_other_rows(runs, options), *_cpu_rows(runs)]


def _cpu_rows(runs: list[RunResult]) -> list[Row]:
    """What one press cycle costs in CPU, compared at the highest rate both targets held."""
    rate = reference_rate(runs)
    held = rate is not None
    if rate is None:
        # No step held by both in every run (a loaded machine): compare at the lowest step.
        rates = [step.rate for step in runs[0].steps.get(SERVICE.name, [])] if runs else []
        if not rates:
            return []
        rate = min(rates)
    pairs = [(step_at(run, SERVICE, rate), step_at(run, RELAY, rate)) for run in runs]
    service = median([own.cpu.consumer for own, _ in pairs])
    relay = median([base.cpu.consumer for _, base in pairs])
    service_rest = median([own.cpu.broker + own.cpu.harness for own, _ in pairs])
    relay_rest = median([base.cpu.broker + base.cpu.harness for _, base in pairs])
    return [
        Row(
            f"CPU per press cycle, consumer (at {rate:g}/s{'' if held else ', not held'})",
            service,
            relay,
            "ms",
            "",
            None,
        ),
        Row("  broker + harness, same steps", service_rest, relay_rest, "ms", "", None),
    ]


def _latency_rows(runs: list[RunResult], options: Options) -> list[Row]:
    s, b = "service", "bare relay"
    p50 = _med(runs, lambda r: r.latency[s].p50)
    p50_base = _med(runs, lambda r: r.latency[b].p50)
    p99 = _med(runs, lambda r: r.latency[s].p99)
    sustained = _med(runs, lambda r: r.sustained[s])
    load = f"{options.rate:g}/s, {runs[0].latency[s].count and options.devices} devices"
    return [
        Row(f"press→sign p50 ({load})", p50, p50_base, "ms", "≤ 3× relay", p50 <= 3 * p50_base),
        Row(
            "press→sign p99",
            p99,
            _med(runs, lambda r: r.latency[b].p99),
            "ms",
            "≤ 10 ms",
            p99 <= 10,
        ),
        Row(
            "press→sign max",
            _med(runs, lambda r: r.latency[s].max),
            _med(runs, lambda r: r.latency[b].max),
            "ms",
            "",
            None,
        ),
        Row(
            "presses lost",
            _med(runs, lambda r: r.latency[s].lost),
            _med(runs, lambda r: r.latency[b].lost),
            "",
            "0",
            _med(runs, lambda r: r.latency[s].lost) == 0,
        ),
        *_flood_rows(runs),
        Row(
            "sustained rate (p99 < 50 ms)",
            sustained,
            _med(runs, lambda r: r.sustained[b]),
            "presses/s",
            "≥ 1000",
            sustained >= 1000,
        ),
    ]


def _flood_rows(runs: list[RunResult]) -> list[Row]:
    """Press→sign of every stop while one sign floods its status (target: as without it)."""
    s, b = "service" + FLOODED, "bare relay" + FLOODED
    if any(s not in run.latency for run in runs):
        return []
    p99 = _med(runs, lambda r: r.latency[s].p99)
    p99_calm = _med(runs, lambda r: r.latency["service"].p99)
    lost = _med(runs, lambda r: r.latency[s].lost)
    return [
        Row(
            "press→sign p50, one device flooding",
            _med(runs, lambda r: r.latency[s].p50),
            _med(runs, lambda r: r.latency[b].p50),
            "ms",
            "",
            None,
        ),
        Row(
            "press→sign p99, one device flooding",
            p99,
            _med(runs, lambda r: r.latency[b].p99),
            "ms",
            "≤ 2× without flood",
            p99 <= 2 * p99_calm,
        ),
        Row(
            "presses lost, one device flooding",
            lost,
            _med(runs, lambda r: r.latency[b].lost),
            "",
            "0",
            lost == 0,
        ),
    ]


def _other_rows(runs: list[RunResult], options: Options) -> list[Row]:
    s, b = "service", "bare relay"
    ingest = _med(runs, lambda r: r.ingest[s])
    ingest_base = _med(runs, lambda r: r.ingest[b])
    recovery = _med(runs, lambda r: r.recovery_s)
    return [
        Row(
            "heartbeat ingest",
            ingest,
            ingest_base,
            "msg/s",
            "≥ 70 % of bare consumer",
            ingest >= 0.7 * ingest_base,
        ),
        Row(
            f"recovery ({options.waiting} waiting → every sign)",
            recovery,
            None,
            "s",
            "≤ 2 s",
            recovery <= 2,
        ),
        Row(
            "  of which after broker connection",
            _med(runs, lambda r: r.recovery_after_connect_s),
            None,
            "s",
            "",
            None,
        ),
        Row(
            f"memory RSS ({options.devices} devices)",
            _med(runs, lambda r: r.rss_mib[s]),
            _med(runs, lambda r: r.rss_mib[b]),
            "MiB",
            "",
            None,
        ),
    ]


def national_rows(result: NationalResult, options: Options) -> list[Row]:
    """The national scenario's rows, medians of its rounds (none when it was skipped): two
    processes against the relay in the same run, the sustained rate of two processes against
    one, the lines each owned."""
    if not result.latency:
        return []
    s, b = result.latency[SERVICE.name], result.latency[RELAY.name]
    rounds = f", {result.rounds} rounds" if result.rounds > 1 else ""
    load = f"{result.lines} lines, {result.devices} devices, {TWO}, {options.rate:g}/s{rounds}"
    lost = median([lat.lost for lat in s])
    exits = sum(len(codes) for codes in result.exits.values())
    found = [
        Row(
            f"national: press→sign p50 ({load})",
            median([lat.p50 for lat in s]),
            median([lat.p50 for lat in b]),
            "ms",
            "",
            None,
        ),
        Row(
            "national: press→sign p99",
            median([lat.p99 for lat in s]),
            median([lat.p99 for lat in b]),
            "ms",
            "",
            None,
        ),
        Row("national: presses lost", lost, median([lat.lost for lat in b]), "", "0", lost == 0),
        Row(
            f"national: sustained rate, {TWO} (bare broker column: {ONE}, same network)",
            _counted(result.sustained.get(TWO, [])),
            _counted(result.sustained.get(ONE, [])),
            "presses/s",
            "",
            None,
        ),
        Row(
            "national: process exits (each restarted, as a supervisor would)",
            exits,
            None,
            "",
            "0",
            exits == 0,
        ),
    ]
    for name, samples in result.owned.items():
        low, high, middle = owned_range(samples)
        found.append(
            Row(
                f"national: lines owned by process {name} of {result.lines} (/readyz, median; "
                f"{low}–{high} over {len(samples)} samples)",
                middle,
                None,
                "lines",
                "",
                None,
            )
        )
    return found


def _counted(rates: list[float]) -> float:
    """The median of the climbs not interrupted by a process exit (NaN: none)."""
    return median([rate for rate in rates if not math.isnan(rate)])


def national_details(result: NationalResult) -> str:
    """The national scenario's rate steps, and how its lines were shared while both ran."""
    if not result.latency:
        return ""
    each = "; ".join(
        f"{name} {', '.join('—' if math.isnan(rate) else f'{rate:g}' for rate in rates)}"
        for name, rates in result.sustained.items()
    )
    out = [
        f"National ({result.lines} lines, {result.devices} devices), sustained rate of each "
        f"round: {each}. Rate steps (last round): rate → p99 ms (lost, skipped; CPU ms per "
        "press cycle: the service processes together / broker / harness)",
        "",
    ]
    for name, steps in result.steps.items():
        out.append(f"- {name}: {', '.join(_step_text(step) for step in steps)}")
    owned = "; ".join(f"{name} {_repeats(samples)}" for name, samples in result.owned.items())
    out.append(
        f"- lines owned at each /readyz sample (every {SAMPLE_SECONDS:g} s) while both ran: "
        f"{owned}; samples with a line unowned: {result.unowned_samples}, with a line claimed "
        f"by both: {result.shared_samples}"
    )
    exits = "; ".join(
        f"{name} {', '.join(map(str, codes))}" for name, codes in result.exits.items() if codes
    )
    if exits:
        out.append(f"- exit codes of the processes restarted: {exits}")
    return "\n".join(out)


def _repeats(samples: list[int]) -> str:
    """Samples in order, repeats counted: `100 ×37, 50 ×3`."""
    groups: list[list[int]] = []
    for sample in samples:
        if groups and groups[-1][0] == sample:
            groups[-1][1] += 1
        else:
            groups.append([sample, 1])
    return ", ".join(f"{value} ×{count}" for value, count in groups)


def _number(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def table(found: list[Row]) -> str:
    """A Markdown table (also readable on a terminal)."""
    out = [
        "| measure | service | bare broker | ratio | unit | target | met |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for row in found:
        ratio = f"{row.ratio:.2f}×" if row.ratio is not None else "—"
        met = {True: "yes", False: "**no**", None: ""}[row.met]
        out.append(
            f"| {row.measure} | {_number(row.service)} | {_number(row.baseline)} | {ratio} "
            f"| {row.unit} | {row.target} | {met} |"
        )
    return "\n".join(out)


def machine() -> str:
    """Cores, CPU model and memory, from /proc."""
    model = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = "?"
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    return (
        f"{os.cpu_count()} cores ({model}), {memory} RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def _details(runs: list[RunResult]) -> str:
    out = [
        "| run | target | p50 ms | p99 ms | max ms | n | lost | sustained/s | ingest msg/s |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for number, run in enumerate(runs, 1):
        for name, lat in run.latency.items():
            out.append(
                f"| {number} | {name} | {lat.p50:.2f} | {lat.p99:.2f} | {lat.max:.2f} | "
                f"{lat.count} | {lat.lost} | {run.sustained.get(name, 0):g} | "
                f"{run.ingest.get(name, 0):,.0f} |"
            )
    out.append("")
    out.append(
        "Rate steps (last run): rate → p99 ms (lost, skipped; CPU ms per press cycle: "
        "consumer / broker / harness)"
    )
    out.append("")
    for name, steps in runs[-1].steps.items():
        out.append(f"- {name}: {', '.join(_step_text(step) for step in steps)}")
    out.append(
        f"- recovery (last run): {runs[-1].recovered_signs} signs re-asserted, "
        f"{runs[-1].recovered_lit} of them lit"
    )
    return "\n".join(out)


def _step_text(step: Step) -> str:
    cpu = step.cpu
    return (
        f"{step.rate:g}/s → {step.latency.p99:.1f} ({step.latency.lost}, {step.skipped}; "
        f"{cpu.consumer:.2f} / {cpu.broker:.2f} / {cpu.harness:.2f})"
    )


def results_section(
    runs: list[RunResult],
    options: Options,
    command: str,
    extra: Sequence[Row] = (),
    notes: Sequence[str] = (),
) -> str:
    """The generated part of BENCHMARKS.md; `extra`: rows of measures run apart (failover,
    national), `notes`: their details, after the runs' own."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return "\n".join(
        [
            BEGIN,
            f"Measured {stamp} with `{command}` — medians of {len(runs)} run(s).",
            "",
            f"Machine: {machine()}.",
            "",
            f"Load: {options.devices} devices heartbeating every {options.heartbeat_period:g} s, "
            f"{options.signs_per_stop} signs a stop, presses at {options.rate:g}/s for "
            f"{options.seconds:g} s; rate steps {', '.join(f'{s:g}' for s in options.steps)} "
            f"presses/s of {options.step_seconds:g} s; ingest {options.ingest} heartbeats; "
            f"recovery with {options.waiting} waiting requests.",
            "",
            table([*rows(runs, options), *extra]),
            "",
            _details(runs),
            *(f"\n{note}" for note in notes if note),
            END,
        ]
    )


def write(path: Path, section: str) -> None:
    """Replace the generated section of `path`, keeping the hand-written notes around it."""
    if path.exists() and BEGIN in (text := path.read_text()) and END in text:
        before, rest = text.split(BEGIN, 1)
        after = rest.split(END, 1)[1]
        path.write_text(before + section + after)
        return
    path.write_text(
        f"# Benchmarks\n\nGenerated by `make bench` (`python -m bench`).\n\n{section}\n"
    )
