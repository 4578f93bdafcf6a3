"""BNLC export: every constraint of the national Table Schema, read from the schema file itself."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from dispatcher.model import Network
from line_service.authority.bnlc_export import export_bnlc, opening_hours, to_csv
from line_service.cli import app
from line_service.network.lines_file import load_network, parse_network
from tests.support.specs import SPECS as ALL_SPECS

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "config" / "lines.yaml"
SPECS = ALL_SPECS / "bnlc"
SCHEMA: dict[str, Any] = json.loads((SPECS / "schema.json").read_text(encoding="utf-8"))
KNOWN_CONSTRAINTS = {"required", "pattern", "enum", "minimum", "maximum"}
TRUE_VALUES, FALSE_VALUES = {"true", "True", "TRUE", "1"}, {"false", "False", "FALSE", "0"}


def _typed(field: dict[str, Any], text: str) -> tuple[Any, str | None]:
    """The cell's value in the field's Table Schema type, or an error."""
    kind = field.get("type", "string")
    try:
        if kind == "string":
            return text, None
        if kind == "integer":
            if not re.fullmatch(r"[+-]?\d+", text):
                return None, "not an integer"
            return int(text), None
        if kind == "number":
            return float(text), None
        if kind == "boolean":
            if text not in TRUE_VALUES | FALSE_VALUES:
                return None, "not a boolean"
            return text in TRUE_VALUES, None
        if kind == "date":
            pattern = field.get("format", "default")
            pattern = "%Y-%m-%d" if pattern == "default" else pattern
            return datetime.strptime(text, pattern).date(), None
    except ValueError:
        return None, f"not a {kind}"
    raise AssertionError(f"the checker does not know type {kind!r}: extend it")


def table_schema_problems(text: str) -> list[str]:
    """Every violation of schema.json by a CSV text: header, types and each constraint."""
    fields = SCHEMA["fields"]
    missing_values = set(SCHEMA.get("missingValues", [""]))
    rows = list(csv.reader(io.StringIO(text)))
    problems = []
    names = [field["name"] for field in fields]
    if rows[0] != names:
        problems.append(f"header {rows[0]} is not {names}")
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(names):
            problems.append(f"row {number}: {len(row)} cells for {len(names)} fields")
            continue
        for field, cell in zip(fields, row, strict=True):
            where = f"row {number}, {field['name']}"
            constraints = field.get("constraints", {})
            unknown = set(constraints) - KNOWN_CONSTRAINTS
            assert not unknown, f"the checker does not know {unknown}: extend it"
            if cell in missing_values:
                if constraints.get("required"):
                    problems.append(f"{where}: required")
                continue
            value, error = _typed(field, cell)
            if error:
                problems.append(f"{where}: {cell!r} {error}")
                continue
            if "pattern" in constraints and not re.fullmatch(constraints["pattern"], cell):
                problems.append(f"{where}: {cell!r} does not match {constraints['pattern']}")
            if "enum" in constraints and cell not in constraints["enum"]:
                problems.append(f"{where}: {cell!r} not in {constraints['enum']}")
            if "minimum" in constraints and value < constraints["minimum"]:
                problems.append(f"{where}: {value} < {constraints['minimum']}")
            if "maximum" in constraints and value > constraints["maximum"]:
                problems.append(f"{where}: {value} > {constraints['maximum']}")
    return problems


def shipped() -> Network:
    return load_network(SHIPPED)


def test_the_checker_accepts_the_schemas_own_valid_example() -> None:
    assert table_schema_problems((SPECS / "exemple-valide.csv").read_text(encoding="utf-8")) == []


def test_the_checker_catches_each_kind_of_violation() -> None:
    good = to_csv(export_bnlc(shipped(), date(2026, 3, 1)).rows)
    header, first, *_ = good.splitlines()
    row = next(csv.reader([first]))
    names = header.split(",")

    def broken(**cells: str) -> str:
        changed = [cells.get(name, cell) for name, cell in zip(names, row, strict=True)]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([names, changed])
        return buffer.getvalue()

    cases = {
        "required": broken(nom_lieu=""),
        "does not match": broken(insee="6219"),
        "not in": broken(type="Aire"),
        "> 180": broken(Xlong="181"),
        "< -90": broken(Ylat="-91"),
        "not a date": broken(date_maj="01/03/2026"),
        "not a boolean": broken(ouvert="oui"),
        "not an integer": broken(nbre_pl="3.5"),
        "< 0": broken(nbre_pmr="-1"),
    }
    for expected, text in cases.items():
        found = table_schema_problems(text)
        assert any(expected in problem for problem in found), (expected, found)
    swapped = good.replace("id_local,nom_lieu", "nom_lieu,id_local", 1)
    assert any("header" in problem for problem in table_schema_problems(swapped))


def test_the_shipped_line_exports_one_valid_row_per_place() -> None:
    export = export_bnlc(shipped(), date(2026, 3, 1), siren="200041010", owner="Pôle métropolitain")
    text = to_csv(export.rows)
    assert table_schema_problems(text) == []
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [row["com_lieu"] for row in rows] == [
        "Calais",
        "Marck",
        "Gravelines",
        "Loon-Plage",
        "Grande-Synthe",
        "Dunkerque",
    ]
    marck = rows[1]
    assert (marck["insee"], marck["type"], marck["Ylat"]) == (
        "62548",
        "Aire de covoiturage",
        "50.947480",
    )
    assert "62548-C-001" in marck["comm"]
    assert rows[0]["type"] == "Auto-stop"
    assert rows[0]["horaires"] == "Mo-Fr 06:30-09:30,16:00-19:30; PH off"
    assert rows[0]["source"] == "200041010"
    assert export.skipped == []


def test_stops_without_insee_are_left_out_and_named() -> None:
    text = """
lines:
  - id: l1
    name: "Ligne 1"
    timezone: Europe/Paris
    directions:
      - id: d1
        name: "B"
        stops:
          - {id: a, name: "A", code: AAA, lat: 50.0, lon: 2.0, insee: "62193"}
          - {id: b, name: "B", code: BBB, lat: 50.1, lon: 2.1}
"""
    export = export_bnlc(parse_network(text), date(2026, 3, 1))
    assert [row["com_lieu"] for row in export.rows] == ["A"]
    assert export.skipped == ["b"]
    assert export.rows[0]["horaires"] == "24/7"
    assert table_schema_problems(to_csv(export.rows)) == []


def test_opening_hours_group_days_with_the_same_windows() -> None:
    text = (
        SHIPPED.read_text(encoding="utf-8")
        .replace(
            'mon-fri: ["06:30-09:30", "16:00-19:30"]',
            'mon-thu: ["06:30-09:30"]\n      fri: ["06:30-09:30", "16:00-19:30"]\n'
            "    public_holidays: open",
        )
        .replace("    public_holidays: closed ", "    # ")
    )
    line = parse_network(text).lines[0]
    assert opening_hours(line.service_hours) == "Mo-Th 06:30-09:30; Fr 06:30-09:30,16:00-19:30"


def test_the_command_writes_the_csv(tmp_path: Path) -> None:
    out = tmp_path / "bnlc.csv"
    result = CliRunner().invoke(
        app,
        ["export", "bnlc", "--out", str(out), "--updated", "2026-03-01"],
        env={"CARPOOL_LINES_FILE": str(SHIPPED)},
    )
    assert result.exit_code == 0, result.output
    assert "6 place(s)" in result.output
    assert table_schema_problems(out.read_text(encoding="utf-8")) == []


def test_a_stop_named_like_a_formula_is_text_in_the_csv_and_numbers_stay_numbers() -> None:
    text = """
lines:
  - id: l1
    name: "Ligne 1"
    timezone: Europe/Paris
    directions:
      - id: d1
        name: "B"
        stops:
          - {id: a, name: '=HYPERLINK("http://x")', code: AAA, lat: 50.0, lon: -1.5, insee: "62193"}
          - {id: b, name: "@SUM(1)", code: BBB, lat: -20.5, lon: 2.1, insee: "62194"}
"""
    csv_text = to_csv(export_bnlc(parse_network(text), date(2026, 3, 1)).rows)
    rows = list(csv.DictReader(io.StringIO(csv_text)))
    assert rows[0]["com_lieu"] == '\'=HYPERLINK("http://x")'
    assert rows[1]["com_lieu"] == "'@SUM(1)"
    assert (rows[0]["Xlong"], rows[1]["Ylat"]) == ("-1.500000", "-20.500000")
    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
            assert not cell.startswith("-") or re.fullmatch(r"-\d+\.\d+", cell), cell
    assert table_schema_problems(csv_text) == []


def test_safe_cell_neutralises_every_formula_start() -> None:
    from line_service.authority.csv_cells import safe_cell

    for start in ("=", "+", "-", "@", "\t", "\r"):
        assert safe_cell(f"{start}1+1") == f"'{start}1+1"
    assert safe_cell("-1.5", numeric=True) == "-1.5"
    assert safe_cell("-1+cmd", numeric=True) == "'-1+cmd"
    assert safe_cell("Calais") == "Calais"
