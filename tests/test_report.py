"""Monthly report: figures from a seeded database, checked against the seed, in the HTML too."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatcher.model import LineId, Network
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest, Source
from line_service.authority.report import compute_figures, nearest_rank, render_html
from line_service.authority.rpc_outbox import RpcOutbox
from line_service.authority.trips import TripBook, draft_trip
from line_service.cli import app
from line_service.network.lines_file import load_network
from line_service.storage.store import Store
from tests.support.requests import ride_request

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "lines.yaml"
MONDAY = datetime(2026, 3, 2, 6, 30, tzinfo=UTC)  # 07:30 in Paris
TUESDAY = MONDAY + timedelta(days=1)
RIDER_A, RIDER_B = "+33612345601", "+33612345602"

OUTCOME = {
    "car": (RequestState.PICKED_UP, Cause.CODE_VALIDATED),
    "fallback": (RequestState.FALLBACK, Cause.GUARANTEE_REACHED),
    "cancelled": (RequestState.CANCELLED, Cause.RIDER_CANCELLED),
    "expired": (RequestState.EXPIRED, Cause.DEADLINE_REACHED),
    "refused": (RequestState.REFUSED, Cause.CLOSED),
}


def request(
    n: int,
    at: datetime,
    outcome: str,
    wait_minutes: int = 0,
    origin: str = "calais-est",
    destination: str = "dunkerque-est",
    phone: str | None = None,
    driver: str | None = None,
    seats: int = 1,
) -> RideRequest:
    state, cause = OUTCOME[outcome]
    return ride_request(
        f"r{n}",
        at + timedelta(minutes=wait_minutes),
        stop=origin,
        destination=destination,
        state=state,
        cause=cause,
        phone=phone,
        source=Source(Channel.SMS if phone else Channel.TERMINAL, f"s{n}"),
        code="1234",
        seats=seats,
        created_at=at,
        driver_ref=driver,
    )


D1, D2 = "account:d1", "account:d2"  # identified drivers (app accounts)
SEED = [
    request(1, MONDAY, "car", 2, "marck-est", phone=RIDER_A, driver=D1),
    request(2, MONDAY + timedelta(minutes=5), "car", 4, destination="gravelines-est", driver=D2),
    request(3, MONDAY + timedelta(minutes=6), "fallback", 15),
    request(4, MONDAY + timedelta(minutes=12), "car", 10, "gravelines-est", "dunkerque-est",
            RIDER_A, D1),
    request(5, MONDAY + timedelta(hours=9), "cancelled", 3),
    request(6, TUESDAY, "refused"),
    request(7, TUESDAY + timedelta(minutes=1), "expired", 30),
    request(8, TUESDAY + timedelta(hours=10), "car", 6, phone=RIDER_B, driver=D2, seats=2),
    request(9, datetime(2026, 4, 1, 6, 0, tzinfo=UTC), "car", 1, phone=RIDER_B, driver=D2),
]  # fmt: skip


@pytest.fixture(scope="module")
def network() -> Network:
    return load_network(SHIPPED)


@pytest.fixture
def seeded(database_url: str, network: Network) -> Iterator[Store]:
    store = Store(
        database_url, phone_hasher=lambda phone: hashlib.sha256(phone.encode()).hexdigest()[:32]
    )
    store.create_schema()
    line = network.line(LineId("calais-dunkerque"))
    assert line is not None
    book = TripBook(store)
    for seed in SEED:
        store.save([(seed, None)])
        draft = draft_trip(line, seed, None)
        if draft is not None:
            book.record(draft)
    yield store
    store.dispose()


def test_nearest_rank_percentile() -> None:
    assert nearest_rank([2, 4, 10, 6], 0.9) == 10
    assert nearest_rank(list(range(1, 11)), 0.9) == 9
    assert nearest_rank([7], 0.9) == 7


def test_the_figures_match_the_seed(seeded: Store, network: Network) -> None:
    figures = compute_figures(seeded, network, "2026-03")
    assert (figures.requests, figures.refused) == (7, 1)
    assert dict(figures.outcomes) == {"car": 4, "fallback": 1, "cancelled": 1, "expired": 1}
    assert figures.car_share == pytest.approx(0.8)
    assert sorted(figures.waits_minutes) == [2, 4, 6, 10]
    assert (figures.wait_median_minutes, figures.wait_p90_minutes) == (5, 10)
    assert figures.requests_per_day[:4] == [0, 5, 2, 0]
    assert figures.trips_per_day[:4] == [0, 3, 1, 0]
    assert len(figures.days) == 31
    assert (figures.trips, figures.flagged_trips) == (4, 1)  # r4: same pair within 30 min
    assert figures.od_matrix == {
        ("Marck", "Dunkerque"): 1,
        ("Calais", "Gravelines"): 1,
        ("Calais", "Dunkerque"): 1,
    }
    assert (figures.distinct_riders, figures.anonymous_requests) == (2, 4)
    assert figures.distinct_drivers == 2
    assert figures.passenger_km == pytest.approx(35 + 23 + 43 * 2)
    assert figures.co2_avoided_kg == pytest.approx(144 * 0.2)
    # Identified drivers only (app accounts here); the line's rule has no SIRET in the file.
    assert figures.driver_compensation_cents == 200 + 200 + 300
    assert figures.incentives_by_sponsor == {"sans SIRET": 700}
    assert figures.budgets == {"line-calais-dunkerque": (700, None)}
    assert figures.by_stop["Calais"] == {"car": 2, "fallback": 1, "cancelled": 1, "expired": 1}
    assert figures.by_hour[7] == {"car": 3, "fallback": 1, "expired": 1}


def test_the_html_states_the_figures_and_embeds_the_plots(seeded: Store, network: Network) -> None:
    page = render_html(compute_figures(seeded, network, "2026-03"), network)
    shown = dict(re.findall(r'data-figure="(\w+)">([^<]*)<', page))
    assert shown["requests"] == "7"
    assert shown["served_by_car"] == "4"
    assert shown["served_by_fallback"] == "1"
    assert shown["car_share_percent"] == "80,0"
    assert shown["wait_median_minutes"] == "5,0"
    assert shown["wait_p90_minutes"] == "10,0"
    assert shown["distinct_riders"] == "2"
    assert shown["distinct_drivers"] == "2"
    assert shown["co2_avoided_kg"] == "28,8"
    assert shown["driver_compensation_euros"] == "7,00"
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', page)
    assert len(images) == 5
    assert all(base64.b64decode(image).startswith(b"\x89PNG") for image in images)
    assert "ADEME" in page
    assert "http" not in page.replace("https://", "").split("<body>")[1]  # self-contained


def test_the_command_writes_the_report(seeded: Store, database_url: str, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    env = {"CARPOOL_DATABASE_URL": database_url, "CARPOOL_LINES_FILE": str(SHIPPED)}
    result = CliRunner().invoke(app, ["report", "--month", "2026-03", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    assert "7 request(s), 4 trip(s)" in result.output
    assert 'data-figure="requests">7<' in out.read_text(encoding="utf-8")


def test_a_bad_month_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", "--month", "2026-13", "--out", "r.html"])
    assert result.exit_code == 2
    assert "not a month" in result.output


def test_incentives_per_sponsor_and_budget_used_follow_the_campaigns(
    seeded: Store, network: Network
) -> None:
    from datetime import date

    from line_service.authority.campaigns import Campaign

    siret = "11000101300017"
    aom = Campaign(
        id="aom", name="AOM", siret=siret, per_passenger_cents=100, budget_cents=300,
        first_day=date(2026, 3, 1),
    )  # fmt: skip
    figures = compute_figures(seeded, network, "2026-03", [aom])
    # 100 a seat: r1, r2, then r8's two seats clipped to the budget's last 100.
    assert figures.incentives_by_sponsor == {siret: 300}
    assert figures.budgets == {"aom": (300, 300)}
    shown = dict(re.findall(r'data-figure="([^"]+)">([^<]*)<', render_html(figures, network)))
    assert shown[f"incentives_{siret}"] == "3,00"
    assert shown["budget_aom"] == "3,00 sur 3,00"


def test_the_report_counts_journeys_by_registry_status(seeded: Store, network: Network) -> None:
    outbox = RpcOutbox(seeded, network, lambda: TUESDAY + timedelta(days=1))
    assert outbox.queue_new() == 5  # the month's 4 trips, and April's
    first = outbox.journeys(None)[-1]  # the oldest
    first.status = "ok"  # as the registry's check would have it
    outbox.save(first)
    figures = compute_figures(seeded, network, "2026-03")
    assert dict(figures.registry_statuses) == {"ok": 1, "not_sent": 3}  # no driver's number
    shown = dict(re.findall(r'data-figure="(\w+)">([^<]*)<', render_html(figures, network)))
    assert (shown["registry_ok"], shown["registry_not_sent"]) == ("1", "3")
    assert "registry_fraud_error" not in shown
