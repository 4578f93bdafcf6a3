"""The dashboard of a two-process cluster in Debian's Chromium (Playwright): the page says which
process dispatches the line, whichever process it was opened on (a standby passes it to the
owner), and the heir says so after a takeover."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, async_playwright, expect

from line_service.storage.store import Store
from line_service.web.operator_accounts import Role, add_operator
from tests.support.faults import eventually
from tests.support.service import ServiceProcess
from tests.test_cluster import Pair, owns_the_line, pair  # noqa: F401 - the fixture, shared
from tests.test_dashboard_browser import ARTIFACTS, CHROMIUM_ARGS


def viewer_token(database_url: str) -> str:
    """A staff token stored in the cluster's database (every process reads the same table)."""
    store = Store(database_url)
    try:
        return add_operator(store, "salle-de-supervision", Role.VIEWER)
    finally:
        store.dispose()


@pytest.fixture
async def chromium() -> AsyncIterator[tuple[Browser, list[str]]]:
    """Chromium (async API: the cluster's fixtures run in the event loop) and the console
    errors of its pages, which must stay empty."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        errors: list[str] = []
        try:
            yield browser, errors
        finally:
            await browser.close()
    assert errors == [], f"console errors in the dashboard: {errors}"


async def dashboard_of(
    chromium: tuple[Browser, list[str]], process: ServiceProcess, token: str
) -> Page:
    browser, errors = chromium

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page = await browser.new_page(viewport={"width": 1400, "height": 1000}, locale="fr-FR")
    page.on("console", on_console)
    page.on("pageerror", lambda error: errors.append(f"uncaught: {error}"))
    await page.goto(process.base_url + "/")
    await sign_in(page, token)
    return page


async def sign_in(page: Page, token: str) -> None:
    await page.fill("#token", token)
    await page.click("#login-form button[type=submit]")
    await expect(page.locator("#line-name")).to_have_text("Calais ⇄ Dunkerque", timeout=10_000)


def node(process: ServiceProcess) -> str:
    return f"dispatcher-{process.http_port}"


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_either_door_shows_the_owners_view_and_the_heir_after_a_takeover(
    pair: Pair,  # noqa: F811
    chromium: tuple[Browser, list[str]],
) -> None:
    token = await asyncio.to_thread(viewer_token, pair.database_url)
    owner = await dashboard_of(chromium, pair.first, token)
    badge = owner.locator("#cluster-badge")
    await expect(badge).to_have_text(f"pilotée par ce processus ({node(pair.first)})")
    await expect(badge).to_have_class("badge cluster owner")

    # Opened on the standby: its door passes the page and the live socket to the owner.
    standby = await dashboard_of(chromium, pair.second, token)
    badge = standby.locator("#cluster-badge")
    await expect(badge).to_have_text(f"pilotée par ce processus ({node(pair.first)})")
    devices = len(pair.fleet.signs) + len(pair.fleet.terminals)
    await expect(standby.locator("#kpi-devices")).to_have_text(f"{devices}/{devices}")
    ARTIFACTS.mkdir(exist_ok=True)
    await standby.screenshot(path=str(ARTIFACTS / "cluster-dashboard-standby.png"))

    await owner.close()  # its process is about to die: no page of it left retrying
    await asyncio.to_thread(pair.first.kill)
    await eventually(lambda: asyncio.to_thread(owns_the_line, pair.second), 10, "new owner")
    # No reload: the page opened on the standby, its socket closed by the owner's death (1013),
    # reconnects to its process, now the owner, and says so on its own (live snapshots).
    await expect(standby.locator("#cluster-badge")).to_have_text(
        f"pilotée par ce processus ({node(pair.second)})", timeout=15_000
    )
    await expect(standby.locator("#kpi-devices")).to_have_text(f"{devices}/{devices}")
    await standby.screenshot(path=str(ARTIFACTS / "cluster-dashboard-heir.png"))
