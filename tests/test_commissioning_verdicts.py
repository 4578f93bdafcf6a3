"""Commissioning verdicts (pure), the lines.yaml key, and the SMS refusal text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from line_service.commissioning.checks import Result, press_verdict, sign_verdict
from line_service.network.lines_file import load_network
from sms_gateway.gsm7 import is_gsm7
from sms_gateway.replies import COMMISSIONING
from tests.support.service import write_lines_file

ASKED = [["ESSAI", "PMV-1"]]


def sign(pages: list[list[str]] | None, seq: int | None) -> dict[str, Any]:
    return {"reported_pages": pages, "reported_seq": seq, "rows": 3, "columns": 18}


def test_a_sign_is_judged_only_on_a_report_of_the_test_display_or_later() -> None:
    assert sign_verdict(sign(None, None), ASKED, 10) is None
    assert sign_verdict(sign(ASKED, 9), ASKED, 10) is None  # an older report proves nothing
    assert sign_verdict(sign(ASKED, 10), ASKED, 10) is Result.OK
    assert sign_verdict(sign([["AUTRE"]], 10), ASKED, 10) is Result.WRONG_READBACK
    assert sign_verdict(sign([["A", "B", "C", "D"]], 10), ASKED, 10) is Result.WRONG_GEOMETRY
    assert sign_verdict(sign([["X" * 19]], 10), ASKED, 10) is Result.WRONG_GEOMETRY


def test_a_terminal_passes_on_a_new_press_of_a_served_button() -> None:
    old = {"destination_id": "a", "known": True, "pressed_at": "t0", "request_id": "r0"}
    new = {**old, "request_id": "r1", "pressed_at": "t1"}
    assert press_verdict({"last_test_press": None}, None) is None
    assert press_verdict({"last_test_press": old}, old) is None
    assert press_verdict({"last_test_press": new}, old) == (Result.OK, "bouton a reçu")
    unknown = {**new, "known": False}
    verdict = press_verdict({"last_test_press": unknown}, old)
    assert verdict is not None
    assert verdict[0] is Result.WRONG_BUTTON


def test_the_commissioning_key_reaches_the_core(tmp_path: Path) -> None:
    path = write_lines_file(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["lines"][0]["directions"][0]["stops"][1]["commissioning"] = True
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    line = load_network(path).lines[0]
    first, second = line.directions[0].stops[:2]
    assert (line.in_commissioning(first), line.in_commissioning(second)) == (False, True)
    data["lines"][0]["commissioning"] = True
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    line = load_network(path).lines[0]
    assert all(line.in_commissioning(stop) for stop in line.all_stops())


def test_the_sms_refusal_is_short_and_gsm7() -> None:
    assert is_gsm7(COMMISSIONING)
    assert len(COMMISSIONING) <= 160
