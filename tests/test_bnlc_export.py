"""BNLC export: every row valid against the package's v0.3.0 row schema, in the schema's order."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatcher.model import Network
from line_service.authority import cli as authority_cli
from line_service.authority.bnlc_export import export_bnlc, opening_hours, to_csv
from line_service.authority.schemas import bnlc_columns, bnlc_row_problems
from line_service.cli import app
from line_service.network.lines_file import load_network, parse_network

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "config" / "lines.yaml"
# A place of our own making, with every optional column filled.
FULL_ROW = {
    "id_local": "AUD-P1",
    "nom_lieu": "Parking du collège",
    "ad_lieu": "3 rue des Dunes, 62610 Ardres",
    "com_lieu": "Ardres",
    "insee": "62038",
    "type": "Parking",
    "date_maj": "2026-02-14",
    "ouvert": "True",
    "source": "200041010",
    "Xlong": "1.977",
    "Ylat": "50.854",
    "nbre_pl": "12",
    "nbre_pmr": "1",
    "duree": "0",
    "horaires": "Mo-Sa 07:00-20:00",
    "proprio": "Commune d'Ardres",
    "lumiere": "0",
    "comm": "",
}


def table_schema_problems(text: str) -> list[str]:
    """Every violation of the BNLC schema by a CSV text: the header, then each row's cells."""
    rows = list(csv.reader(io.StringIO(text)))
    names = list(bnlc_columns())
    problems = [] if rows[0] == names else [f"header {rows[0]} is not {names}"]
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != len(names):
            problems.append(f"row {number}: {len(row)} cells for {len(names)} fields")
            continue
        cells = dict(zip(names, row, strict=True))
        problems.extend(f"row {number}, {p}" for p in bnlc_row_problems(cells))
    return problems


def shipped() -> Network:
    return load_network(SHIPPED)


def test_the_schema_accepts_a_full_row_and_the_cells_the_types_allow() -> None:
    assert bnlc_row_problems(FULL_ROW) == []
    for cells in (
        {"Xlong": "-180", "Ylat": "90.0", "ouvert": "1", "lumiere": "FALSE"},
        {"Xlong": "179.999999", "Ylat": "-89.5", "insee": "2A004", "nbre_pl": "", "source": ""},
        {"type": "Délaissé routier", "ouvert": "false", "lumiere": ""},
    ):
        assert bnlc_row_problems({**FULL_ROW, **cells}) == [], cells


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
        "nom_lieu: '' should be non-empty": broken(nom_lieu=""),
        "insee: '6219' does not match": broken(insee="6219"),
        "type: 'Aire' is not one of": broken(type="Aire"),
        "Xlong: '181' does not match": broken(Xlong="181"),
        "Ylat: '-91' does not match": broken(Ylat="-91"),
        "date_maj: '01/03/2026' does not match": broken(date_maj="01/03/2026"),
        "ouvert: 'oui' does not match": broken(ouvert="oui"),
        "nbre_pl: '3.5' does not match": broken(nbre_pl="3.5"),
        "nbre_pmr: '-1' does not match": broken(nbre_pmr="-1"),
        "source: '12345678' does not match": broken(source="12345678"),
        "lumiere: 'yes' does not match": broken(lumiere="yes"),
    }
    for expected, text in cases.items():
        found = table_schema_problems(text)
        assert any(expected in problem for problem in found), (expected, found)
    swapped = good.replace("id_local,nom_lieu", "nom_lieu,id_local", 1)
    assert any("header" in problem for problem in table_schema_problems(swapped))
    assert bnlc_row_problems({**FULL_ROW, "extra": "x"}) != []
    assert bnlc_row_problems({k: v for k, v in FULL_ROW.items() if k != "comm"}) != []


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


def _broken_insee() -> Network:
    """The shipped line with the Calais stops' INSEE code cut short (as if mistyped)."""
    network = shipped()
    line = network.lines[0]
    directions = tuple(
        dataclasses.replace(
            d,
            stops=tuple(
                dataclasses.replace(s, insee="6219") if s.insee == "62193" else s for s in d.stops
            ),
        )
        for d in line.directions
    )
    return dataclasses.replace(network, lines=(dataclasses.replace(line, directions=directions),))


def test_an_invalid_row_is_reported_with_its_column_and_not_written(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    export = export_bnlc(_broken_insee(), date(2026, 3, 1))
    assert len(export.rows) == 5
    [(place, reports)] = export.invalid.items()
    assert reports == [
        f"place {place}: insee: '6219' does not match '^([013-9][0-9]|2[AB1-9])[0-9]{{3}}$'"
    ]
    monkeypatch.setattr(authority_cli, "_network", lambda settings: _broken_insee())
    out = tmp_path / "bnlc.csv"
    result = CliRunner().invoke(app, ["export", "bnlc", "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert f"place {place}: insee: '6219' does not match" in result.output
    assert "5 place(s)" in result.output
    text = out.read_text(encoding="utf-8")
    assert table_schema_problems(text) == []
    assert "Calais" not in {row["com_lieu"] for row in csv.DictReader(io.StringIO(text))}


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
