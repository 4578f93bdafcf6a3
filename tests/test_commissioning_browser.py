"""Commissioning in Chromium: the dashboard marks the stop, the report renders and prints."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from line_service.commissioning.checks import DeviceCheck, Result
from line_service.commissioning.report import render_report
from tests.support.brokers import Mosquitto
from tests.support.service import ServiceProcess
from tests.test_commissioning_e2e import ARTIFACTS, STOP, TOKEN, commissioning_lines_file
from tests.test_dashboard_browser import CHROMIUM_ARGS


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[ServiceProcess]:
    process = ServiceProcess(
        broker_url=mosquitto.url,
        database_url=f"sqlite:///{tmp_path}/carpool.sqlite3",
        lines_file=commissioning_lines_file(tmp_path),
        directory=tmp_path,
        extra_env={"CARPOOL_API_TOKENS": f"{TOKEN}:operator"},
    )
    process.start()
    yield process
    process.stop()


def test_the_dashboard_shows_the_stop_in_commissioning(
    browser: Browser, service: ServiceProcess
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000}, locale="fr-FR")
    page.goto(service.base_url + "/")
    page.fill("#token", TOKEN)
    page.click("#login-form button[type=submit]")
    expect(page.locator("#live-status")).to_have_text("En direct", timeout=10_000)
    marked = page.locator("text.stop-km", has_text="en mise en service")
    expect(marked).to_have_count(1)
    expect(page.locator(f'circle.stop.commissioning[data-stop="{STOP}"]')).to_have_count(1)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "commissioning-dashboard.png"), full_page=True)


def test_the_report_renders_and_prints_on_one_page(browser: Browser, tmp_path: Path) -> None:
    at = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)

    def check(device: str, kind: str, result: Result, seconds: int) -> DeviceCheck:
        return DeviceCheck(
            STOP,
            "Marck",
            kind,
            device,
            "essai",
            result,
            "constat",
            at,
            at + timedelta(seconds=seconds),
        )

    html = render_report(
        line_id="calais-dunkerque",
        line_name="Calais ⇄ Dunkerque",
        timezone="Europe/Paris",
        stops=[(STOP, "Marck")],
        checks=[
            check("pmv-marck-est-1", "panneau", Result.OK, 1),
            check("pmv-marck-est-2", "panneau", Result.SILENT, 60),
            check("t-marck-est", "borne", Result.OK, 70),
        ],
        started_at=at,
        ended_at=at + timedelta(seconds=70),
    )
    path = tmp_path / "pv.html"
    path.write_text(html, encoding="utf-8")
    page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="fr-FR")
    page.goto(path.as_uri())
    expect(page.locator("h1")).to_have_text("Procès-verbal de mise en service")
    expect(page.locator("tbody tr")).to_have_count(3)
    expect(page.locator("tr.fail td.result")).to_have_text("Muet")
    expect(page.locator(".sign-off")).to_contain_text("Vu et approuvé par l'autorité organisatrice")
    expect(page.locator("td.time").first).to_have_text("10:00:00")  # Paris time
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "commissioning-report.png"), full_page=True)
    pdf = page.pdf(format="A4")
    assert len(re.findall(rb"/Type\s*/Page(?!s)", pdf)) == 1  # the signature block on page one
