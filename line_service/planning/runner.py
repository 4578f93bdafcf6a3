"""Adapter: run every corridor's simulation, across processes, reporting progress to a callback."""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from datetime import date

from line_service.planning.scenario import CorridorSpec, Scenario, ScenarioError
from line_service.planning.simulation import CorridorRun, simulate_corridor

Progress = Callable[[str], None]


def start_date(scenario: Scenario) -> date:
    """The first day the study may simulate."""
    try:
        return date.fromisoformat(scenario.start_date)
    except ValueError as exc:
        raise ScenarioError(
            [f"start_date: {scenario.start_date!r} is not a YYYY-MM-DD date"]
        ) from exc


def default_workers(corridors: int) -> int:
    """One process per core, never more than there are corridors."""
    return max(1, min(os.cpu_count() or 1, corridors))


def run_corridors(
    scenario: Scenario,
    corridors: list[CorridorSpec],
    days: int,
    seed: int,
    workers: int,
    progress: Progress,
) -> list[CorridorRun]:
    """Simulate each corridor (each has its own random stream: results do not depend on order)."""
    first = start_date(scenario)
    began = time.perf_counter()
    total = len(corridors)

    def told(done: int, run: CorridorRun) -> None:
        elapsed = time.perf_counter() - began
        progress(
            f"[{done}/{total}] {run.corridor_id}: {run.days}/{days} jours, "
            f"{len(run.outcomes)} demandes ({elapsed:.1f} s)"
        )

    runs: list[CorridorRun] = []
    if workers <= 1 or total <= 1:
        for corridor in corridors:
            runs.append(simulate_corridor(corridor, days, seed, first))
            told(len(runs), runs[-1])
        return runs
    # spawn: a fresh interpreter per worker, safe whatever threads the parent runs.
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        pending = [
            pool.submit(simulate_corridor, corridor, days, seed, first) for corridor in corridors
        ]
        for future in as_completed(pending):
            runs.append(future.result())
            told(len(runs), runs[-1])
    return runs
