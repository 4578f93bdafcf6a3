"""`plan` end to end through Typer: files written, bad scenarios exit 2 without a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import typer
import yaml
from typer.testing import CliRunner

from line_service.planning.cli import register
from tests.planning.kit import PEAKS, corridor_data


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command()
    def other() -> None:
        """A second command, so `plan` stays a subcommand as in `carpool-line`."""

    return app


def write_small_scenario(path: Path) -> Path:
    """Two corridors, a few service days: what the CLI and browser tests run."""
    main = corridor_data({7: 500.0, 8: 700.0, 17: 600.0}, {7: 3.0, 8: 3.0, 17: 2.0}, hours=PEAKS)
    main.update(id="aville-bville", department="Nord (59)", epcis=["CA Une", "CC Deux"])
    main["reverse"] = {"traffic_per_hour": {7: 200.0, 17: 700.0}, "riders_per_hour": {17: 3.0}}
    rural = corridor_data({7: 60.0, 8: 80.0}, {7: 1.0, 8: 1.0}, hours=PEAKS)
    rural.update(id="cville-dville", name="Cville – Dville", department="Somme (80)")
    data = {"days": 8, "seed": 4, "title": "Étude test", "corridors": [main, rural]}
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_plan_writes_summary_and_report(tmp_path: Path) -> None:
    scenario = write_small_scenario(tmp_path / "scenario.yaml")
    out = tmp_path / "study"
    result = CliRunner().invoke(_app(), ["plan", str(scenario), "--out", str(out), "--days", "6"])
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    first = summary["corridors"][0]
    for key in (
        "id",
        "name",
        "requests",
        "mean_wait_minutes",
        "p50_wait_minutes",
        "p90_wait_minutes",
        "fallback_share",
        "trips_per_month",
        "cost_per_trip_eur",
        "co2_avoided_kg",
        "funding",
    ):
        assert key in first
    assert first["days"] == 6
    assert first["requests"] > 0
    assert {entry["id"] for entry in summary["ranking"]} == {"aville-bville", "cville-dville"}
    assert "[2/2]" in result.output  # progress lines (stderr is mixed in by the runner)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("<svg") == 4
    assert "Classement régional" in html
    assert "src=" not in html


def test_one_corridor_and_seed_are_honoured(tmp_path: Path) -> None:
    scenario = write_small_scenario(tmp_path / "scenario.yaml")
    runs = []
    for name in ("a", "b"):
        args = [
            "plan",
            str(scenario),
            "--out",
            str(tmp_path / name),
            "--corridor",
            "cville-dville",
            "--seed",
            "99",
        ]
        assert CliRunner().invoke(_app(), args).exit_code == 0
        runs.append(json.loads((tmp_path / name / "summary.json").read_text(encoding="utf-8")))
    assert runs[0] == runs[1]
    assert [c["id"] for c in runs[0]["corridors"]] == ["cville-dville"]


def test_bad_scenarios_exit_2_with_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("days: 3\ncorridors:\n  - id: X Y\n    name: n\n", encoding="utf-8")
    result = CliRunner().invoke(_app(), ["plan", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "corridors[0].id" in result.output
    assert "corridors[0].stops" in result.output
    assert "Traceback" not in result.output
    bad.write_text("days: [\n", encoding="utf-8")
    result = CliRunner().invoke(_app(), ["plan", str(bad), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2
    assert "not valid YAML" in result.output
    scenario = write_small_scenario(tmp_path / "scenario.yaml")
    args = ["plan", str(scenario), "--out", str(tmp_path / "o"), "--corridor", "nowhere"]
    result = CliRunner().invoke(_app(), args)
    assert result.exit_code == 2
    assert "unknown nowhere" in result.output
    assert not (tmp_path / "o").exists()
