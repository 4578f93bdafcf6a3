"""Payouts: only journeys final and `ok` at the registry, never flagged or banned drivers';
the accountant's CSV and the funding call; `campaigns simulate` and `drivers` commands."""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dispatcher.model import Network
from line_service.authority.campaigns_file import default_campaigns
from line_service.authority.driver_bans import DriverBans
from line_service.authority.payouts import (
    HELD_NOT_FINAL,
    HELD_NOT_OK,
    HELD_UNKNOWN,
    MappingStatuses,
    compute_payouts,
    write_payouts,
)
from line_service.authority.trips import TripBook
from line_service.cli import app
from line_service.storage.store import Store, TripRecord
from tests.money.trips_support import SHIPPED, SIRET, T0, paying_network, record, validated

NOW = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)
OTHER_DRIVER = "+33688776655"
BANNED_DRIVER = "+33677665544"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def network() -> Network:
    return paying_network()


def seed(store: Store, network: Network) -> dict[str, TripRecord]:
    """A clean car run of two, a held trip, a banned driver's trip, an unattested one, a late
    one of 30 November (not final on 1 December), and one the registry refused."""
    book = TripBook(store, network)
    trips = {
        "run-a": record(book, network, validated("r1", T0, phone="+33612345601")),
        "run-b": record(
            book, network, validated("r2", T0 + timedelta(minutes=1), phone="+33612345602")
        ),
        "held": record(
            book,
            network,
            validated("r3", T0 + timedelta(hours=3), asked_before=timedelta(seconds=5)),
        ),
        "banned": record(
            book, network, validated("r4", T0 + timedelta(hours=1), driver=BANNED_DRIVER)
        ),
        "unattested": record(
            book, network, validated("r5", T0 + timedelta(days=1), driver=OTHER_DRIVER)
        ),
        "refused": record(
            book, network, validated("r6", T0 + timedelta(days=2), driver=OTHER_DRIVER)
        ),
    }
    DriverBans(store).ban(BANNED_DRIVER, "fraude avérée", T0)
    return trips


def statuses_for(trips: dict[str, TripRecord]) -> MappingStatuses:
    known = {trip.id: "ok" for name, trip in trips.items() if name != "unattested"}
    known[trips["refused"].id] = "fraud_error"
    return MappingStatuses(known)


def test_only_final_ok_clean_journeys_of_drivers_not_banned_are_paid(
    store: Store, network: Network, tmp_path: Path
) -> None:
    trips = seed(store, network)
    campaigns = default_campaigns(network)
    payouts = compute_payouts(store, network, campaigns, "2026-11", statuses_for(trips), NOW)
    assert sorted(p.trip.id for p in payouts.paid) == sorted([trips["run-a"].id, trips["run-b"].id])
    assert dict(payouts.per_driver) == {"tel:+33699887766": 300}
    assert dict(payouts.held) == {HELD_UNKNOWN: 1, HELD_NOT_OK: 1}
    assert payouts.funding == {(SIRET, "line-calais-dunkerque"): [2, 300]}
    too_soon = compute_payouts(
        store, network, campaigns, "2026-11", statuses_for(trips), T0 + timedelta(hours=47)
    )
    assert too_soon.paid == []
    assert too_soon.held[HELD_NOT_FINAL] == 2

    paths = write_payouts(payouts, network, DriverBans(store), tmp_path)
    with paths[0].open(encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [row["Type"] for row in rows] == ["trajet", "trajet", "total conducteur"]
    assert rows[-1]["Montant (EUR)"] == "3.00"
    assert rows[0]["Départ"] == "Marck"
    with paths[1].open(encoding="utf-8") as file:
        assert list(csv.DictReader(file)) == [
            {"SIRET": SIRET, "Campagne": "line-calais-dunkerque", "Trajets": "2",
             "Montant (EUR)": "3.00"}
        ]  # fmt: skip
    with paths[2].open(encoding="utf-8") as file:
        [banned] = list(csv.DictReader(file))
    assert banned["Conducteur"] == f"tel:{BANNED_DRIVER}"
    assert banned["Identifiant registre (operator_user_id)"].startswith("u-")


def test_the_commands_simulate_ban_and_write_payouts(
    store: Store, network: Network, database_url: str, tmp_path: Path
) -> None:
    trips = seed(store, network)
    lines = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    lines["lines"][0]["compensation"]["siret"] = SIRET
    lines_file = tmp_path / "lines.yaml"
    lines_file.write_text(yaml.safe_dump(lines, allow_unicode=True), encoding="utf-8")
    env = {"CARPOOL_DATABASE_URL": database_url, "CARPOOL_LINES_FILE": str(lines_file)}
    runner = CliRunner()
    example = str(ROOT / "config" / "campaigns.example.yaml")

    simulated = runner.invoke(
        app, ["campaigns", "simulate", example, "--month", "2026-11"], env=env
    )
    assert simulated.exit_code == 0, simulated.output
    assert "2026-11: 6 trip(s), 4 payable" in simulated.output
    row = next(r for r in simulated.output.splitlines() if r.startswith("hdfm-ligne"))
    # The car run's 300, then 200 a journey for the two others: the line's rule again.
    assert row.split()[1:4] == ["11000101300017", "4", "7.00"]
    assert "7.00/30000 (0%)" in row
    employer = next(r for r in simulated.output.splitlines() if r.startswith("port-de"))
    assert employer.split()[1:4] == ["73282932000074", "4", "7.00"]  # 5 cents × 35 km × 4
    assert "total paid: 14.00 EUR" in simulated.output
    broken = tmp_path / "broken.yaml"
    broken.write_text("campaigns:\n  - id: X\n", encoding="utf-8")
    refused = runner.invoke(
        app, ["campaigns", "simulate", str(broken), "--month", "2026-11"], env=env
    )
    assert refused.exit_code == 2
    assert f"{broken}: campaigns[0].id: " in refused.output

    listed = runner.invoke(app, ["drivers", "list"], env=env)
    assert f"tel:{BANNED_DRIVER}" in listed.output
    assert runner.invoke(app, ["drivers", "ban", "demo-driver-3"], env=env).exit_code == 2
    assert "ban lifted" in runner.invoke(app, ["drivers", "unban", BANNED_DRIVER], env=env).output

    statuses = tmp_path / "statuses.json"
    statuses.write_text(
        '{"' + '": "ok", "'.join(t.id for t in trips.values()) + '": "ok"}', encoding="utf-8"
    )
    out = tmp_path / "payouts"
    paid = runner.invoke(
        app, ["payouts", "--month", "2026-11", "--out", str(out), "--statuses", str(statuses)],
        env=env,
    )  # fmt: skip
    assert paid.exit_code == 0, paid.output
    # Unbanned now: the banned driver's journey is paid too; the held one still is not.
    assert "5 journey(s) paid to 3 driver(s), 9.00 EUR" in paid.output
    assert (out / "appels-de-fonds.csv").exists()

    # Without --statuses: the statuses the registry outbox stored. None is final and ok yet.
    from sqlmodel import Session

    from line_service.storage.rpc_outbox_table import RpcJourneyRecord

    unsent = runner.invoke(app, ["payouts", "--month", "2026-11", "--out", str(out)], env=env)
    assert unsent.exit_code == 0, unsent.output
    assert "0 journey(s) paid" in unsent.output
    with Session(store.engine) as session:
        for trip in trips.values():  # as the registry's 48 h check would have stored them
            session.add(
                RpcJourneyRecord(
                    journey_id=trip.id,
                    line_id=trip.line_id,
                    trip_at=trip.picked_up_at,
                    status="ok",
                    final=True,
                    updated_at=NOW,
                )
            )
        session.commit()
    stored = runner.invoke(app, ["payouts", "--month", "2026-11", "--out", str(out)], env=env)
    assert stored.exit_code == 0, stored.output
    assert "5 journey(s) paid to 3 driver(s), 9.00 EUR" in stored.output


def test_an_access_request_shows_the_ban_of_that_number(store: Store, network: Network) -> None:
    from line_service.privacy.personal_data import export, keys_for

    seed(store, network)
    found = export(store.engine, keys_for(BANNED_DRIVER, "salt"), NOW)
    assert found["banned_driver"]["reason"] == "fraude avérée"
    assert export(store.engine, keys_for(OTHER_DRIVER, "salt"), NOW)["banned_driver"] is None
