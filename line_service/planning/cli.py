"""Adapter: the `plan` command (covoiturabilité study) for the `carpool-line` Typer app."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from line_service.planning.runner import default_workers, run_corridors
from line_service.planning.scenario import ScenarioError, load_scenario
from line_service.planning.summary import study_summary


def plan(
    scenario_path: Annotated[
        Path, typer.Argument(help="scenario YAML (e.g. config/corridors.yaml)")
    ],
    out: Annotated[Path, typer.Option("--out", help="directory for summary.json and report.html")],
    days: Annotated[
        int | None, typer.Option("--days", min=1, help="service days to simulate")
    ] = None,
    seed: Annotated[
        int | None, typer.Option("--seed", help="random seed (default: the file's)")
    ] = None,
    corridor: Annotated[
        list[str] | None, typer.Option("--corridor", help="only this corridor id (repeatable)")
    ] = None,
    workers: Annotated[
        int | None, typer.Option("--workers", min=1, help="processes (default: one per core)")
    ] = None,
) -> None:
    """Simulate the scenario's corridors with the dispatcher core; write the study."""
    # Imported here: matplotlib is most of a second that `serve` (same CLI) must not wait for.
    from line_service.planning.report import render_report

    try:
        scenario = load_scenario(scenario_path)
        chosen = [c for c in scenario.corridors if not corridor or c.id in corridor]
        unknown = sorted(set(corridor or ()) - {c.id for c in scenario.corridors})
        if unknown:
            known = ", ".join(c.id for c in scenario.corridors)
            raise ScenarioError([f"--corridor: unknown {', '.join(unknown)} (known: {known})"])
        n_days = days or scenario.days
        n_seed = scenario.seed if seed is None else seed
        began = time.perf_counter()
        runs = run_corridors(
            scenario,
            chosen,
            n_days,
            n_seed,
            workers or default_workers(len(chosen)),
            lambda line: typer.echo(line, err=True),
        )
    except ScenarioError as exc:
        for problem in exc.problems:
            typer.echo(f"{scenario_path}: {problem}", err=True)
        raise typer.Exit(2) from exc
    summary = study_summary(scenario, runs, n_days, n_seed)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / "summary.json").write_text(
            json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
        )
        (out / "report.html").write_text(render_report(summary, runs), encoding="utf-8")
    except OSError as exc:
        typer.echo(f"{out}: cannot write the study: {exc.strerror or exc}", err=True)
        raise typer.Exit(2) from exc
    elapsed = time.perf_counter() - began
    typer.echo(
        f"{len(runs)} corridor(s), {n_days} jours chacun, en {elapsed:.1f} s : "
        f"{out / 'summary.json'}, {out / 'report.html'}"
    )


def register(app: typer.Typer) -> None:
    """Add the `plan` command to the `carpool-line` app."""
    app.command("plan")(plan)
