"""Presence bonuses from stored declarations: drivers who said "Je passe" at peak are paid what
the campaign says, within its caps — in `campaigns simulate`, `payouts` and the monthly report;
a banned driver and a trip off peak earn nothing."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from dispatcher.state import DispatcherState
from line_service.accounts.book import AccountBook, AccountRole
from line_service.authority.campaigns_file import load_campaigns
from line_service.authority.report import compute_figures, render_html
from line_service.cli import app
from line_service.driver_trips.announcements import DriverTrips
from line_service.storage.store import Store
from sms_gateway.console_sender import ConsoleSender
from tests.money.trips_support import SHIPPED, SIRET, T0, line_of, paying_network

CAMPAIGNS = f"""
campaigns:
  - id: presence-pointe
    name: "Bonus de présence aux heures de pointe"
    kind: presence
    sponsor: {{kind: operator, name: "Opérateur", siret: "{SIRET}"}}
    lines: [calais-dunkerque]
    amounts: {{per_declaration_cents: 150}}
    weekdays: [mon, tue, wed, thu, fri]
    hours: ["06:30-09:00"]
    caps: {{per_person_per_day_cents: 300, per_person_per_month_cents: 500}}
"""


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


async def declare_month(store: Store) -> tuple[str, str]:
    """Through the service's own "Je passe": a driver declares 3 trips at peak on Monday 2
    November, one at 11:00, one on Saturday at peak, 2 at peak on Tuesday and 1 on Wednesday;
    another, at 06:20, one leaving at 06:40 (peak: the leaving time counts). Returns both
    drivers' refs."""
    network = paying_network()
    book = AccountBook(store.engine)
    regular = book.issue("+33600000011", AccountRole.DRIVER, T0, timedelta(days=30)).account.ref
    other = book.issue("+33600000012", AccountRole.DRIVER, T0, timedelta(days=30)).account.ref
    clock = Clock(T0)  # Monday 07:00 in Paris
    trips = DriverTrips(
        store.engine, ConsoleSender(), lambda: DispatcherState(network=network), clock
    )
    line = line_of(network)
    plan = [
        (regular, T0, 0),
        (regular, T0 + timedelta(minutes=30), 0),
        (regular, T0 + timedelta(minutes=50), 0),
        (regular, T0 + timedelta(hours=4), 0),  # 11:00: off peak
        (regular, T0 + timedelta(days=5), 0),  # Saturday
        (regular, T0 + timedelta(days=1), 0),
        (regular, T0 + timedelta(days=1, minutes=40), 0),
        (regular, T0 + timedelta(days=2), 0),
        (other, T0 - timedelta(minutes=40), 20),  # declared at 06:20, leaves at 06:40
    ]
    for ref, declared_at, leaving_in in plan:
        clock.now = declared_at
        await trips.declare(line, ref, "marck-est", "dunkerque-est", timedelta(minutes=leaving_in))
    return regular, other


async def test_declared_trips_at_peak_are_paid_within_the_caps_and_never_to_a_banned_driver(
    store: Store, database_url: str, tmp_path: Path
) -> None:
    regular, other = await declare_month(store)
    campaigns_file = tmp_path / "campaigns.yaml"
    campaigns_file.write_text(CAMPAIGNS, encoding="utf-8")
    env = {
        "CARPOOL_DATABASE_URL": database_url,
        "CARPOOL_LINES_FILE": str(SHIPPED),
        "CARPOOL_CAMPAIGNS_FILE": str(campaigns_file),
    }
    runner = CliRunner()

    simulated = runner.invoke(
        app, ["campaigns", "simulate", str(campaigns_file), "--month", "2026-11"], env=env
    )
    assert simulated.exit_code == 0, simulated.output
    row = next(r for r in simulated.output.splitlines() if r.startswith("presence-pointe"))
    # 300 on Monday (3 at peak, capped a day), 200 on Tuesday (capped a month); the other
    # driver's 150.
    assert row.split()[1:4] == [SIRET, "0", "6.50"]
    assert "presence-pointe: presence bonus for 2 driver(s)" in simulated.output
    assert f"presence-pointe: capped: {regular}" in simulated.output
    assert "total paid: 6.50 EUR" in simulated.output

    assert runner.invoke(app, ["drivers", "ban", other], env=env).exit_code == 0
    out = tmp_path / "payouts"
    paid = runner.invoke(app, ["payouts", "--month", "2026-11", "--out", str(out)], env=env)
    assert paid.exit_code == 0, paid.output
    assert "0 journey(s) paid to 1 driver(s), 5.00 EUR" in paid.output
    with (out / "paiements-conducteurs.csv").open(encoding="utf-8") as file:
        [total] = list(csv.DictReader(file))
    assert (total["Type"], total["Conducteur"], total["Montant (EUR)"]) == (
        "total conducteur",
        regular,
        "5.00",
    )
    with (out / "appels-de-fonds.csv").open(encoding="utf-8") as file:
        [funding] = list(csv.DictReader(file))
    assert (funding["Campagne"], funding["Montant (EUR)"]) == ("presence-pointe", "5.00")

    network = paying_network()
    figures = compute_figures(store, network, "2026-11", load_campaigns(campaigns_file, network))
    assert figures.presence_bonus_cents == 500  # the banned driver's bonus is gone
    assert figures.presence_drivers == 1
    assert figures.incentives_by_sponsor == {SIRET: 500}
    assert figures.budgets["presence-pointe"] == (500, None)
    page = render_html(figures, network)
    assert 'data-figure="presence_bonus_euros">5,00<' in page
