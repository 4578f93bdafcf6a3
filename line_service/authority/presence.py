"""Shell: presence bonuses from the drivers' stored declarations ("Je passe", `driver_trip`).

A declared trip counts for a `presence` campaign when its driver is identified (an app account)
and not banned, and when the trip leaves its first stop (`leaves_at`, local time of its line)
on the campaign's days and hours, on its lines and in its period; it is paid
`per_declaration_cents`, clipped by the campaign's caps per driver and by its budget
(`campaigns.presence_bonuses`). A trip that has not left yet at `until` counts for nothing.
Declarations before the month (from a budgeted campaign's start) use up budget only, so the
month gets what is left, as for journeys.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from dispatcher.model import LineId, Network
from line_service.authority.campaigns import PRESENCE_KIND, Campaign, Declaration, presence_bonuses
from line_service.authority.driver_identity import identify_driver
from line_service.authority.money import TripMoney, ledger_start
from line_service.storage.driver_trip_table import DriverTripRecord
from line_service.storage.store import Store, as_utc

Bonuses = dict[str, dict[str, int]]
"""campaign id -> driver key -> cents."""


def stored_declarations(
    store: Store, network: Network, start: datetime, end: datetime
) -> list[Declaration]:
    """The declared trips leaving in [start, end) whose driver can be identified."""
    with Session(store.engine) as session:
        rows = session.exec(
            select(DriverTripRecord).where(
                col(DriverTripRecord.leaves_at) >= start, col(DriverTripRecord.leaves_at) < end
            )
        ).all()
    found = []
    for row in rows:
        driver = identify_driver(row.driver_ref)
        if driver is None:
            continue
        line = network.line(LineId(row.line_id))
        zone = line.timezone if line else "Europe/Paris"
        found.append(Declaration(driver.key, row.line_id, as_utc(row.leaves_at), zone))
    return found


def month_presence(
    store: Store,
    network: Network,
    campaigns: Sequence[Campaign],
    money: TripMoney,
    month: tuple[datetime, datetime],
    until: datetime | None = None,
) -> Bonuses:
    """The month's presence bonuses ([start, end) UTC) of drivers not banned, on the journeys'
    ledger `money` (budgets are shared with it; see the module's docstring)."""
    if not any(c.kind == PRESENCE_KIND for c in campaigns):
        return {}
    start, end = month
    zone = ZoneInfo(network.lines[0].timezone if network.lines else "Europe/Paris")
    first = start.astimezone(zone).date()
    since = datetime.combine(ledger_start(first, campaigns), time(), tzinfo=zone)
    allowed = [
        d
        for d in stored_declarations(store, network, since, end)
        if d.driver_key not in money.banned and (until is None or d.at <= until)
    ]
    presence_bonuses([d for d in allowed if d.at < start], campaigns, money.ledger)
    return presence_bonuses([d for d in allowed if d.at >= start], campaigns, money.ledger)
