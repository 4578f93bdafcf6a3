"""Shell: the benchmark harness runs end to end on a tiny load and writes its table (no timings)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.__main__ import main
from bench.report import BEGIN, END


def test_tiny_benchmark_run_prints_every_row_and_keeps_hand_written_notes(tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    output.write_text(f"# Benchmarks\n\nnotes before\n\n{BEGIN}\nold\n{END}\n\nnotes after\n")
    argv = ["--quick", "--devices", "60", "--seconds", "1", "--steps", "20", "--ingest", "200"]
    national = ["--national-lines", "2", "--national-devices", "12"]
    runs = main([*argv, *national, "--waiting", "10", "--output", str(output), "--quiet"])

    assert len(runs) == 1
    run = runs[0]
    assert run.latency["service"].count > 0
    assert run.latency["bare relay"].count > 0
    assert run.latency["service during a flood"].count > 0
    assert run.latency["bare relay during a flood"].count > 0
    assert run.recovered_signs == 2 * 20  # 60 devices: 20 stops with a terminal and 2 signs
    assert run.recovered_lit == 2 * 10
    text = output.read_text()
    for row in (
        "press→sign p50",
        "press→sign p99",
        "presses lost",
        "press→sign p99, one device flooding",
        "sustained rate",
        "heartbeat ingest",
        "recovery (10 waiting",
        "memory RSS (60 devices)",
        "CPU per press cycle, consumer",
        "broker + harness, same steps",
        "failover: kill → every sign of its lines re-asserted, median (1 SIGKILL(s), ~1 line(s)"
        " moved each, 40 signs in all)",
        "failover: kill → its signs re-asserted, max",
        "national: press→sign p50 (2 lines, 12 devices, 2 processes",
        "national: press→sign p99",
        "national: sustained rate, 2 processes (bare broker column: 1 process",
        "national: lines owned by process a of 2",
        "national: lines owned by process b of 2",
        "national: process exits (each restarted, as a supervisor would) | 0.00",
        "National (2 lines, 12 devices)",
        "Machine: ",
        "python -m bench --quick",
    ):
        assert row in text
    assert "notes before" in text
    assert "notes after" in text
    assert "\nold\n" not in text


def test_the_restart_measured_alone_writes_nothing(tmp_path: Path) -> None:
    output = tmp_path / "BENCHMARKS.md"
    argv = ["--quick", "--devices", "60", "--only-recovery", "--history", "50"]
    runs = main([*argv, "--waiting", "10", "--output", str(output), "--quiet"])

    assert [run.recovered_signs for run in runs] == [2 * 20]
    assert runs[0].recovered_lit == 2 * 10
    assert runs[0].recovery_cpu_s > 0
    assert not output.exists()


def test_the_national_scenario_alone_prints_each_process_lines_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "BENCHMARKS.md"
    argv = ["--quick", "--only-national", "--national-lines", "3", "--national-devices", "18"]
    main([*argv, "--seconds", "1", "--steps", "20", "--output", str(output)])

    printed = capsys.readouterr().out
    rows = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in printed.splitlines()}
    owned = [cells for measure, cells in rows.items() if "lines owned by process" in measure]
    assert len(owned) == 2
    assert sum(float(cells[1]) for cells in owned) == 3  # every line has one owner
    latency = rows["national: press→sign p50 (3 lines, 18 devices, 2 processes, 50/s)"]
    assert float(latency[1]) > 0  # the service's presses were answered …
    assert float(latency[2]) > 0  # … and the relay's
    assert not output.exists()
