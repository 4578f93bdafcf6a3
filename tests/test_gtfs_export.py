"""GTFS export: the feed's contents, the CLI, and zero ERROR notices from the canonical rules."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from dispatcher.model import Direction, Line
from dispatcher.request_machine import Cause, RequestState
from line_service.authority.gtfs_export import FeedOptions, build_feed, to_zip
from line_service.cli import app
from line_service.network.lines_file import load_network, parse_network
from line_service.storage.store import Store
from tests.support.gtfs_validation import START, errors, validate
from tests.support.requests import ride_request
from tests.support.service import write_lines_file

REPO = Path(__file__).resolve().parents[1]
NETWORK = load_network(REPO / "config" / "lines.yaml")
OPTIONS = FeedOptions(START, "carpool-line", "https://example.org/covoiturage")


def _five_minutes(_line: Line, _direction: Direction, _weekday: int, _hour: int) -> int:
    return 300


def _read(archive: bytes) -> dict[str, list[dict[str, str]]]:
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        return {
            name: list(csv.DictReader(io.StringIO(opened.read(name).decode("utf-8"))))
            for name in opened.namelist()
        }


def test_the_exported_feed_has_no_error_notice(tmp_path: Path) -> None:
    notices = validate(to_zip(build_feed(NETWORK, OPTIONS, _five_minutes)), tmp_path)
    assert errors(notices) == {}
    # 1550 (carpooling line, transport.data.gouv.fr) is outside the basic route types.
    assert notices == {"WARNING unexpected_enum_value": 2}
    bus = FeedOptions(START, "carpool-line", "https://example.org", route_type=3)
    assert validate(to_zip(build_feed(NETWORK, bus, _five_minutes)), tmp_path / "bus") == {}


def test_a_line_open_at_all_hours_runs_every_day_all_day(tmp_path: Path) -> None:
    always = load_network(write_lines_file(tmp_path))
    archive = to_zip(build_feed(always, OPTIONS, _five_minutes))
    feed = _read(archive)
    assert "calendar_dates.txt" not in feed  # no service hours: holidays are open too
    [daily] = feed["calendar.txt"]
    assert daily["service_id"] == "calais-dunkerque:daily"
    assert {daily[day] for day in ("monday", "saturday", "sunday")} == {"1"}
    first = [r for r in feed["frequencies.txt"] if r["trip_id"].endswith("to-dunkerque:daily:0000")]
    assert (first[0]["start_time"], first[-1]["end_time"], len(first)) == (
        "00:00:00",
        "24:00:00",
        24,
    )
    assert errors(validate(archive, tmp_path / "report")) == {}


def test_days_that_do_not_follow_each_other_are_named_each() -> None:
    text = (
        (REPO / "config" / "lines.yaml")
        .read_text()
        .replace(
            'mon-fri: ["06:30-09:30", "16:00-19:30"]',
            'mon: ["06:30-09:30"]\n      wed: ["06:30-09:30"]\n      tue: ["07:00-09:00"]',
        )
    )
    feed = build_feed(parse_network(text), OPTIONS, _five_minutes)
    assert [row["service_id"] for row in feed["calendar.txt"]] == [
        "calais-dunkerque:mon+wed",
        "calais-dunkerque:tue",
    ]


def test_a_broken_feed_does_get_error_notices(tmp_path: Path) -> None:
    feed = build_feed(NETWORK, OPTIONS, _five_minutes)
    feed["stop_times.txt"][0]["stop_id"] = "nowhere"  # a stop that stops.txt does not have
    feed["frequencies.txt"][0]["headway_secs"] = "0"  # must be positive
    del feed["calendar.txt"], feed["calendar_dates.txt"]  # no calendar at all
    notices = errors(validate(to_zip(feed), tmp_path))
    assert notices["ERROR foreign_key_violation"] >= 1
    assert notices["ERROR number_out_of_range"] == 1
    assert "ERROR missing_calendar_and_calendar_date_files" in notices


def test_routes_stops_calendar_trips_and_frequencies() -> None:
    feed = _read(to_zip(build_feed(NETWORK, OPTIONS, _five_minutes)))
    routes = {row["route_id"]: row for row in feed["routes.txt"]}
    assert set(routes) == {"calais-dunkerque:to-dunkerque", "calais-dunkerque:to-calais"}
    assert {row["route_type"] for row in routes.values()} == {"1550"}
    assert feed["agency.txt"][0]["agency_name"] == "Pass Pass Covoiturage (démo)"
    calais = next(row for row in feed["stops.txt"] if row["stop_code"] == "CAL")
    assert (calais["stop_lat"], calais["stop_lon"]) == ("50.948100", "1.856400")
    assert feed["calendar.txt"] == [
        {
            "service_id": "calais-dunkerque:mon-fri",
            **dict.fromkeys(("monday", "tuesday", "wednesday", "thursday", "friday"), "1"),
            **dict.fromkeys(("saturday", "sunday"), "0"),
            "start_date": "20261201",
            "end_date": "20271130",
        }
    ]
    closed = {row["date"] for row in feed["calendar_dates.txt"]}
    assert {"20261225", "20270101", "20270714"} <= closed  # Fri, Fri, Wed: closed holidays
    assert "20270508" not in closed  # 8 May 2027 is a Saturday: no service to remove
    assert {row["exception_type"] for row in feed["calendar_dates.txt"]} == {"2"}
    trips = [row["trip_id"] for row in feed["trips.txt"]]
    assert trips == [
        "calais-dunkerque:to-dunkerque:mon-fri:0630",
        "calais-dunkerque:to-dunkerque:mon-fri:1600",
        "calais-dunkerque:to-calais:mon-fri:0630",
        "calais-dunkerque:to-calais:mon-fri:1600",
    ]
    morning = [r for r in feed["stop_times.txt"] if r["trip_id"] == trips[0]]
    assert [r["arrival_time"] for r in morning][:3] == [
        "06:30:00",
        "06:38:00",
        "06:53:00",
    ]  # km 8, 23
    assert {r["timepoint"] for r in morning} == {"0"}
    assert (morning[0]["drop_off_type"], morning[-1]["pickup_type"]) == ("1", "1")
    slots = [
        (r["start_time"], r["end_time"], r["headway_secs"], r["exact_times"])
        for r in feed["frequencies.txt"]
        if r["trip_id"] == trips[0]
    ]
    assert slots == [
        ("06:30:00", "07:00:00", "300", "0"),
        ("07:00:00", "08:00:00", "300", "0"),
        ("08:00:00", "09:00:00", "300", "0"),
        ("09:00:00", "09:30:00", "300", "0"),
    ]


def test_cli_writes_the_feed_with_the_history_as_headway(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path}/carpool.sqlite3"
    store = Store(database_url)
    store.create_schema()
    # Ten waits Calais → Dunkerque on Tuesdays at 07:xx (Paris): 2, 4, … 20 min; median 11 min.
    tuesday = datetime(2026, 11, 24, 6, 5, tzinfo=UTC)
    for index in range(10):
        asked = tuesday + timedelta(minutes=index)
        wait = timedelta(minutes=2 * (index + 1))
        request_id = f"r{index}"
        kwargs: dict[str, Any] = {"stop": "calais-est", "destination": "dunkerque-est"}
        done = ride_request(
            request_id,
            asked + wait,
            created_at=asked,
            state=RequestState.PICKED_UP,
            cause=Cause.CODE_VALIDATED,
            **kwargs,
        )
        store.save(
            [(ride_request(request_id, asked, **kwargs), None), (done, RequestState.WAITING)]
        )
    store.dispose()
    out = tmp_path / "feed.zip"
    env = {
        "CARPOOL_DATABASE_URL": database_url,
        "CARPOOL_LINES_FILE": str(REPO / "config/lines.yaml"),
    }
    result = CliRunner().invoke(
        app, ["export", "gtfs", "--out", str(out), "--start", "2026-12-01"], env=env
    )
    assert result.exit_code == 0, result.output
    assert "2 routes, 12 stops, 4 trips" in result.output
    feed = _read(out.read_bytes())
    tuesday_7 = next(
        r
        for r in feed["frequencies.txt"]
        if r["trip_id"].endswith("to-dunkerque:mon-fri:0630") and r["start_time"] == "07:00:00"
    )
    # The service's weekday group starts on Monday: Monday's history is thin, so the estimate
    # widens to the hour across weekdays, where Tuesday's ten waits are.
    assert tuesday_7["headway_secs"] == str(11 * 60)
    assert errors(validate(out.read_bytes(), tmp_path)) == {}
