"""lines.yaml: the shipped Calais–Dunkerque file, every kind of error with its path, and fuzzing."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.model import (
    DeviceKind,
    LineId,
    LineTuning,
    Network,
    SignGeometry,
    StopId,
    TimeWindow,
    Weekday,
)
from dispatcher.service_calendar import is_open
from line_service.network.lines_file import LinesFileError, load_network, parse_network

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "config" / "lines.yaml"
# Positions (lat, lon) of the line's places in the national consolidated BNLC file.
BNLC_PLACES = {"62548-C-001": (50.94748, 1.965316), "59640-C-001": (51.017566, 2.321669)}
PARIS = ZoneInfo("Europe/Paris")


def _stop(stop_id: str, code: str, lat: float, *, boarding: bool = True) -> dict[str, Any]:
    stop: dict[str, Any] = {"id": stop_id, "name": stop_id.title(), "code": code}
    stop.update(lat=lat, lon=2.0)
    if boarding:
        stop["terminal"] = f"t-{stop_id}"
        stop["signs"] = [{"id": f"pmv-{stop_id}-1", "distance_upstream_m": 200}]
    return stop


def _document() -> dict[str, Any]:
    """A small valid file: two directions of three stops."""
    return {
        "lines": [
            {
                "id": "a-c",
                "name": "A ⇄ C",
                "timezone": "Europe/Paris",
                "wait_guarantee_minutes": 15,
                "service_hours": {"mon-fri": ["06:30-09:30", "16:00-19:30"]},
                "directions": [
                    {
                        "id": "to-c",
                        "name": "C",
                        "stops": [
                            _stop("a-east", "AAE", 50.0),
                            _stop("b-east", "BBE", 50.1),
                            _stop("c-east", "CCE", 50.2, boarding=False),
                        ],
                    },
                    {
                        "id": "to-a",
                        "name": "A",
                        "stops": [
                            _stop("c-west", "CCW", 50.2),
                            _stop("b-west", "BBW", 50.1),
                            _stop("a-west", "AAW", 50.0, boarding=False),
                        ],
                    },
                ],
            }
        ]
    }


def _dump(data: object) -> str:
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _problems(data: object) -> list[str]:
    with pytest.raises(LinesFileError) as caught:
        parse_network(_dump(data))
    return caught.value.problems


def _stop_of(document: dict[str, Any], direction: int, stop: int) -> dict[str, Any]:
    found: dict[str, Any] = document["lines"][0]["directions"][direction]["stops"][stop]
    return found


# --- the shipped file ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> Network:
    return load_network(SHIPPED)


def test_shipped_file_has_the_calais_dunkerque_line(shipped: Network) -> None:
    line = shipped.line(LineId("calais-dunkerque"))
    assert line is not None
    assert (line.name, line.timezone) == ("Calais ⇄ Dunkerque", "Europe/Paris")
    assert [direction.id for direction in line.directions] == ["to-dunkerque", "to-calais"]
    towns = ["Calais", "Marck", "Gravelines", "Loon-Plage", "Grande-Synthe", "Dunkerque"]
    to_dunkerque, to_calais = line.directions
    assert [stop.name for stop in to_dunkerque.stops] == towns
    assert [stop.name for stop in to_calais.stops] == towns[::-1]
    assert [stop.km for stop in to_dunkerque.stops] == [0, 8, 23, 31, 38, 43]
    assert [stop.km for stop in to_calais.stops] == [0, 5, 12, 20, 35, 43]
    assert line.tuning == LineTuning(
        wait_guarantee=timedelta(minutes=15),
        max_wait=timedelta(minutes=30),
        sign_lease=timedelta(seconds=90),
        result_screen_time=timedelta(seconds=30),
        max_waiting_per_stop=6,
        terminal_reserve=2,
        max_pages=3,
    )
    assert line.has_fallback  # a taxi by SMS at the wait guarantee


def test_shipped_codes_are_unique_and_found_by_sms(shipped: Network) -> None:
    codes = [stop.code for line in shipped.lines for stop in line.all_stops()]
    to_dunkerque = ["CAL", "MRK", "GRV", "LPL", "GSY", "DKQ"]
    to_calais = ["DUN", "GSC", "LPC", "GRC", "MKC", "CLS"]
    assert codes == [*to_dunkerque, *to_calais]
    assert len({code.upper() for code in codes}) == len(codes)
    found = shipped.stop_by_code(" cal ")
    assert found is not None
    assert found[1].id == StopId("calais-est")


def test_every_boarding_stop_has_a_terminal_and_signs_upstream(shipped: Network) -> None:
    for line in shipped.lines:
        for direction in line.directions:
            *boarding, last = direction.stops
            assert last.terminal is None
            assert last.signs == ()
            for stop in boarding:
                assert stop.terminal == f"t-{stop.id}"
                assert 1 <= len(stop.signs) <= 2
                for number, sign in enumerate(stop.signs, start=1):
                    assert sign.id == f"pmv-{stop.id}-{number}"
                    assert 150 <= sign.distance_upstream_m <= 300
                    assert sign.geometry == SignGeometry(rows=3, columns=18)
                place = shipped.device(DeviceKind.TERMINAL, stop.terminal)
                assert place is not None
                assert (place.line_id, place.stop_id) == (line.id, stop.id)


def test_sign_distances_follow_road_speed() -> None:
    upstream = {50: 150, 70: 200, 80: 250, 90: 300}
    raw = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    signs = [
        sign
        for direction in raw["lines"][0]["directions"]
        for stop in direction["stops"]
        for sign in stop.get("signs", [])
    ]
    assert len(signs) >= 10
    for sign in signs:
        assert sign["distance_upstream_m"] == upstream[sign["road_speed_kmh"]], sign["id"]


def test_bnlc_places_match_the_national_base() -> None:
    raw = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    stops = [stop for d in raw["lines"][0]["directions"] for stop in d["stops"]]
    registered = [stop for stop in stops if "bnlc_id" in stop]
    assert {stop["bnlc_id"] for stop in registered} == set(BNLC_PLACES)
    for stop in registered:
        assert (stop["lat"], stop["lon"]) == BNLC_PLACES[stop["bnlc_id"]]


@pytest.mark.parametrize(
    ("local", "expected"),
    [
        (datetime(2025, 3, 3, 7, 0), True),  # Monday morning peak
        (datetime(2025, 3, 3, 12, 0), False),  # Monday noon
        (datetime(2025, 3, 3, 19, 30), False),  # the window's end is exclusive
        (datetime(2025, 3, 7, 17, 0), True),  # Friday evening peak
        (datetime(2025, 3, 8, 7, 0), False),  # Saturday
        (datetime(2025, 3, 9, 17, 0), False),  # Sunday
    ],
)
def test_shipped_service_hours(shipped: Network, local: datetime, expected: bool) -> None:
    line = shipped.lines[0]
    assert is_open(line, local.replace(tzinfo=PARIS)) is expected


# --- conversion ---------------------------------------------------------------------------


def test_service_hours_expand_per_weekday() -> None:
    document = _document()
    document["lines"][0]["service_hours"] = {
        "mon,wed": ["12:00-13:00"],
        "mon-fri": ["07:00-09:00"],
        "sat": ["10:00-11:00"],
    }
    hours = parse_network(_dump(document)).lines[0].service_hours
    assert hours is not None
    morning, noon = TimeWindow(*_times("07:00", "09:00")), TimeWindow(*_times("12:00", "13:00"))
    assert hours.windows[Weekday.MON] == (morning, noon)
    assert hours.windows[Weekday.TUE] == (morning,)
    assert hours.windows[Weekday.SAT] == (TimeWindow(*_times("10:00", "11:00")),)
    assert hours.windows[Weekday.SUN] == ()


def _times(start: str, end: str) -> tuple[Any, Any]:
    return (datetime.strptime(start, "%H:%M").time(), datetime.strptime(end, "%H:%M").time())


def test_optional_keys_absent_give_defaults() -> None:
    document = _document()
    line_data = document["lines"][0]
    del line_data["service_hours"], line_data["wait_guarantee_minutes"]
    line = parse_network(_dump(document)).lines[0]
    assert line.service_hours is None
    assert line.tuning == LineTuning(wait_guarantee=None)
    assert is_open(line, datetime(2025, 3, 8, 3, 0, tzinfo=PARIS))


def test_tuning_and_geometry_are_read() -> None:
    document = _document()
    document["lines"][0]["tuning"] = {
        "sign_lease_seconds": 60,
        "max_pages": 2,
        "terminal_reserve": 0,
    }
    _stop_of(document, 0, 0)["signs"][0]["geometry"] = {"rows": 2, "columns": 16}
    line = parse_network(_dump(document)).lines[0]
    assert line.tuning.terminal_reserve == 0
    assert line.tuning.sign_lease == timedelta(seconds=60)
    assert line.tuning.max_pages == 2
    assert line.tuning.max_wait == timedelta(minutes=30)
    assert line.directions[0].stops[0].signs[0].geometry == SignGeometry(rows=2, columns=16)


def test_km_defaults_to_distance_along_the_stops() -> None:
    text = SHIPPED.read_text(encoding="utf-8")
    without_km = "\n".join(row for row in text.splitlines() if not row.strip().startswith("km:"))
    line = parse_network(without_km).lines[0]
    kms = [stop.km for stop in line.directions[0].stops]
    assert kms[0] == 0.0
    assert kms[1] == pytest.approx(7.6, abs=0.1)  # Calais-Est to Marck as the crow flies
    assert kms == sorted(kms)
    assert all(round(km, 1) == km for km in kms)


# --- errors, each with its exact path ------------------------------------------------------


def test_missing_key() -> None:
    document = _document()
    del _stop_of(document, 1, 1)["code"]
    assert _problems(document) == ["lines[0].directions[1].stops[1].code: required key is missing"]


def test_extra_key() -> None:
    document = _document()
    _stop_of(document, 0, 2)["colour"] = "red"
    assert _problems(document) == ["lines[0].directions[0].stops[2].colour: unknown key"]


def test_bad_slug() -> None:
    document = _document()
    _stop_of(document, 0, 0)["id"] = "A East"
    assert _problems(document) == [
        "lines[0].directions[0].stops[0].id: expected an id of lowercase letters, digits and "
        "'-', got 'A East'"
    ]


def test_duplicate_code_across_directions_ignores_case() -> None:
    document = _document()
    _stop_of(document, 1, 0)["code"] = "AAE"
    _stop_of(document, 1, 1)["code"] = "Aae"
    assert _problems(document) == [
        "lines[0].directions[1].stops[1].code: expected a code of 2-6 capital letters or digits,"
        " starting with a letter, got 'Aae'",
        "lines[0].directions[1].stops[0].code: duplicate stop code 'AAE' "
        "(first at lines[0].directions[0].stops[0].code)",
        "lines[0].directions[1].stops[1].code: duplicate stop code 'Aae' "
        "(first at lines[0].directions[0].stops[0].code)",
    ]


def test_duplicate_sign_and_terminal_ids() -> None:
    document = _document()
    _stop_of(document, 1, 0)["signs"][0]["id"] = "pmv-a-east-1"
    _stop_of(document, 1, 1)["terminal"] = "t-b-east"
    assert _problems(document) == [
        "lines[0].directions[1].stops[0].signs[0].id: duplicate sign id 'pmv-a-east-1' "
        "(first at lines[0].directions[0].stops[0].signs[0].id)",
        "lines[0].directions[1].stops[1].terminal: duplicate terminal id 't-b-east' "
        "(first at lines[0].directions[0].stops[1].terminal)",
    ]


def test_duplicate_line_direction_and_stop_ids() -> None:
    document = _document()
    second_line = _document()["lines"][0]
    for number, stop in enumerate(s for d in second_line["directions"] for s in d["stops"]):
        stop.update(code=f"ZZ{number}", terminal=None, signs=[])
    document["lines"].append(second_line)
    document["lines"][0]["directions"][1]["id"] = "to-c"
    _stop_of(document, 1, 2)["id"] = "a-east"
    assert _problems(document) == [
        "lines[0].directions[1].id: duplicate direction id 'to-c' "
        "(first at lines[0].directions[0].id)",
        "lines[0].directions[1].stops[2].id: duplicate stop id in this line 'a-east' "
        "(first at lines[0].directions[0].stops[0].id)",
        "lines[1].id: duplicate line id 'a-c' (first at lines[0].id)",
    ]


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("09:30-06:30", "window '09:30-06:30' must start before it ends (same day)"),
        ("06:30-06:30", "window '06:30-06:30' must start before it ends (same day)"),
        ("6:30-9:30", "'6:30-9:30' is not a window like 06:30-09:30 (24-hour HH:MM-HH:MM)"),
        ("24:00-25:00", "'24:00-25:00' is not a window like 06:30-09:30 (24-hour HH:MM-HH:MM)"),
    ],
)
def test_bad_time_window(window: str, message: str) -> None:
    document = _document()
    document["lines"][0]["service_hours"]["mon-fri"][1] = window
    assert _problems(document) == [f"lines[0].service_hours.mon-fri[1]: {message}"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("mon-frx", "unknown day 'frx'; use mon, tue, wed, thu, fri, sat, sun"),
        ("fri-mon", "range 'fri-mon' goes backwards; write it as two items"),
        ("mon,mon", "mon is named twice"),
        ("weekdays", "'weekdays' is not a day (mon..sun) or a range like mon-fri"),
    ],
)
def test_bad_day_key(key: str, message: str) -> None:
    document = _document()
    document["lines"][0]["service_hours"] = {key: ["06:30-09:30"]}
    assert _problems(document) == [f"lines[0].service_hours.{key}: invalid key: {message}"]


def test_overlapping_windows_across_keys() -> None:
    document = _document()
    document["lines"][0]["service_hours"]["wed"] = ["09:00-10:00"]
    assert _problems(document) == [
        "lines[0].service_hours: on wed, 06:30-09:30 overlaps 09:00-10:00"
    ]


def test_yaml_syntax_error_gives_line_and_column() -> None:
    with pytest.raises(LinesFileError) as caught:
        parse_network("lines:\n  - id: [unclosed\n    name: x\n", source="bad.yaml")
    assert caught.value.problems == [
        "line 3, column 9: YAML syntax error: while parsing a flow sequence; "
        "did not find expected ',' or ']'"
    ]
    assert caught.value.source == "bad.yaml"
    assert str(caught.value).startswith("bad.yaml: 1 problem\n  - line 3, column 9:")


def test_a_key_written_twice_is_an_error() -> None:
    with pytest.raises(LinesFileError) as caught:
        parse_network("lines:\n  - id: a\n    id: b\n")
    assert caught.value.problems == [
        "line 3, column 5: YAML syntax error: while constructing a mapping; "
        "found duplicate key 'id'"
    ]


@pytest.mark.parametrize("text", ["", "\n", "# nothing yet\n", "null\n", "---\n"])
def test_empty_file(text: str) -> None:
    with pytest.raises(LinesFileError) as caught:
        parse_network(text)
    assert caught.value.problems == ["(root): the file is empty; expected a 'lines' mapping"]


def test_list_where_a_mapping_is_expected() -> None:
    document = _document()
    document["lines"][0]["directions"][1]["stops"][0] = ["c-west", "CCW"]
    assert _problems(document) == [
        "lines[0].directions[1].stops[0]: expected a mapping, got a list"
    ]
    assert _problems([document]) == ["(root): expected a mapping, got a list"]
    assert _problems({"lines": {"id": "a-c"}}) == ["lines: expected a list, got a mapping"]


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("lat", "50.9", "expected a number, got a string"),
        ("lat", True, "expected a number, got a boolean"),
        ("lat", 91.5, "Input should be less than or equal to 90"),
        ("code", 123, "expected a string, got an integer"),
        ("code", "AIDE", "'AIDE' is an SMS keyword; choose another code"),
        ("terminal", "T 1", "expected an id of lowercase letters, digits and '-', got 'T 1'"),
        ("km", "8 km", "expected a number, got a string"),
    ],
)
def test_mistyped_stop_values(key: str, value: object, message: str) -> None:
    document = _document()
    _stop_of(document, 0, 1)[key] = value
    assert _problems(document) == [f"lines[0].directions[0].stops[1].{key}: {message}"]


def test_mistyped_line_values() -> None:
    document = _document()
    line_data = document["lines"][0]
    line_data.update(timezone="Europe/Calais", wait_guarantee_minutes=15.5)
    line_data["tuning"] = {"max_pages": 0, "sign_lease": 90}
    _stop_of(document, 0, 0)["signs"][0]["distance_upstream_m"] = 250.5
    assert _problems(document) == [
        "lines[0].timezone: unknown time zone 'Europe/Calais'; use an IANA name like Europe/Paris",
        "lines[0].wait_guarantee_minutes: expected an integer, got a number",
        "lines[0].tuning.max_pages: Input should be greater than or equal to 1",
        "lines[0].tuning.sign_lease: unknown key",
        "lines[0].directions[0].stops[0].signs[0].distance_upstream_m: "
        "expected an integer, got a number",
    ]


def test_direction_rules() -> None:
    document = _document()
    directions = document["lines"][0]["directions"]
    directions[0]["stops"] = directions[0]["stops"][:1]
    last = _stop_of(document, 1, 2)
    last.update(terminal="t-a-west", signs=[{"id": "pmv-a-west-1", "distance_upstream_m": 150}])
    assert _problems(document) == [
        "lines[0].directions[0].stops: expected at least 2 items, got 1",
        "lines[0].directions[0].stops[0].terminal: the last stop of a direction takes no "
        "terminal: no ride starts there",
        "lines[0].directions[0].stops[0].signs: the last stop of a direction takes no "
        "signs: no ride starts there",
        "lines[0].directions[1].stops[2].terminal: the last stop of a direction takes no "
        "terminal: no ride starts there",
        "lines[0].directions[1].stops[2].signs: the last stop of a direction takes no "
        "signs: no ride starts there",
    ]


def test_km_rules_and_guarantee_before_expiry() -> None:
    document = _document()
    for index, km in enumerate([0, 9, 9]):
        _stop_of(document, 0, index)["km"] = km
    _stop_of(document, 1, 0)["km"] = 0
    document["lines"][0]["wait_guarantee_minutes"] = 30
    assert _problems(document) == [
        "lines[0].wait_guarantee_minutes: must be shorter than max_wait_minutes (30), "
        "or requests expire before the guarantee",
        "lines[0].directions[0].stops[2].km: 9 km is not beyond the previous stop (9 km); "
        "km grows along the direction",
        "lines[0].directions[1].stops[1].km: missing while other stops of this direction "
        "have km; give all or none",
        "lines[0].directions[1].stops[2].km: missing while other stops of this direction "
        "have km; give all or none",
    ]


def test_every_problem_is_reported_at_once() -> None:
    document = _document()
    del document["lines"][0]["name"]
    _stop_of(document, 0, 0)["id"] = "Bad"
    _stop_of(document, 0, 1)["code"] = "CCW"
    _stop_of(document, 1, 1)["signs"] = {"id": "pmv-x"}
    document["lines"][0]["service_hours"] = {"mon-fri": ["19:00-07:00"]}
    assert sorted(_problems(document)) == sorted(
        [
            "lines[0].name: required key is missing",
            "lines[0].service_hours.mon-fri[0]: window '19:00-07:00' must start before it "
            "ends (same day)",
            "lines[0].directions[0].stops[0].id: expected an id of lowercase letters, digits "
            "and '-', got 'Bad'",
            "lines[0].directions[1].stops[1].signs: expected a list, got a mapping",
            "lines[0].directions[1].stops[0].code: duplicate stop code 'CCW' "
            "(first at lines[0].directions[0].stops[1].code)",
        ]
    )


def test_unreadable_files(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"
    with pytest.raises(LinesFileError) as caught:
        load_network(missing)
    assert caught.value.problems == ["(file): cannot read the file: No such file or directory"]
    assert str(missing) in str(caught.value)
    with pytest.raises(LinesFileError) as caught:
        load_network(tmp_path)
    assert caught.value.problems[0].startswith("(file): cannot read the file:")
    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("lines: [{name: Gravelines-\xe9}]".encode("latin-1"))
    with pytest.raises(LinesFileError) as caught:
        load_network(latin1)
    assert caught.value.problems == ["(file): not UTF-8 text (bad byte at offset 26)"]


# --- fuzzing: a Network or a LinesFileError, never anything else ----------------------------

_scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)


def _containers_of(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Lists and mappings of YAML-able data (a named function: hypothesis inspects lambdas)."""
    return st.lists(children, max_size=4) | st.dictionaries(
        st.text(max_size=12) | st.integers(), children, max_size=4
    )


_yaml_data = st.recursive(
    _scalars,
    _containers_of,
    max_leaves=20,
)


def _parses_or_reports(text: str) -> None:
    result: Network | LinesFileError
    try:
        result = parse_network(text)
    except LinesFileError as exc:
        result = exc
    if isinstance(result, LinesFileError):
        assert result.problems
        assert all(problem.strip() for problem in result.problems)


@settings(database=None, deadline=None)
@given(st.text())
def test_arbitrary_text_never_crashes(text: str) -> None:
    _parses_or_reports(text)


@settings(database=None, deadline=None)
@given(_yaml_data)
def test_arbitrary_yaml_data_never_crashes(data: object) -> None:
    _parses_or_reports(_dump(data))


def _paths(node: object, prefix: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


_VALID_PATHS = _paths(_document())[1:]


@settings(database=None, deadline=None)
@given(st.sampled_from(_VALID_PATHS), _yaml_data)
def test_a_valid_file_with_one_part_replaced_never_crashes(
    path: tuple[str | int, ...], replacement: object
) -> None:
    document: Any = _document()
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = replacement
    _parses_or_reports(_dump(document))
