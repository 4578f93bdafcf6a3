"""Adapter: the line's stops as places of the Base nationale des lieux de covoiturage (BNLC v0.3.0).

One row per place: the two sides of the road of a town share one place (same line, name and
position). `type` is "Aire de covoiturage" for a place already registered in the BNLC (its
`bnlc_id` in lines.yaml) and "Auto-stop" otherwise (a roadside pick-up point, the BNLC type
used for such stops). `horaires` is the line's service hours in OpenStreetMap opening_hours
syntax ("PH off" when French public holidays close the line). Places without an INSEE code
cannot be published (the column is required): they are listed as skipped. Every row is checked
against the package's v0.3.0 row schema; an invalid one is reported with its column, not written.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from dispatcher.model import Line, Network, ServiceHours, Stop, TimeWindow, Weekday
from line_service.authority.csv_cells import safe_row
from line_service.authority.schemas import bnlc_columns, bnlc_row_problems

COLUMNS = bnlc_columns()  # the schema's order
NUMBER_COLUMNS = frozenset({"Xlong", "Ylat", "nbre_pl", "nbre_pmr"})  # number/integer in the schema
_OSM_DAYS = {
    Weekday.MON: "Mo",
    Weekday.TUE: "Tu",
    Weekday.WED: "We",
    Weekday.THU: "Th",
    Weekday.FRI: "Fr",
    Weekday.SAT: "Sa",
    Weekday.SUN: "Su",
}


def opening_hours(hours: ServiceHours | None) -> str:
    """The service hours in OSM opening_hours syntax: `Mo-Fr 06:30-09:30,16:00-19:30; PH off`."""
    if hours is None:
        return "24/7"
    groups: list[tuple[list[Weekday], tuple[TimeWindow, ...]]] = []
    for day in Weekday:
        windows = hours.windows.get(day, ())
        if not windows:
            continue
        last = groups[-1] if groups else None
        follows = last is not None and list(Weekday).index(last[0][-1]) + 1 == list(Weekday).index(
            day
        )
        if last is not None and follows and last[1] == windows:
            last[0].append(day)
        else:
            groups.append(([day], windows))
    rules = []
    for days, windows in groups:
        span = _OSM_DAYS[days[0]] + (f"-{_OSM_DAYS[days[-1]]}" if len(days) > 1 else "")
        times = ",".join(f"{w.start:%H:%M}-{w.end:%H:%M}" for w in windows)
        rules.append(f"{span} {times}")
    if hours.closed_dates:
        rules.append("PH off")
    return "; ".join(rules) or "off"


@dataclass
class BnlcExport:
    """Rows ready for the CSV, the stops left out (no INSEE code) and the invalid rows."""

    rows: list[dict[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    invalid: dict[str, list[str]] = field(default_factory=dict)  # id_local -> reports


def row_reports(row: dict[str, str]) -> list[str]:
    """`place <id_local>: <column>: <problem>` for each schema violation (empty when valid)."""
    return [f"place {row.get('id_local', '?')}: {problem}" for problem in bnlc_row_problems(row)]


def _place_rows(line: Line) -> dict[tuple[str, float, float], list[Stop]]:
    places: dict[tuple[str, float, float], list[Stop]] = {}
    for stop in line.all_stops():
        places.setdefault((stop.name, stop.lat, stop.lon), []).append(stop)
    return places


def export_bnlc(
    network: Network,
    updated_on: date,
    siren: str | None = None,
    owner: str | None = None,
) -> BnlcExport:
    """One BNLC row per place of every line; `siren` = the publishing authority (9 digits)."""
    export = BnlcExport()
    for line in network.lines:
        for (name, lat, lon), stops in _place_rows(line).items():
            insee = next((stop.insee for stop in stops if stop.insee), None)
            if insee is None:
                export.skipped.extend(stop.id for stop in stops)
                continue
            registered = next((stop.bnlc_id for stop in stops if stop.bnlc_id), None)
            codes = ", ".join(stop.code for stop in stops)
            row = {
                "id_local": f"{line.id}-{stops[0].id}",
                "nom_lieu": f"Arrêt de covoiturage {name} ({line.name})",
                "ad_lieu": "",
                "com_lieu": name,
                "insee": insee,
                "type": "Aire de covoiturage" if registered else "Auto-stop",
                "date_maj": updated_on.isoformat(),
                "ouvert": "true",
                "source": siren or "",
                "Xlong": f"{lon:.6f}",
                "Ylat": f"{lat:.6f}",
                "nbre_pl": "",
                "nbre_pmr": "",
                "duree": "",
                "horaires": opening_hours(line.service_hours),
                "proprio": owner or "",
                "lumiere": "",
                "comm": (
                    f"Ligne de covoiturage dynamique {line.name}, arrêts {codes}: "
                    "demande à la borne ou par SMS (code de l'arrêt puis destination)"
                    + (f"; lieu BNLC {registered}" if registered else "")
                ),
            }
            reports = row_reports(row)
            if reports:
                export.invalid[row["id_local"]] = reports
            else:
                export.rows.append(row)
    return export


def to_csv(rows: list[dict[str, str]]) -> str:
    """The CSV text: header in the schema's order, comma-separated, quoted where needed; no
    cell a spreadsheet would run as a formula (`csv_cells`)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(safe_row(row, NUMBER_COLUMNS) for row in rows)
    return buffer.getvalue()


def write_bnlc(rows: list[dict[str, str]], out: Path) -> None:
    """Write the CSV file (UTF-8)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(to_csv(rows), encoding="utf-8")
