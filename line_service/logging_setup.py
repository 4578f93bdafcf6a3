"""Adapter: structlog configuration — JSON when not on a terminal, console on one."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# 9 to 15 digits, optionally grouped by spaces, dots or dashes, not inside a word: phone
# numbers ("+33 6 12 34 56 78", "0612345678"), not dates, times, ids or hex digests.
_PHONE = re.compile(r"(?<![\w+-])(?:\+|00)?\d(?:[ .-]?\d){8,14}(?![\w-])")
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@", re.IGNORECASE)
_SECRET_KEY = re.compile(
    r"(^|[_-])(pass(word|wd)?|secret|token|auth|authorization|signature|api_?key)($|[_-])",
    re.IGNORECASE,
)


def _redact(value: Any) -> Any:
    if isinstance(value, str):
        value = _URL_PASSWORD.sub(r"\1***@", value)
        return _PHONE.sub(lambda m: "…" + m.group(0)[-2:], value)
    if isinstance(value, dict):
        return {k: "***" if _is_secret(k, v) else _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact(item) for item in value)
    return value


def _is_secret(key: object, value: object) -> bool:
    return isinstance(key, str) and bool(_SECRET_KEY.search(key)) and value not in (None, "")


def redact_phones(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask phone numbers (keeps the last 2 digits), URL passwords and secret-named fields.

    Applies to nested dicts and lists too; runs again after tracebacks are formatted.
    """
    for key, value in event.items():
        event[key] = "***" if _is_secret(key, value) else _redact(value)
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
        processors=[*shared, structlog.processors.format_exc_info, redact_phones, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
    for noisy in ("amqtt", "transitions", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
