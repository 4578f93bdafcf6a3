"""Personal data and secrets never reach a log line (the real structlog configuration)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from line_service.logging_setup import configure_logging

PHONES = ("+33 6 12 34 56 78", "0612345678", "06.12.34.56.79", "0033612345677")


@pytest.fixture
def lines() -> Iterator[Any]:
    configure_logging("json", "INFO")
    output = io.StringIO()  # the same processors, rendered into a buffer instead of stderr
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(output))

    def read() -> list[dict[str, Any]]:
        return [json.loads(line) for line in output.getvalue().splitlines() if line]

    yield read
    structlog.reset_defaults()


def test_phone_numbers_are_masked_everywhere_in_a_log_line(lines: Any) -> None:
    log = structlog.get_logger("test")
    log.info(
        f"sms from {PHONES[0]}",
        sender=PHONES[1],
        form={"From": PHONES[2], "Body": "CAL dunkerque"},
        recipients=[PHONES[3]],
    )
    [line] = lines()
    text = json.dumps(line, ensure_ascii=False)
    for phone in PHONES:
        assert phone not in text
    assert line["sender"] == "…78"
    assert line["form"] == {"From": "…79", "Body": "CAL dunkerque"}
    assert line["recipients"] == ["…77"]


def test_secrets_are_masked_and_ordinary_values_are_left_alone(lines: Any) -> None:
    log = structlog.get_logger("test")
    log.info(
        "configured",
        broker="mqtt://dispatcher:Zq9-secret@broker:1883",
        auth_token="AC123-token",
        password="hunter2",
        request_id="3f2a9c1d0e8b4a7f9c1d0e8b4a7f9c1d",
        pressed_at="2026-11-23T06:45:00.120Z",
        passengers=3,
        day="2026-11-23",
    )
    [line] = lines()
    assert line["broker"] == "mqtt://dispatcher:***@broker:1883"
    assert line["auth_token"] == "***"
    assert line["password"] == "***"
    assert line["request_id"] == "3f2a9c1d0e8b4a7f9c1d0e8b4a7f9c1d"
    assert line["pressed_at"] == "2026-11-23T06:45:00.120Z"
    assert line["passengers"] == 3
    assert line["day"] == "2026-11-23"
    assert line["timestamp"].startswith("20")
    assert "…" not in line["timestamp"]


def test_a_traceback_that_quotes_a_phone_number_is_masked_too(lines: Any) -> None:
    log = structlog.get_logger("test")
    try:
        raise ValueError(f"duplicate key (phone)=({PHONES[1]})")
    except ValueError:
        log.exception("writer.commit_failed")
    [line] = lines()
    assert "ValueError" in line["exception"]
    assert PHONES[1] not in line["exception"]
