"""Adapter: the commissioning walk — each device of a stop tested through the operator API.

A sign gets a short operator message (`ESSAI` / its id) and must report it back; a terminal,
whose stop is in commissioning, must be online, show the commissioning screen, and see a test
press. Verdicts are pure functions of what the API answered (`sign_verdict`, `press_verdict`);
the walk polls the API with a deadline per device and reports each check as it ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol

TEST_MESSAGE_MINUTES = 2.0
POLL_SECONDS = 0.5
COMMISSIONING_TITLE = "MISE EN SERVICE"

Json = dict[str, Any]


class Result(StrEnum):
    """The outcome of one device's check."""

    OK = "ok"
    SILENT = "silent"
    WRONG_READBACK = "wrong_readback"
    WRONG_GEOMETRY = "wrong_geometry"
    WRONG_BUTTON = "wrong_button"
    NOT_IN_COMMISSIONING = "not_in_commissioning"


RESULT_FR: dict[Result, str] = {
    Result.OK: "OK",
    Result.SILENT: "Muet",
    Result.WRONG_READBACK: "Relecture erronée",
    Result.WRONG_GEOMETRY: "Géométrie erronée",
    Result.WRONG_BUTTON: "Bouton inconnu",
    Result.NOT_IN_COMMISSIONING: "Arrêt pas en mise en service",
}


@dataclass(frozen=True, slots=True)
class DeviceCheck:
    """One device's check: what was tried, what came of it, when it started and ended."""

    stop_id: str
    stop_name: str
    kind: str  # "panneau" or "borne"
    device_id: str
    test: str
    result: Result
    detail: str
    started_at: datetime
    ended_at: datetime


class Api(Protocol):
    """The operator API calls the walk needs."""

    def line(self, line_id: str) -> Json: ...
    def sign(self, line_id: str, sign_id: str) -> Json: ...
    def terminal(self, line_id: str, terminal_id: str) -> Json: ...
    def post_message(self, line_id: str, sign_id: str, pages: list[list[str]]) -> Json: ...
    def clear_message(self, line_id: str, sign_id: str, message_id: str) -> None: ...


def test_pages(sign_id: str) -> list[list[str]]:
    """The test page a sign is asked to show."""
    return [["ESSAI", sign_id.upper()]]


def sign_verdict(sign: Json, asked_pages: list[list[str]], asked_seq: int) -> Result | None:
    """OK, wrong geometry or wrong readback once the sign reported the test display (or a later
    one); None while it has not."""
    reported_seq = sign.get("reported_seq")
    reported = sign.get("reported_pages")
    if reported is None or reported_seq is None or reported_seq < asked_seq:
        return None
    if reported == asked_pages:
        return Result.OK
    rows, columns = int(sign["rows"]), int(sign["columns"])
    if any(len(page) > rows or any(len(row) > columns for row in page) for page in reported):
        return Result.WRONG_GEOMETRY
    return Result.WRONG_READBACK


def press_verdict(terminal: Json, before: Json | None) -> tuple[Result, str] | None:
    """OK (or an unknown button) once a test press newer than `before` is recorded; else None."""
    press = terminal.get("last_test_press")
    if press is None or press == before:
        return None
    if not press["known"]:
        return Result.WRONG_BUTTON, f"bouton « {press['destination_id']} » inconnu ici"
    return Result.OK, f"bouton {press['destination_id']} reçu"


def pages_text(pages: list[list[str]] | None) -> str:
    """Pages as one line: rows joined by " / ", pages by " | "."""
    if not pages:
        return "éteint"
    return " | ".join(" / ".join(page) for page in pages)


@dataclass
class Walk:
    """Tests the devices of a line's stops one after the other."""

    api: Api
    line_id: str
    timeout: timedelta
    on_check: Callable[[DeviceCheck], None]
    on_prompt: Callable[[str], None]
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def run(self, stops: list[Json]) -> list[DeviceCheck]:
        """Every device of `stops`: signs first (no one needed on site), then the terminal."""
        checks: list[DeviceCheck] = []
        for stop in stops:
            for sign in stop["signs"]:
                checks.append(self._done(self.check_sign(stop, sign["id"])))
            if stop.get("terminal"):
                checks.append(self._done(self.check_terminal(stop, stop["terminal"]["id"])))
        return checks

    def _done(self, check: DeviceCheck) -> DeviceCheck:
        self.on_check(check)
        return check

    def check_sign(self, stop: Json, sign_id: str) -> DeviceCheck:
        """Post the test page, wait for the sign's readback, clear the page."""
        started = self.clock()
        asked = test_pages(sign_id)
        posted = self.api.post_message(self.line_id, sign_id, asked)
        fitted: list[list[str]] = posted["message"]["pages"]
        test = f"page d'essai « {pages_text(fitted)} »"
        asked_seq = int(posted["sign"]["seq"])
        deadline = time.monotonic() + self.timeout.total_seconds()
        result: Result | None = None
        sign = posted["sign"]
        try:
            while result is None and time.monotonic() < deadline:
                sign = self.api.sign(self.line_id, sign_id)
                result = sign_verdict(sign, fitted, asked_seq)
                if result is None:
                    time.sleep(POLL_SECONDS)
        finally:
            self.api.clear_message(self.line_id, sign_id, posted["message"]["message_id"])
        if result is None:
            offline = sign.get("online") is False
            detail = "hors ligne" if offline else "aucune relecture avant le délai"
            return self._check(stop, "panneau", sign_id, test, Result.SILENT, detail, started)
        detail = f"relu « {pages_text(sign.get('reported_pages'))} »"
        if result is Result.WRONG_GEOMETRY:
            detail += f" (panneau configuré {sign['rows']}×{sign['columns']})"
        return self._check(stop, "panneau", sign_id, test, result, detail, started)

    def check_terminal(self, stop: Json, terminal_id: str) -> DeviceCheck:
        """Online, commissioning screen shown, then one test press before the deadline."""
        started = self.clock()
        test = "écran de mise en service et appui d'essai"
        terminal = self.api.terminal(self.line_id, terminal_id)
        if not terminal.get("commissioning"):
            detail = "appui non demandé : il serait une vraie demande"
            return self._check(
                stop, "borne", terminal_id, test, Result.NOT_IN_COMMISSIONING, detail, started
            )
        before = terminal.get("last_test_press")
        self.on_prompt(f"Appuyez sur un bouton de la borne {terminal_id}")
        deadline = time.monotonic() + self.timeout.total_seconds()
        verdict: tuple[Result, str] | None = None
        while time.monotonic() < deadline:
            terminal = self.api.terminal(self.line_id, terminal_id)
            verdict = press_verdict(terminal, before)
            if verdict is not None:
                break
            time.sleep(POLL_SECONDS)
        if verdict is None:
            online = terminal.get("online")
            detail = "hors ligne" if online is not True else "aucun appui avant le délai"
            return self._check(stop, "borne", terminal_id, test, Result.SILENT, detail, started)
        result, detail = verdict
        if result is Result.OK and not _commissioning_screen(terminal):
            result = Result.WRONG_READBACK
            detail = f"écran inattendu « {' / '.join(terminal.get('screen_lines', []))} »"
        return self._check(stop, "borne", terminal_id, test, result, detail, started)

    def _check(
        self,
        stop: Json,
        kind: str,
        device_id: str,
        test: str,
        result: Result,
        detail: str,
        started: datetime,
    ) -> DeviceCheck:
        return DeviceCheck(
            stop_id=stop["id"],
            stop_name=stop["name"],
            kind=kind,
            device_id=device_id,
            test=test,
            result=result,
            detail=detail,
            started_at=started,
            ended_at=self.clock(),
        )


def _commissioning_screen(terminal: Json) -> bool:
    lines: list[str] = terminal.get("screen_lines", [])
    return terminal.get("screen_state") == "closed" and COMMISSIONING_TITLE in lines
