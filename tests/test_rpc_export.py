"""RPC export: clean trips with known phones become journeys valid against the registry's schema."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]  # no stubs are published
import pytest
from typer.testing import CliRunner

from dispatcher.model import LineId, Network
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest, Source
from line_service.authority.rpc_export import (
    SKIP_FLAGGED,
    SKIP_NO_DRIVER_PHONE,
    SKIP_NO_PASSENGER_PHONE,
    export_rpc,
)
from line_service.authority.trips import TripBook, draft_trip
from line_service.cli import app
from line_service.network.lines_file import load_network
from line_service.storage.store import Store
from tests.support.requests import ride_request
from tests.support.specs import SPECS

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "config" / "lines.yaml"
SCHEMA = SPECS / "rpc/journey_create_v3.derived.schema.json"
EXAMPLE = SPECS / "rpc/example_journey_line_trip.json"
T0 = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)  # Monday 2 March 2026, 07:30 in Paris


def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())


def errors_of(journey: dict[str, Any]) -> list[str]:
    """Schema errors, and `date-time` (jsonschema skips it without rfc3339-validator)."""
    found = [f"{list(e.absolute_path)}: {e.message}" for e in validator().iter_errors(journey)]
    for end in ("start", "end"):
        stamp = str(journey.get(end, {}).get("datetime"))
        if re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)", stamp) is None:
            found.append(f"{end}.datetime: {stamp!r} is not RFC 3339")
    return found


def picked_up(
    n: int, at: datetime, phone: str | None, driver: str, origin: str = "marck-est"
) -> RideRequest:
    return ride_request(
        f"r{n}",
        at,
        stop=origin,
        state=RequestState.PICKED_UP,
        cause=Cause.CODE_VALIDATED,
        phone=phone,
        source=Source(Channel.SMS if phone else Channel.TERMINAL, f"s{n}"),
        code="1111",
        created_at=at - timedelta(minutes=3),
        driver_ref=driver,
    )


@pytest.fixture(scope="module")
def network() -> Network:
    return load_network(SHIPPED)


@pytest.fixture
def seeded(database_url: str, network: Network) -> Iterator[Store]:
    """Six trips: two clean (one car, two riders), one flagged, two without phones, one in April."""
    store = Store(database_url)
    store.create_schema()
    line = network.line(LineId("calais-dunkerque"))
    assert line is not None
    book = TripBook(store)
    seeds = [
        picked_up(1, T0, "+33612345601", "+33699887766"),
        picked_up(2, T0 + timedelta(minutes=1), "+33612345602", "+33699887766"),
        picked_up(3, T0 + timedelta(minutes=20), "+33612345601", "+33699887766", "gravelines-est"),
        picked_up(4, T0 + timedelta(hours=2), None, "+33699887766"),
        picked_up(5, T0 + timedelta(hours=3), "+33612345605", "demo-driver-3"),
        picked_up(6, datetime(2026, 4, 1, 6, 0, tzinfo=UTC), "+33612345606", "+33699887766"),
    ]
    for request in seeds:
        draft = draft_trip(line, request, None)
        assert draft is not None
        book.record(draft)
    yield store
    store.dispose()


def test_the_schema_and_its_example_agree() -> None:
    assert errors_of(json.loads(EXAMPLE.read_text(encoding="utf-8"))) == []


def test_exported_journeys_are_valid_and_only_the_clean_identified_ones(
    seeded: Store, network: Network
) -> None:
    export = export_rpc(seeded, network, date(2026, 3, 1), date(2026, 3, 31))
    assert len(export.journeys) == 2
    for journey in export.journeys:
        assert errors_of(journey) == []
    assert dict(export.skipped) == {
        SKIP_FLAGGED: 1,
        SKIP_NO_PASSENGER_PHONE: 1,
        SKIP_NO_DRIVER_PHONE: 1,
    }
    first, second = export.journeys
    assert first["operator_trip_id"] == second["operator_trip_id"]  # one car, two riders
    assert first["operator_journey_id"] != second["operator_journey_id"]
    assert first["operator_class"] == "C"
    assert first["distance"] == 35000
    assert first["start"] == {"datetime": "2026-03-02T06:30:00Z", "lat": 50.94748, "lon": 1.965316}
    assert first["end"]["datetime"] == "2026-03-02T07:05:00Z"
    assert first["passenger"]["identity"]["phone_trunc"] == "+336123456"
    assert first["driver"]["identity"]["phone_trunc"] == "+336998877"
    assert first["driver"]["revenue"] == 200
    assert first["passenger"]["contribution"] == 0
    # Only the truncated numbers the registry asks for: no whole phone number leaves the service.
    whole_numbers = re.findall(r"\+33\d{9}", json.dumps(export.journeys))
    assert whole_numbers == []


def test_the_period_is_in_local_days(seeded: Store, network: Network) -> None:
    april = export_rpc(seeded, network, date(2026, 4, 1), date(2026, 4, 30))
    assert len(april.journeys) == 1
    assert errors_of(april.journeys[0]) == []


def test_the_command_writes_a_json_array_of_valid_journeys(
    seeded: Store, database_url: str, tmp_path: Path
) -> None:
    out = tmp_path / "rpc.json"
    env = {"CARPOOL_DATABASE_URL": database_url, "CARPOOL_LINES_FILE": str(SHIPPED)}
    result = CliRunner().invoke(
        app,
        ["export", "rpc", "--from", "2026-03-01", "--to", "2026-03-31", "--out", str(out)],
        env=env,
    )
    assert result.exit_code == 0, result.output
    assert "2 journey(s)" in result.output
    assert "flagged by the anti-abuse rules" in result.output
    journeys = json.loads(out.read_text(encoding="utf-8"))
    assert [errors_of(journey) for journey in journeys] == [[], []]


def test_a_bad_date_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app, ["export", "rpc", "--from", "2026-13-01", "--to", "2026-03-31", "--out", "x.json"]
    )
    assert result.exit_code == 2
    assert "not a date" in result.output
