"""Rider-facing reads in process: wait estimates, the live line, /gtfs.zip, standard covoiturage."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]  # no stubs are published
import pytest
from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from dispatcher.request_machine import Cause, RequestState
from dispatcher.state import DispatcherState
from line_service.authority import standard_covoiturage_schema as schema
from line_service.authority.driver_journeys import DriverJourneys
from line_service.authority.gtfs_feed import GtfsFeed
from line_service.driver_trips.announcements import DriverTrips
from line_service.estimates.estimator import WaitEstimator, load_corridors
from line_service.network.lines_file import load_network
from line_service.storage.store import Store
from line_service.web.open_data_routes import feeds, standard
from line_service.web.public_routes import api
from sms_gateway.console_sender import ConsoleSender
from tests.support.gtfs_validation import errors, validate
from tests.support.requests import ride_request

REPO = Path(__file__).resolve().parents[1]
NETWORK = load_network(REPO / "config" / "lines.yaml")
CORRIDORS = load_corridors(REPO / "config" / "corridors.yaml")
# Tuesday 1 December 2026, 07:10 in Paris (UTC+1).
NOW = datetime(2026, 12, 1, 6, 10, tzinfo=UTC)
CALAIS, DUNKERQUE = (50.9481, 1.8564), (51.017566, 2.321669)  # the stops of the line
WAITS = [2, 3, 3, 4, 5, 5, 6, 7, 8, 12]  # Calais → Dunkerque, Tuesdays at 07:xx: median 5


def _seed(store: Store) -> None:
    for week in range(1, 4):
        for index, minutes in enumerate(WAITS if week == 1 else []):
            asked = NOW - timedelta(weeks=week) + timedelta(minutes=index)
            request_id = f"w{week}-{index}"
            where: dict[str, Any] = {"stop": "calais-est", "destination": "dunkerque-est"}
            done = ride_request(
                request_id,
                asked + timedelta(minutes=minutes),
                created_at=asked,
                state=RequestState.PICKED_UP,
                cause=Cause.CODE_VALIDATED,
                **where,
            )
            store.save(
                [(ride_request(request_id, asked, **where), None), (done, RequestState.WAITING)]
            )


def clock() -> datetime:
    return NOW  # the manual clock


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store(f"sqlite:///{tmp_path}/carpool.sqlite3")
    opened.create_schema()
    _seed(opened)
    yield opened
    opened.dispose()


@pytest.fixture
def driver_trips(store: Store) -> DriverTrips:
    """Announced trips ("Je passe"); no rider waits, so nobody is texted."""
    empty = DispatcherState(network=NETWORK)
    return DriverTrips(store.engine, ConsoleSender(), lambda: empty, clock)


@pytest.fixture
async def client(store: Store, driver_trips: DriverTrips) -> AsyncIterator[httpx.AsyncClient]:
    estimates = WaitEstimator(NETWORK, store.finished_waits, clock, lambda: CORRIDORS)

    state: dict[str, object] = {
        "driver_trips": driver_trips,
        "network": NETWORK,
        "current_state": lambda: DispatcherState(network=NETWORK),
        "clock": clock,
        "estimates": estimates,
        "gtfs_feed": GtfsFeed(NETWORK, estimates, clock, "https://example.org"),
        "driver_journeys": DriverJourneys(NETWORK, estimates, "https://example.org", clock),
    }
    app = FastAPI()
    for router in (api, feeds, standard):
        app.include_router(router)

    async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
        # What a lifespan's state becomes for each request under a server.
        await app({**scope, "state": dict(state)}, receive, send)

    transport = httpx.ASGITransport(app=with_state)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as opened:
        yield opened


async def test_wait_estimates_of_a_stop_say_their_source(client: httpx.AsyncClient) -> None:
    answer = await client.get("/api/v1/lines/calais-dunkerque/stops/calais-est/wait-estimates")
    assert answer.status_code == 200
    by_destination = {item["destination_id"]: item for item in answer.json()}
    assert by_destination["dunkerque-est"] == {
        "stop_id": "calais-est",
        "destination_id": "dunkerque-est",
        "weekday": 1,
        "hour": 7,
        "median_minutes": 5.0,
        "p90_minutes": 8.0,
        "source": "history",
        "observations": 10,
    }
    assert by_destination["marck-est"]["source"] == "model"
    saturday = (
        await client.get(
            "/api/v1/lines/calais-dunkerque/stops/calais-est/wait-estimates",
            params={"weekday": 5, "hour": 7},
        )
    ).json()
    assert {i["destination_id"]: i["source"] for i in saturday}["dunkerque-est"] == (
        "history_any_weekday"
    )
    missing = await client.get("/api/v1/lines/calais-dunkerque/stops/nowhere/wait-estimates")
    assert missing.status_code == 404
    assert (
        await client.get(
            "/api/v1/lines/calais-dunkerque/stops/calais-est/wait-estimates", params={"hour": 24}
        )
    ).status_code == 422


async def test_the_public_live_line_carries_the_estimates(client: httpx.AsyncClient) -> None:
    live = (await client.get("/api/v1/lines/calais-dunkerque/live")).json()
    pairs = {(e["stop_id"], e["destination_id"]): e for e in live["wait_estimates"]}
    assert pairs[("calais-est", "dunkerque-est")]["median_minutes"] == 5.0
    assert len(pairs) == 2 * (5 + 4 + 3 + 2 + 1)  # every boarding stop × destination


async def test_the_live_line_tells_a_driver_announced_within_the_wait(
    client: httpx.AsyncClient, driver_trips: DriverTrips
) -> None:
    url = "/api/v1/lines/calais-dunkerque/live"
    before = (await client.get(url)).json()["wait_estimates"]
    assert {e["announced_driver_minutes"] for e in before} == {None}
    line = NETWORK.lines[0]
    # Leaves Calais in 2 min (the expected wait there towards Dunkerque: 5 min), then a later one.
    await driver_trips.declare(
        line, "account:d1", "calais-est", "dunkerque-est", timedelta(minutes=2)
    )
    await driver_trips.declare(
        line, "account:d2", "calais-est", "dunkerque-est", timedelta(minutes=9)
    )
    after = {
        (e["stop_id"], e["destination_id"]): e["announced_driver_minutes"]
        for e in (await client.get(url)).json()["wait_estimates"]
    }
    assert after[("calais-est", "dunkerque-est")] == 2
    assert after[("dunkerque-ouest", "calais-ouest")] is None  # the other way
    # The stop-and-hour route keeps its shape: no live field.
    stop = await client.get("/api/v1/lines/calais-dunkerque/stops/calais-est/wait-estimates")
    assert all("announced_driver_minutes" not in item for item in stop.json())


async def test_gtfs_zip_is_public_cached_and_valid(
    client: httpx.AsyncClient, tmp_path: Path
) -> None:
    answer = await client.get("/gtfs.zip")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/zip"
    assert answer.headers["cache-control"] == "public, max-age=3600"
    assert (await client.get("/gtfs.zip")).content == answer.content  # built once within the hour
    with zipfile.ZipFile(io.BytesIO(answer.content)) as feed:
        assert "frequencies.txt" in feed.namelist()
    assert errors(validate(answer.content, tmp_path)) == {}


async def _journeys(client: httpx.AsyncClient, **params: Any) -> Any:
    query = {
        "departureLat": CALAIS[0],
        "departureLng": CALAIS[1],
        "arrivalLat": DUNKERQUE[0],
        "arrivalLng": DUNKERQUE[1],
        "departureDate": int(NOW.timestamp()),
        **params,
    }
    query = {key: value for key, value in query.items() if value is not None}
    return await client.get("/standard-covoiturage/driver_journeys", params=query)


async def test_driver_journeys_are_line_journeys_valid_against_the_standard(
    client: httpx.AsyncClient,
) -> None:
    answer = await _journeys(client)
    assert answer.status_code == 200
    journeys = answer.json()
    jsonschema.validate(journeys, schema.DRIVER_JOURNEYS)
    assert len(journeys) == 1
    journey = journeys[0]
    assert journey["type"] == "LINE"
    assert journey["passengerPickupDate"] == int(NOW.timestamp()) + 5 * 60  # + median wait
    assert journey["distance"] == 43_000
    assert journey["duration"] == 43 * 60  # 60 km/h
    assert journey["operator"] == "covoiturage.example.org"
    assert journey["driver"] == {
        "id": "line:calais-dunkerque",
        "alias": "Calais ⇄ Dunkerque",
        "operator": "covoiturage.example.org",
    }
    assert journey["price"] == {"type": "FREE"}
    # Wider radii find the stops around too; count caps them.
    wide = (await _journeys(client, departureRadius=10, arrivalRadius=10)).json()
    jsonschema.validate(wide, schema.DRIVER_JOURNEYS)
    assert len(wide) > 1
    assert len((await _journeys(client, departureRadius=10, arrivalRadius=10, count=2)).json()) == 2


async def test_no_journey_when_closed_far_or_too_late(client: httpx.AsyncClient) -> None:
    saturday = int((NOW + timedelta(days=4)).timestamp())
    assert (await _journeys(client, departureDate=saturday)).json() == []
    assert (await _journeys(client, arrivalLat=48.85, arrivalLng=2.35)).json() == []  # Paris
    assert (await _journeys(client, timeDelta=60)).json() == []  # the median wait is 5 min


@pytest.mark.parametrize(
    "params",
    [
        {"departureLat": "north"},
        {"departureLat": 91},
        {"departureDate": None},
        {"departureDate": 253_402_300_800},  # year 10000
        {"timeDelta": -1},
        {"count": 0},
        {"departureRadius": 0},
    ],
)
async def test_bad_queries_get_the_standards_400(
    client: httpx.AsyncClient, params: dict[str, Any]
) -> None:
    answer = await _journeys(client, **params)
    assert answer.status_code == 400
    jsonschema.validate(answer.json(), schema.BAD_REQUEST)
    assert answer.json()["error"]


async def test_status_answers_200(client: httpx.AsyncClient) -> None:
    assert (await client.get("/standard-covoiturage/status")).status_code == 200
