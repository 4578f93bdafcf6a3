"""A signed-in rider's or driver's own attestation through the real app (real Mosquitto,
SQLite and PostgreSQL): the trip an app rider asked and an app driver validated is on both
pages, served with the page's own strict CSP; staff tokens and odd years are refused."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import sync_playwright
from pydantic import SecretStr
from sqlmodel import Session, select

from line_service.accounts.book import AccountRole
from line_service.authority.attestation import ATTESTATION_POLICY
from line_service.runtime import Runtime, build_runtime
from line_service.settings import Settings
from line_service.storage.store import TripRecord
from tests.planning.test_report_browser import ARTIFACTS, CHROMIUM_ARGS
from tests.support.accounts import account_token, bearer
from tests.support.app import served_app
from tests.support.brokers import Mosquitto
from tests.support.service import LINE, write_lines_file
from tests.support.waiting import wait_until
from tests.test_attestation_identity import Clock

RIDER, DRIVER, OTHER = "+33612345678", "+33698765432", "+33611111111"
OPERATOR = "operator-token-1"
RIDE = {"line_id": LINE, "stop_id": "marck-est", "destination_id": "dunkerque-est"}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def runtime(mosquitto: Mosquitto, database_url: str, tmp_path: Path, clock: Clock) -> Runtime:
    settings = Settings(
        lines_file=write_lines_file(tmp_path),
        database_url=database_url,
        mqtt_url=mosquitto.url,
        mqtt_client_id=f"attestation-api-{uuid.uuid4().hex[:8]}",
        phone_hash_salt=SecretStr("pepper"),
        api_tokens=SecretStr(f"alice:{OPERATOR}:operator"),
    )
    return build_runtime(settings, clock)


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with served_app(runtime) as client:
        client.base_url = client.base_url.join("/api/v1/")
        yield client


def _trips(runtime: Runtime) -> list[TripRecord]:
    with Session(runtime.store.engine) as session:
        return list(session.exec(select(TripRecord)).all())


async def _an_app_trip(api: httpx.AsyncClient, runtime: Runtime, clock: Clock) -> TripRecord:
    """An app rider asks, an app driver stops three minutes later and validates the code."""
    url = runtime.settings.database_url
    rider = account_token(url, RIDER, AccountRole.RIDER)
    driver = account_token(url, DRIVER, AccountRole.DRIVER)
    asked = await api.post("/requests", json=RIDE, headers=bearer(rider))
    assert asked.status_code == 201, asked.text
    clock.ahead += timedelta(minutes=3)  # an instant validation is held as too soon
    code = {"code": asked.json()["code"]}
    done = await api.post(f"/lines/{LINE}/validations", json=code, headers=bearer(driver))
    assert done.status_code == 200, done.text
    await asyncio.to_thread(wait_until, lambda: _trips(runtime) != [], 10, "the trip recorded")
    [trip] = _trips(runtime)
    assert not trip.flags
    return trip


def _rows(page: str) -> list[str]:
    return re.findall(r"<tr><td>\d\d/\d\d/\d{4}</td>.*?</tr>", page)


async def test_rider_and_driver_get_their_attestation_with_its_own_csp(
    api: httpx.AsyncClient, runtime: Runtime, clock: Clock
) -> None:
    trip = await _an_app_trip(api, runtime, clock)
    year = trip.picked_up_at.year
    url = runtime.settings.database_url
    for phone, role, label in (
        (RIDER, AccountRole.RIDER, "passager"),
        (DRIVER, AccountRole.DRIVER, "conducteur"),
    ):
        token = account_token(url, phone, role)
        answer = await api.get("/me/attestation", params={"year": year}, headers=bearer(token))
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"].startswith("text/html")
        assert answer.headers["content-security-policy"] == ATTESTATION_POLICY
        assert answer.headers["content-disposition"] == (
            f'inline; filename="attestation-{year}.html"'
        )
        page = answer.text
        [row] = _rows(page)
        assert f"<td>{label}</td>" in row
        assert re.search(r'id="total-trajets">1<', page)
        assert phone not in page  # printed masked
        assert f"Attestation de covoiturage {year}" in page
    # Another account, a year without trips: the page says there is none.
    other = account_token(url, OTHER, AccountRole.RIDER)
    empty = await api.get("/me/attestation", params={"year": year}, headers=bearer(other))
    assert empty.status_code == 200
    assert _rows(empty.text) == []
    assert "Aucun trajet validé" in empty.text


async def test_an_account_drivers_trips_are_found_by_the_account(
    api: httpx.AsyncClient, runtime: Runtime, clock: Clock
) -> None:
    trip = await _an_app_trip(api, runtime, clock)
    with Session(runtime.store.engine) as session:  # a trip that kept no driver's identity
        row = session.get(TripRecord, trip.id)
        assert row is not None
        assert row.driver_ref.startswith("account:")
        row.driver_identity_key = None
        session.add(row)
        session.commit()
    token = account_token(runtime.settings.database_url, DRIVER, AccountRole.DRIVER)
    answer = await api.get(
        "/me/attestation", params={"year": trip.picked_up_at.year}, headers=bearer(token)
    )
    [row_html] = _rows(answer.text)
    assert "<td>conducteur</td>" in row_html


async def test_staff_tokens_anonymous_callers_and_odd_years_are_refused(
    api: httpx.AsyncClient, runtime: Runtime
) -> None:
    rider = account_token(runtime.settings.database_url, RIDER, AccountRole.RIDER)
    staff = await api.get("/me/attestation", params={"year": 2026}, headers=bearer(OPERATOR))
    assert staff.status_code == 403
    assert "rider's or driver's token" in staff.json()["detail"]
    assert (await api.get("/me/attestation", params={"year": 2026})).status_code == 401
    for year in ("1999", "2101", "soon"):
        odd = await api.get("/me/attestation", params={"year": year}, headers=bearer(rider))
        assert odd.status_code == 422, year
        assert odd.json()["detail"][0]["loc"] == ["query", "year"]
    missing = await api.get("/me/attestation", headers=bearer(rider))
    assert missing.status_code == 422


def _shown_in_chromium(url: str, token: str) -> tuple[str, int, list[str]]:
    """The page as Chromium shows it: table header background, rows, console problems."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        page = browser.new_page(
            viewport={"width": 900, "height": 800},
            locale="fr-FR",
            extra_http_headers=bearer(token),
        )
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text))
        page.on("pageerror", lambda error: problems.append(str(error)))
        page.goto(url)
        header = page.locator("#trajets th").first.evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )
        rows = page.locator("#trajets tbody tr").count()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "attestation-served.png"), full_page=True)
        browser.close()
    return header, rows, problems


async def test_the_served_page_keeps_its_stylesheet_under_the_header_policy(
    api: httpx.AsyncClient, runtime: Runtime, clock: Clock
) -> None:
    trip = await _an_app_trip(api, runtime, clock)
    token = account_token(runtime.settings.database_url, RIDER, AccountRole.RIDER)
    url = str(
        api.base_url.join("me/attestation").copy_with(params={"year": trip.picked_up_at.year})
    )
    header, rows, problems = await asyncio.to_thread(_shown_in_chromium, url, token)
    assert header != "rgba(0, 0, 0, 0)"  # the hashed stylesheet applied: no CSP refusal
    assert rows == 1
    assert problems == []
