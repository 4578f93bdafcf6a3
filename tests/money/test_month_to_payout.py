"""Issue #18's "done means", end to end: a month of trips recorded by the service's own recorder
→ its registry outbox attests every attestable journey to the registry (the stand-in), and no
other → the registry says `ok` → the 48 h reading stores the statuses final → `carpool-line
payouts --month` pays exactly those journeys, what the registry was told, within the caps.

Drivers are identified as the service identifies them: one by SMS (its number vouched for in
`party`), one by an app account. The month also has an own ride, a validation held as too
soon, a trip under 1 km, a driver nobody can identify and a rider known only by a terminal.
Time is a clock the test moves; jitter a fixed draw; no sleep.
"""

from __future__ import annotations

import asyncio
import csv
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import yaml
from sqlmodel import Session, col, select
from typer.testing import CliRunner

from dispatcher.effects import SaveRequest
from dispatcher.model import Network
from dispatcher.request_machine import RequestState, RideRequest
from dispatcher.state import DispatcherState
from line_service.accounts.book import AccountBook, AccountRole
from line_service.authority.campaigns_file import load_campaigns
from line_service.authority.driver_identity import identify_with
from line_service.authority.identities import IdentityResolver
from line_service.authority.payouts import HELD_NOT_FINAL, HELD_NOT_SENT
from line_service.authority.rpc_client import AccessTokens, RpcClient
from line_service.authority.rpc_outbox import RpcOutbox, RpcSender
from line_service.authority.trips import TripBook, TripRecorder
from line_service.cli import app
from line_service.network.lines_file import load_network
from line_service.storage.party_store import PartyStore
from line_service.storage.rpc_outbox_table import RpcJourneyRecord
from line_service.storage.store import Store, TripRecord
from tests.money.trips_support import SHIPPED, SIRET, T0, validated
from tests.support.rpc_standin import ACCESS_KEY, SECRET_KEY, Registry

SMS_DRIVER = "+33699887766"
SMS_REF = "sms:0f3c1d2e4b5a69788796a5b4c3d2e1f0"  # the salted hash the SMS channel stores
APP_DRIVER = "+33688776655"
EMPLOYER_SIRET = "73282932000074"
CAMPAIGNS = f"""
campaigns:
  - id: aom
    name: "Indemnité de l'autorité"
    sponsor: {{kind: territory, name: "Autorité organisatrice", siret: "{SIRET}"}}
    amounts: {{per_trip_cents: 100, per_passenger_cents: 100}}
    caps: {{per_person_per_day_cents: 300, per_person_per_month_cents: 800}}
  - id: employeur
    name: "Prime de l'employeur"
    sponsor: {{kind: sponsor, name: "Port", siret: "{EMPLOYER_SIRET}"}}
    amounts: {{per_passenger_cents: 50}}
"""


@dataclass
class Clock:
    """The service's time: moved by the test."""

    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def lines_file(tmp_path: Path) -> Path:
    """The shipped line, with a stop half a kilometre before Dunkerque (a trip under 1 km)."""
    lines = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    for direction in lines["lines"][0]["directions"]:
        for stop in direction["stops"]:
            if stop["id"] == "grande-synthe-est":
                stop["km"] = 42.5
    path = tmp_path / "lines.yaml"
    path.write_text(yaml.safe_dump(lines, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def rider(n: int) -> str:
    return f"+336123456{n:02d}"


def the_month(app_ref: str) -> dict[str, RideRequest]:
    """November's validations by name (Monday 2 November 07:00 is T0)."""
    day = timedelta(days=1)
    return {
        # The SMS driver: a car run of two, then a third rider (the day's cap is reached).
        "sms-run-1": validated("q1", T0, phone=rider(1), driver=SMS_REF),
        "sms-run-2": validated("q2", T0 + timedelta(minutes=2), phone=rider(2), driver=SMS_REF),
        "sms-later": validated(
            "q3",
            T0 + timedelta(hours=1, minutes=30),
            origin="gravelines-est",
            phone=rider(3),
            driver=SMS_REF,
        ),
        "app": validated("q4", T0 + timedelta(minutes=10), phone=rider(4), driver=app_ref),
        "held": validated(
            "q5", T0 + day, phone=rider(5), driver=app_ref, asked_before=timedelta(seconds=5)
        ),
        "short": validated(
            "q6",
            T0 + day + timedelta(hours=1),
            origin="grande-synthe-est",
            phone=rider(6),
            driver=app_ref,
        ),
        "own-ride": validated("q7", T0 + 2 * day, phone=SMS_DRIVER, driver=SMS_REF),
        "unidentified": validated(
            "q8", T0 + 2 * day + timedelta(minutes=30), phone=rider(8), driver="demo-driver-3"
        ),
        "terminal-rider": validated("q9", T0 + 3 * day, phone=None, driver=app_ref),
        # The SMS driver's next week: the month's cap is reached on Wednesday.
        **{
            f"sms-week-{n}": validated(
                f"q1{n}", T0 + (7 + n) * day, phone=rider(10 + n), driver=SMS_REF
            )
            for n in range(4)
        },
    }


async def record_month(store: Store, network: Network) -> dict[str, TripRecord]:
    """The month's validations, stored by the service's recorder as the engine hands them."""
    accounts = AccountBook(store.engine)
    app_ref = accounts.issue(APP_DRIVER, AccountRole.DRIVER, T0, timedelta(days=60)).account.ref
    PartyStore(store.engine).vouch(SMS_REF, SMS_DRIVER, T0 - timedelta(days=1))
    month = the_month(app_ref)
    stored = asyncio.Event()
    recorder = TripRecorder(
        network,
        TripBook(store, network),
        identify_with(accounts.phone_of_ref),
        identities=IdentityResolver(store),
        on_recorded=lambda: stored.set() if recorder.recorded == len(month) else None,
    )
    task = asyncio.create_task(recorder.run())
    for request in month.values():
        recorder(
            None, [SaveRequest(request, RequestState.WAITING)], DispatcherState(network=network)
        )
    await asyncio.wait_for(stored.wait(), 10)
    task.cancel()
    with Session(store.engine) as session:
        by_request = {t.request_id: t for t in session.exec(select(TripRecord)).all()}
    return {name: by_request[request.id] for name, request in month.items()}


def next_work(store: Store) -> datetime | None:
    """When the outbox next has something to do."""
    with Session(store.engine) as session:
        found = session.exec(
            select(RpcJourneyRecord.next_at)
            .where(col(RpcJourneyRecord.next_at).is_not(None))
            .order_by(col(RpcJourneyRecord.next_at))
        ).first()
    return None if found is None else found.replace(tzinfo=found.tzinfo or UTC)


async def work_until(sender: RpcSender, registry: Registry, store: Store, end: datetime) -> None:
    """The outbox's passes, the clock moved to each next piece of work until `end`; the
    registry's checks pass every journey it received (`ok`)."""
    clock = sender.outbox.clock
    assert isinstance(clock, Clock)
    for _ in range(500):
        await sender.tick()
        for journey_id, status in list(registry.statuses.items()):
            if status == "pending":
                registry.set_status(journey_id, "ok")
        upcoming = next_work(store)
        if upcoming is None or upcoming > end:
            clock.now = max(clock.now, end)
            return
        clock.now = max(clock.now, upcoming)
    raise AssertionError("the outbox kept finding work")


async def test_a_month_from_trips_to_payouts(
    store: Store,
    database_url: str,
    lines_file: Path,
    registry: Registry,
    http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    network = load_network(lines_file)
    campaigns_file = tmp_path / "campaigns.yaml"
    campaigns_file.write_text(CAMPAIGNS, encoding="utf-8")
    trips = await record_month(store, network)

    clock = Clock(T0)
    client = RpcClient(
        registry.url, AccessTokens(ACCESS_KEY, SECRET_KEY, clock), http, max_attempts=1
    )
    outbox = RpcOutbox(store, network, clock, campaigns=load_campaigns(campaigns_file, network))
    sender = RpcSender(outbox, client, draw=lambda: 0.0)
    env = {
        "CARPOOL_DATABASE_URL": database_url,
        "CARPOOL_LINES_FILE": str(lines_file),
        "CARPOOL_CAMPAIGNS_FILE": str(campaigns_file),
    }
    out = tmp_path / "payouts"
    command = ["payouts", "--month", "2026-11", "--out", str(out)]

    # 13 November, noon: the last journey (12 November) is `ok` at its first look, not final.
    await work_until(sender, registry, store, datetime(2026, 11, 13, 12, tzinfo=UTC))
    early = CliRunner().invoke(app, command, env=env)
    assert early.exit_code == 0, early.output
    assert "7 journey(s) paid to 2 driver(s), 13.50 EUR" in early.output
    assert f"held back: 1 journey(s): {HELD_NOT_FINAL}" in early.output
    await work_until(sender, registry, store, datetime(2026, 12, 1, tzinfo=UTC))

    attestable = {"sms-run-1", "sms-run-2", "sms-later", "app"} | {
        f"sms-week-{n}" for n in range(4)
    }
    sent = {trips[name].id for name in attestable}
    assert set(registry.journeys) == sent  # every attestable journey, and none of the others
    assert registry.calls.count(("POST", "/v3.4/journeys")) == len(sent)  # each once
    for name, trip in trips.items():
        row = outbox.get(trip.id)
        assert row is not None, name
        assert (row.status == "ok" and row.final) is (name in attestable), name

    paid = CliRunner().invoke(app, command, env=env)
    assert paid.exit_code == 0, paid.output
    assert "8 journey(s) paid to 2 driver(s), 14.00 EUR" in paid.output
    assert f"held back: 1 journey(s): {HELD_NOT_SENT}" in paid.output  # the terminal rider's
    with (out / "paiements-conducteurs.csv").open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    per_journey = {r["Trajet"]: r["Montant (EUR)"] for r in rows if r["Type"] == "trajet"}
    assert set(per_journey) == sent  # nothing unattested, flagged, own or unidentified
    for journey_id in per_journey:
        row = outbox.get(journey_id)
        assert row is not None
        assert (row.status, row.final) == ("ok", True)
    for journey_id, euros in per_journey.items():  # what the registry was told is what is paid
        told = sum(i["amount"] for i in registry.journeys[journey_id]["incentives"])
        assert f"{told / 100:.2f}" == euros
    by_name = {name: per_journey[trips[name].id] for name in attestable}
    assert by_name == {
        # aom: 1 EUR a car run + 1 EUR a passenger, 3 EUR a day; employer 0.50 a passenger.
        "sms-run-1": "2.50",
        "sms-run-2": "1.50",
        "sms-later": "0.50",  # the day's 3 EUR already paid
        "app": "2.50",
        "sms-week-0": "2.50",
        "sms-week-1": "2.50",
        "sms-week-2": "1.50",  # 8 EUR a month: 1 EUR was left
        "sms-week-3": "0.50",
    }
    totals = {r["Conducteur"]: r["Montant (EUR)"] for r in rows if r["Type"] != "trajet"}
    assert totals == {SMS_REF: "11.50", trips["app"].driver_ref: "2.50"}
    with (out / "appels-de-fonds.csv").open(encoding="utf-8") as file:
        funding = {
            r["Campagne"]: (r["SIRET"], r["Trajets"], r["Montant (EUR)"])
            for r in csv.DictReader(file)
        }
    assert funding == {
        "aom": (SIRET, "6", "10.00"),  # the SMS driver's 8 EUR (the month's cap) + 2 EUR
        "employeur": (EMPLOYER_SIRET, "8", "4.00"),
    }
