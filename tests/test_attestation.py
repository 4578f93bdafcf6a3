"""Trip attestations: a person's trips of a year found by their number, totals, printable page."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

from playwright.sync_api import sync_playwright
from sqlmodel import Session, select
from typer.testing import CliRunner

from dispatcher.model import LineId, Network
from line_service.authority.attestation import euros, km, trips_of_person, year_bounds
from line_service.authority.trips import TripBook, draft_trip
from line_service.cli import app
from line_service.storage.store import Store, TripRecord
from sms_gateway.phones import phone_hash
from tests.planning.test_report_browser import ARTIFACTS, CHROMIUM_ARGS
from tests.test_report import (  # noqa: F401 - the monthly report's seeded trips
    RIDER_A,
    RIDER_B,
    SHIPPED,
    TUESDAY,
    network,
    request,
    seeded,
)

SALT = "pepper"
DRIVER = "+33698765432"


def _sms_driver(phone: str) -> str:
    return f"sms:{phone_hash(phone, SALT)}"


def _trips_of_requests(store: Store, request_ids: set[str]) -> list[TripRecord]:
    """The stored trips of these seeded requests, read without the attestation's lookup."""
    with Session(store.engine) as session:
        rows = session.exec(select(TripRecord)).all()
    return [trip for trip in rows if trip.request_id in request_ids]


def _attestation(database_url: str, phone: str, out: Path) -> str:
    env = {
        "CARPOOL_DATABASE_URL": database_url,
        "CARPOOL_LINES_FILE": str(SHIPPED),
        "CARPOOL_PHONE_HASH_SALT": SALT,
    }
    args = ["attestation", "--phone", phone, "--year", "2026", "--out", str(out)]
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


def test_a_riders_trips_and_totals_are_in_the_attestation(
    seeded: Store,  # noqa: F811
    database_url: str,
    tmp_path: Path,
) -> None:
    expected = _trips_of_requests(seeded, {"r8", "r9"})  # rider B's, in the report's seed
    assert len(expected) == 2  # March (2 seats) and April: the whole year
    assert not any(trip.flags for trip in expected)
    page = _attestation(database_url, "06 12 34 56 02", tmp_path / "attestation.html")
    rows = re.findall(r"<tbody>(.*)</tbody>", page, re.S)[0].count("<tr>")
    assert rows == 2
    assert "<td>Calais</td><td>Dunkerque</td>" in page
    assert "<td>passager</td>" in page
    assert re.search(r'id="total-trajets">2<', page)
    total_km = km(sum(t.distance_m for t in expected))
    assert f'id="total-distance">{total_km}<' in page
    paid = euros(sum(t.passenger_contribution_cents for t in expected))
    assert f'id="total-paye">{paid}<' in page
    assert RIDER_B not in page  # the number is printed masked
    assert "<script" not in page
    assert "default-src 'none'" in page


def test_flagged_trips_and_other_peoples_are_left_out(
    seeded: Store,  # noqa: F811
    network: Network,  # noqa: F811
) -> None:
    start, end = year_bounds(2026)
    mine = trips_of_person(seeded, RIDER_A, lambda p: phone_hash(p, SALT), start, end)
    # Rider A's second trip, with the same driver within 30 minutes, is flagged by the RPC rules.
    assert [(t.origin_id, t.destination_id) for t in mine] == [("marck-est", "dunkerque-est")]
    assert trips_of_person(seeded, "+33600000000", str, start, end) == []
    assert trips_of_person(seeded, RIDER_B, str, *year_bounds(2025)) == []


def test_a_driver_who_texted_codes_gets_their_trips(
    seeded: Store,  # noqa: F811
    network: Network,  # noqa: F811
    database_url: str,
    tmp_path: Path,
) -> None:
    line = network.line(LineId("calais-dunkerque"))
    assert line is not None
    driven = request(50, TUESDAY, "car", 3, phone="+33611111111", driver=_sms_driver(DRIVER))
    seeded.save([(driven, None)])
    draft = draft_trip(line, driven, None)
    assert draft is not None
    record = TripBook(seeded).record(replace(draft))
    page = _attestation(database_url, DRIVER, tmp_path / "driver.html")
    assert "<td>conducteur</td>" in page
    assert f'id="total-recu">{euros(record.driver_compensation_cents)}<' in page
    assert 'id="total-trajets">1<' in page


def test_the_attestation_prints_in_chromium(
    seeded: Store,  # noqa: F811
    database_url: str,
    tmp_path: Path,
) -> None:
    out = tmp_path / "attestation.html"
    _attestation(database_url, RIDER_B, out)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 900, "height": 1000}, locale="fr-FR")
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.on(
            "request",
            lambda r: problems.append(r.url) if not r.url.startswith("file:") else None,
        )
        page.goto(out.as_uri())
        assert page.locator("#trajets tbody tr").count() == 2
        header = page.locator("#trajets th").first.evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )
        assert header != "rgba(0, 0, 0, 0)"  # the stylesheet applied under its CSP hash
        page.screenshot(path=str(ARTIFACTS / "attestation.png"), full_page=True)
        page.emulate_media(media="print")
        assert page.locator(".noprint").is_hidden()
        page.pdf(path=str(ARTIFACTS / "attestation.pdf"), format="A4")
        browser.close()
    assert problems == []  # no CSP violation, nothing fetched: self-contained
