"""The dashboard in Debian's Chromium (Playwright): live presses, sign control, cancel, roles."""

from __future__ import annotations

import contextlib
import re
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, expect, sync_playwright
from sqlmodel import Session

from line_service.accounts.book import AccountRole
from line_service.storage.rpc_outbox_table import RpcJourneyRecord
from line_service.storage.store import Store
from tests.support.accounts import account_token, bearer
from tests.support.brokers import Mosquitto
from tests.support.mqtt_probe import MqttProbe
from tests.support.service import LINE, REPO, ServiceProcess, serving
from tests.support.waiting import wait_until

PREFIX = f"carpool/v1/{LINE}"
SIGN = "pmv-marck-est-1"
OPERATOR, VIEWER = "browser-operator-token", "browser-viewer-token"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = REPO / "tests" / "artifacts"


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[ServiceProcess]:
    # The study beside the lines file: the wait estimates come from its model (no history yet).
    shutil.copy(REPO / "config" / "corridors.yaml", tmp_path / "corridors.yaml")
    with serving(
        mosquitto.url,
        tmp_path,
        extra_env={"CARPOOL_API_TOKENS": f"{OPERATOR}:operator,{VIEWER}:viewer"},
    ) as process:
        yield process


EXPECTED_CONSOLE = re.compile(r"status of 401")  # the wrong-token test's refused call


@pytest.fixture
def console_errors() -> list[str]:
    """Console errors and uncaught exceptions of the test's pages."""
    return []


@pytest.fixture
def browser(console_errors: list[str]) -> Iterator[Browser]:
    """Chromium; the test fails on any console error or uncaught exception of its pages (a
    Content-Security-Policy violation is one)."""
    errors = console_errors

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error" and not EXPECTED_CONSOLE.search(message.text):
            errors.append(message.text)

    def on_page_error(error: Error) -> None:
        errors.append(f"uncaught: {error}")

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        new_page = chromium.new_page

        def watched_page(**options: object) -> Page:
            page = new_page(**options)  # type: ignore[arg-type]
            page.on("console", on_console)
            page.on("pageerror", on_page_error)
            return page

        chromium.new_page = watched_page  # type: ignore[method-assign]
        yield chromium
        chromium.close()
    assert errors == [], f"console errors in the dashboard: {errors}"


def signed_in(browser: Browser, service: ServiceProcess, token: str) -> Page:
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="fr-FR")
    page.goto(service.base_url + "/")
    page.fill("#token", token)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#live-status")).to_have_text("En direct", timeout=10_000)
    return page


def press(probe: MqttProbe, request_id: str) -> None:
    probe.publish(
        f"{PREFIX}/terminals/t-marck-est/request",
        {"v": 1, "request_id": request_id, "destination": "dunkerque-est", "seats": 1},
    )


def display_pages(probe: MqttProbe) -> list[list[str]] | None:
    shown = probe.last(f"{PREFIX}/signs/{SIGN}/display")
    return None if shown is None else list(shown["pages"])


def test_operator_watches_a_press_live_blanks_a_sign_and_cancels(
    browser: Browser, service: ServiceProcess, probe: MqttProbe
) -> None:
    page = signed_in(browser, service, OPERATOR)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    expect(page.locator("#line-name")).to_have_text("Calais ⇄ Dunkerque")
    expect(page.locator("#waiting-empty")).to_be_visible()
    estimates = page.locator("#estimates li")
    expect(estimates).to_have_count(5 + 5)  # each boarding stop, to the end of its direction
    expect(estimates.first).to_contain_text("Calais → Dunkerque")
    expect(estimates.first).to_contain_text("modèle de l’étude")

    press(probe, "browser-1")
    row = page.locator("#waiting tr")
    expect(row).to_have_count(1, timeout=1000)
    expect(row).to_contain_text("Marck → Dunkerque", timeout=1000)
    sign = page.locator(f'[data-sign="{SIGN}"]')
    expect(sign).to_contain_text("DUNKERQUE", timeout=1000)
    expect(row.locator(".code")).to_have_text(re.compile(r"^\d{4}$"))
    expect(page.locator("#kpi-waiting")).to_have_text("1")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    sign.click()
    expect(page.locator("#sign-dialog")).to_be_visible()
    expect(page.locator("#sign-state")).to_contain_text("COVOITURAGE / DUNKERQUE")
    page.click("#sign-blank")
    expect(page.locator("#confirm-text")).to_contain_text(f"Éteindre le panneau {SIGN}")
    page.click("#confirm-yes")
    wait_until(lambda: display_pages(probe) == [], 2, "the sign's MQTT display to go blank")
    expect(sign).to_contain_text("éteint", timeout=1000)
    expect(page.locator("#sign-messages li")).to_contain_text("panneau éteint")
    page.click("#sign-messages li button")
    page.click("#confirm-yes")
    wait_until(lambda: "DUNKERQUE" in str(display_pages(probe)), 2, "riders back on the sign")
    page.click("#sign-close")

    row.get_by_role("button", name="Annuler").click()
    expect(page.locator("#confirm-text")).to_contain_text("Annuler la demande Marck → Dunkerque")
    page.click("#confirm-yes")
    expect(page.locator("#waiting tr")).to_have_count(0, timeout=2000)
    expect(page.locator("#recent li").first).to_contain_text("annulée")
    wait_until(lambda: display_pages(probe) == [], 2, "sign dark after the cancel")
    assert errors == []


def test_viewer_sees_the_line_without_action_buttons(
    browser: Browser, service: ServiceProcess, probe: MqttProbe
) -> None:
    page = signed_in(browser, service, VIEWER)
    press(probe, "browser-viewer")
    expect(page.locator("#waiting tr")).to_have_count(1, timeout=1000)
    expect(page.get_by_role("button", name="Annuler")).to_be_hidden()
    page.click("#wall-toggle")
    expect(page.locator("body")).to_have_class(re.compile("wall"))
    page.set_viewport_size({"width": 1920, "height": 1080})
    page.screenshot(path=str(ARTIFACTS / "dashboard-wall.png"), full_page=True)


def test_a_wrong_token_is_refused_and_asked_again(
    browser: Browser, service: ServiceProcess
) -> None:
    page = browser.new_page()
    page.goto(service.base_url + "/")
    page.fill("#token", "not-a-token")
    page.click("#login-form button[type=submit]")
    expect(page.locator("#login-error")).to_have_text("Jeton refusé.")
    expect(page.locator("#login")).to_be_visible()


def test_the_page_policy_blocks_inline_script_and_the_dashboard_needs_none(
    browser: Browser, service: ServiceProcess, console_errors: list[str]
) -> None:
    page = signed_in(browser, service, VIEWER)  # the whole dashboard ran
    assert console_errors == []
    with contextlib.suppress(Error):
        page.add_script_tag(content="window.injected = true")
    assert page.evaluate("window.injected === undefined")
    wait_until(lambda: bool(console_errors), 5, "the blocked inline script reported")
    assert all("Content Security Policy" in text for text in console_errors), console_errors
    console_errors.clear()


def test_an_operator_approves_a_held_trip_from_the_dashboard(
    browser: Browser, service: ServiceProcess
) -> None:
    from line_service.authority.trip_reviews import TripReviews
    from line_service.storage.store import Store
    from tests.test_api_operator import held_trip

    trip_id = held_trip(service.database_url)
    page = signed_in(browser, service, OPERATOR)
    row = page.locator(f"#held tr[data-trip='{trip_id}']")
    expect(row).to_contain_text("validé trop tôt après la demande")
    expect(row).to_contain_text("à décider")
    ARTIFACTS.mkdir(exist_ok=True)
    page.locator("section.held").screenshot(path=str(ARTIFACTS / "dashboard-held-trips.png"))
    row.locator("button[data-decision=approve]").click()
    page.fill("#review-note", "conducteur déjà à l'arrêt, vérifié par téléphone")
    page.click("#review-yes")
    expect(row.locator(".state.approve")).to_have_text("validé", timeout=10_000)
    expect(row.locator("button[data-decision=reject]")).to_have_count(1)  # may still change
    store = Store(service.database_url)
    try:
        review = TripReviews(store).of(trip_id)
    finally:
        store.dispose()
    assert review is not None
    assert (review.decision, review.note) == (
        "approve",
        "conducteur déjà à l'arrêt, vérifié par téléphone",
    )
    viewer = signed_in(browser, service, VIEWER)
    expect(viewer.locator("section.held")).to_be_hidden()


def test_operators_see_the_lines_journeys_per_registry_status(
    browser: Browser, service: ServiceProcess
) -> None:
    store = Store(service.database_url)
    now = datetime.now(UTC)
    with Session(store.engine) as session:
        for n, status in enumerate(("ok", "ok", "pending", "not_sent", "fraud_error")):
            session.add(
                RpcJourneyRecord(
                    journey_id=f"j{n}", line_id=LINE, trip_at=now, status=status, updated_at=now
                )
            )
        session.commit()
    store.dispose()
    page = signed_in(browser, service, OPERATOR)
    panel = page.locator("#registry-panel")
    expect(panel).to_be_visible()
    expect(panel.locator('[data-status="ok"]')).to_have_text("2 validés")
    expect(panel.locator('[data-status="fraud_error"]')).to_have_text("1 rejetés pour fraude")
    expect(panel.locator("li")).to_have_count(4)
    ARTIFACTS.mkdir(exist_ok=True)
    panel.screenshot(path=str(ARTIFACTS / "dashboard-registry.png"))
    viewer = signed_in(browser, service, VIEWER)
    expect(viewer.locator("#registry-panel")).to_be_hidden()


def test_the_dashboard_lists_the_drivers_announced_on_the_line(
    browser: Browser, service: ServiceProcess
) -> None:
    page = signed_in(browser, service, VIEWER)
    panel = page.locator("#drivers-panel")
    expect(panel.locator("#drivers-empty")).to_be_visible()
    driver = account_token(service.database_url, "+33698765432", AccountRole.DRIVER)
    trips = f"{service.base_url}/api/v1/lines/{LINE}/driver-trips"
    for trip in (
        {"from_stop": "marck-est", "towards": "dunkerque-est", "leaving_in_minutes": 0},
        {"from_stop": "dunkerque-ouest", "towards": "calais-ouest", "leaving_in_minutes": 12},
    ):
        answer = httpx.post(trips, json=trip, headers=bearer(driver), timeout=10)
        assert answer.status_code == 201, answer.text
    page.reload()  # signed in still (the tab keeps its token); else the next refresh, in 30 s
    items = panel.locator("#drivers li")
    expect(items).to_have_count(2, timeout=10_000)
    expect(items.first).to_contain_text("Marck → Dunkerque")
    expect(items.first.locator(".state")).to_have_text("en route")
    expect(items.first.locator(".when")).to_contain_text(
        re.compile(r"passé à \d\d:\d\d, à Dunkerque vers")
    )
    expect(items.nth(1)).to_contain_text("Dunkerque → Calais")
    expect(items.nth(1).locator(".state")).to_have_text("annoncé")
    expect(items.nth(1).locator(".when")).to_contain_text(re.compile(r"départ dans 1[12] min"))
    expect(panel.locator("#drivers-empty")).to_be_hidden()
    ARTIFACTS.mkdir(exist_ok=True)
    panel.screenshot(path=str(ARTIFACTS / "dashboard-drivers.png"))
