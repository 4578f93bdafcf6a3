"""The study report in Debian's Chromium (Playwright): French page, four plots, the ranking."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect, sync_playwright
from typer.testing import CliRunner

from tests.planning.test_plan_cli import _app, write_small_scenario

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def test_report_renders_in_chromium(tmp_path: Path) -> None:
    scenario = write_small_scenario(tmp_path / "scenario.yaml")
    out = tmp_path / "study"
    assert CliRunner().invoke(_app(), ["plan", str(scenario), "--out", str(out)]).exit_code == 0
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1100, "height": 900}, locale="fr-FR")
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.on(
            "request",
            lambda request: (
                errors.append(request.url) if not request.url.startswith("file:") else None
            ),
        )
        page.goto((out / "report.html").as_uri())
        expect(page.locator("h1")).to_have_text("Étude test")
        expect(page.locator("#classement tr")).to_have_count(3)
        expect(page.locator("figure svg")).to_have_count(4)
        for index in range(4):
            box = page.locator("figure svg").nth(index).bounding_box()
            assert box is not None
            assert box["width"] > 400
            assert box["height"] > 150
        expect(page.locator("#hypotheses li").first).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "planning_report.png"), full_page=True)
        browser.close()
    assert errors == []  # no script error, nothing fetched from outside: self-contained
