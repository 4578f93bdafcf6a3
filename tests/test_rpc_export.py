"""RPC export: clean trips with known phones become journeys valid against our v3.4 schema."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from dispatcher.model import LineId, Network
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest, Source
from line_service.authority.rpc_export import (
    SKIP_FLAGGED,
    SKIP_NO_DRIVER_PHONE,
    SKIP_NO_PASSENGER_PHONE,
    SKIP_TOO_SHORT,
    export_rpc,
    skip_reason,
)
from line_service.authority.schemas import journey_problems
from line_service.authority.trips import Identity, TripBook, TripDraft, draft_trip
from line_service.cli import app
from line_service.network.lines_file import load_network
from line_service.storage.store import Store, TripRecord
from tests.support.journeys import journey as example_journey
from tests.support.requests import ride_request

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = ROOT / "config" / "lines.yaml"
T0 = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)  # Monday 2 March 2026, 07:30 in Paris


def errors_of(journey: dict[str, Any]) -> list[str]:
    """Violations of the package's RPC v3.4 journey schema."""
    return journey_problems(journey)


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


def test_the_schema_accepts_a_line_journey_and_names_the_field_of_each_violation() -> None:
    assert errors_of(example_journey()) == []
    broken = example_journey(operator_journey_id="4d0d7034-3791")
    broken["driver"]["identity"]["phone_trunc"] = "+3361"
    broken["passenger"]["seats"] = 9
    broken["start"]["datetime"] = "2026-03-03T17:05:00+01:00"
    del broken["passenger"]["identity"]["identity_key"]
    found = errors_of(broken)
    for field in (
        "operator_journey_id: ",
        "driver.identity.phone_trunc: '+3361' does not match",
        "passenger.identity: 'identity_key' is a required property",
        "passenger.seats: 9 is greater than the maximum of 8",
        "start.datetime: ",
    ):
        assert any(problem.startswith(field) for problem in found), (field, found)
    assert errors_of(example_journey(distance=0)) != []
    assert errors_of(example_journey(distance=1.5)) != []  # metres are whole numbers
    assert errors_of(example_journey(driving_license="051227308989")) != []  # server refuses it


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


def _record(store: Store, network: Network, request: RideRequest, **changes: Any) -> TripDraft:
    line = network.line(LineId("calais-dunkerque"))
    assert line is not None
    draft = draft_trip(line, request, None)
    assert draft is not None
    draft = dataclasses.replace(draft, **changes)
    TripBook(store).record(draft)
    return draft


def test_an_invalid_journey_is_reported_with_its_field_and_the_rest_written(
    seeded: Store, network: Network, database_url: str, tmp_path: Path
) -> None:
    bad_phone = Identity(ref="u-bad", phone_trunc="+3361", identity_key="a" * 64)
    rider = picked_up(7, T0 + timedelta(hours=5), "+33612345607", "+33688776655")
    _record(seeded, network, rider, passenger=bad_phone)
    export = export_rpc(seeded, network, date(2026, 3, 1), date(2026, 3, 31))
    assert len(export.journeys) == 2
    [(journey_id, reports)] = export.invalid.items()
    assert reports == [
        f"journey {journey_id}: passenger.identity.phone_trunc: "
        "'+3361' does not match '^\\\\+[0-9]{8,12}$'"
    ]
    out = tmp_path / "rpc.json"
    env = {"CARPOOL_DATABASE_URL": database_url, "CARPOOL_LINES_FILE": str(SHIPPED)}
    result = CliRunner().invoke(
        app,
        ["export", "rpc", "--from", "2026-03-01", "--to", "2026-03-31", "--out", str(out)],
        env=env,
    )
    assert result.exit_code == 1, result.output
    assert f"journey {journey_id}: passenger.identity.phone_trunc" in result.output
    assert "1 invalid journey(s)" in result.output
    written = json.loads(out.read_text(encoding="utf-8"))
    assert len(written) == 2
    assert journey_id not in {journey["operator_journey_id"] for journey in written}


def test_a_trip_under_one_km_breaks_the_registrys_terms_and_is_left_out(
    seeded: Store, network: Network
) -> None:
    rider = picked_up(8, T0 + timedelta(hours=6), "+33612345608", "+33688776655")
    _record(seeded, network, rider, distance_m=900)
    rider = picked_up(9, T0 + timedelta(hours=7), "+33612345609", "+33677665544")
    _record(seeded, network, rider, distance_m=1500)  # under v3.3's 2 km, fine in v3.4
    export = export_rpc(seeded, network, date(2026, 3, 1), date(2026, 3, 31))
    assert export.skipped[SKIP_FLAGGED] == 2  # the seeded one, and the 900 m trip (short_trip)
    assert sorted(journey["distance"] for journey in export.journeys) == [1500, 35000, 35000]
    assert export.invalid == {}


def test_an_unflagged_trip_under_one_km_is_still_not_exported(network: Network) -> None:
    """A trip stored before the flag existed (or edited since) is caught at export too."""
    assert skip_reason(TripRecord(**_trip_fields(distance_m=900)), network) == SKIP_TOO_SHORT
    assert skip_reason(TripRecord(**_trip_fields(distance_m=1000)), network) is None


def _trip_fields(**changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "id": "0123456789abcdef0123456789abcdef",
        "request_id": "r100",
        "operator_trip_id": "run1",
        "line_id": "calais-dunkerque",
        "origin_id": "marck-est",
        "destination_id": "dunkerque-est",
        "requested_at": T0,
        "picked_up_at": T0,
        "arrival_at": T0 + timedelta(minutes=20),
        "distance_m": 20000,
        "seats": 1,
        "channel": "sms",
        "driver_ref": "+33688776655",
        "driver_phone_trunc": "+336887766",
        "driver_identity_key": "b" * 64,
        "passenger_ref": "u-rider",
        "passenger_phone_trunc": "+336123456",
        "passenger_identity_key": "c" * 64,
        "operator_class": "C",
    }
    fields.update(changes)
    return fields
