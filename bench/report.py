"""Shell: the results table (medians of the runs) and BENCHMARKS.md."""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.scenarios import Options, RunResult, median

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
        return self.service / self.baseline


def _med(runs: list[RunResult], pick: Callable[[RunResult], float]) -> float:
    return median([pick(run) for run in runs])


def rows(runs: list[RunResult], options: Options) -> list[Row]:
    """The headline figures, medians over the runs."""
    s, b = "service", "bare relay"
    p50 = _med(runs, lambda r: r.latency[s].p50)
    p50_base = _med(runs, lambda r: r.latency[b].p50)
    p99 = _med(runs, lambda r: r.latency[s].p99)
    ingest = _med(runs, lambda r: r.ingest[s])
    ingest_base = _med(runs, lambda r: r.ingest[b])
    sustained = _med(runs, lambda r: r.sustained[s])
    recovery = _med(runs, lambda r: r.recovery_s)
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
        Row(
            "sustained rate (p99 < 50 ms)",
            sustained,
            _med(runs, lambda r: r.sustained[b]),
            "presses/s",
            "≥ 1000",
            sustained >= 1000,
        ),
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
    out.append("Rate steps (last run): rate → p99 ms (lost, skipped)")
    out.append("")
    for name, steps in runs[-1].steps.items():
        text = ", ".join(
            f"{rate:g}/s → {lat.p99:.1f} ({lat.lost}, {skipped})" for rate, lat, skipped in steps
        )
        out.append(f"- {name}: {text}")
    out.append(
        f"- recovery (last run): {runs[-1].recovered_signs} signs re-asserted, "
        f"{runs[-1].recovered_lit} of them lit"
    )
    return "\n".join(out)


def results_section(runs: list[RunResult], options: Options, command: str) -> str:
    """The generated part of BENCHMARKS.md."""
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
            table(rows(runs, options)),
            "",
            _details(runs),
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
