"""Adapter: structlog configuration — JSON when not on a terminal, console on one."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_PHONE = re.compile(r"\+?\d[\d .-]{7,}\d")


def redact_phones(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask anything that looks like a phone number in string values (keeps the last 2 digits)."""
    for key, value in event.items():
        if isinstance(value, str) and _PHONE.search(value):
            event[key] = _PHONE.sub(lambda m: "…" + m.group(0)[-2:], value)
    return event


def configure_logging(fmt: str = "auto", level: str = "INFO") -> None:
    """Set up structlog and the stdlib root logger once, at start."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_phones,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
    for noisy in ("amqtt", "transitions", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
