"""Adapter: structlog configuration — JSON when not on a terminal, console on one."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import re
import sys
from collections.abc import Iterable, MutableMapping
from typing import Any
from urllib.parse import urlsplit

import structlog

from line_service.settings import Settings

# 9 to 15 digits, optionally grouped by spaces, dots or dashes, not inside a word: phone
# numbers ("+33 6 12 34 56 78", "0612345678"), not dates, times, ids or hex digests.
# Also "+33 (0)6 …", a form-encoded "%2B33…", and a "+" number glued to letters ("to+33…").
_DIGITS = r"\d(?:[ .-]?(?:\(0\)[ .-]?)?\d){8,14}"
_PHONE = re.compile(
    rf"(?<![\d+])(?:\+|%2B){_DIGITS}(?!\d)|(?<![\w+-])(?:00)?{_DIGITS}(?![\w-])", re.IGNORECASE
)
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^@\s/]+@", re.IGNORECASE)
_SECRETS = r"pass(?:word|wd)?|secret|token|auth_?token|authorization|signature|api_?key|salt"
_SECRET_KEY = re.compile(rf"(^|[_-])({_SECRETS}|auth|cookie|credentials?)s?($|[_-])", re.IGNORECASE)
# In free text: "Authorization: Bearer …", "token=…", "'password': '…'", a bare "Bearer …".
_SECRET_PAIR = re.compile(
    rf"""(\b[\w-]*(?:{_SECRETS})s?["']?\s*[:=]\s*["']?(?:(?:bearer|basic)\s+)?)"""
    r"""(?!\*\*\*)[^\s"'&,;}\]]+""",
    re.IGNORECASE,
)
_BEARER = re.compile(r"\b(bearer|basic)\s+(?!\*\*\*)[A-Za-z0-9._~+/=-]{6,}", re.IGNORECASE)


_DIGITS_DELETED = str.maketrans("", "", "0123456789")


@functools.lru_cache(maxsize=4096)
def _redact_text(text: str) -> str:
    # Each pattern runs only where it could match: most logged values are short names and ids
    # (and repeat, hence the cache); a log line must not cost more than the event it tells.
    if "://" in text:
        text = _URL_PASSWORD.sub(r"\1***@", text)
    if " " in text:
        text = _BEARER.sub(r"\1 ***", text)
    if ":" in text or "=" in text:
        text = _SECRET_PAIR.sub(r"\1***", text)
    # A phone number needs 9 digits, not inside a word: an id mixing letters and digits
    # (alphanumeric only, not all digits) cannot hold one.
    hides_no_number = text.isalnum() and not text.isdigit()
    if not hides_no_number and len(text) - len(text.translate(_DIGITS_DELETED)) >= 9:
        text = _PHONE.sub(lambda m: "…" + m.group(0)[-2:], text)
    return text


def _redact(value: Any) -> Any:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return _redact_text(value)
    if isinstance(value, dict):
        return {k: "***" if _is_secret(k, v) else _redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return (list if isinstance(value, set | frozenset) else type(value))(
            _redact(item) for item in value
        )
    return value


def _is_secret(key: object, value: object) -> bool:
    return isinstance(key, str) and _secret_name(key) and value not in (None, "")


@functools.lru_cache(maxsize=1024)
def _secret_name(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


def redact_phones(
    _logger: Any, _name: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Mask phone numbers (keeps the last 2 digits), URL passwords and secret-named fields.

    Applies to nested dicts and lists too; runs again after tracebacks are formatted.
    """
    for key, value in event.items():
        event[key] = "***" if _is_secret(key, value) else _redact(value)
    return event


class RedactSecretValues:
    """A processor masking the configured secrets' exact values wherever they appear."""

    def __init__(self, values: Iterable[str]) -> None:
        found = {value for value in values if len(value) >= 6}
        self._pattern = (
            re.compile("|".join(re.escape(v) for v in sorted(found, key=len, reverse=True)))
            if found
            else None
        )
        self._mask_text = functools.lru_cache(maxsize=4096)(self._mask_uncached)

    def _mask_uncached(self, text: str) -> str:
        assert self._pattern is not None
        return self._pattern.sub("***", text)

    def mask(self, value: Any) -> Any:
        """The value with every secret replaced by `***` (nested dicts and lists too)."""
        if self._pattern is None:
            return value
        if isinstance(value, str):
            return self._mask_text(value)
        if isinstance(value, dict):
            return {k: self.mask(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.mask(item) for item in value]
        return value

    def __call__(
        self, _logger: Any, _name: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        for key, value in event.items():
            event[key] = self.mask(value)
        return event


class _RedactingFilter(logging.Filter):
    """Applies the same masking to stdlib log records (uvicorn, libraries)."""

    def __init__(self, values: RedactSecretValues) -> None:
        super().__init__()
        self._values = values

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = _redact(self._values.mask(record.getMessage())), None
        return True


def secret_values(settings: Settings) -> list[str]:
    """The configured secrets (Twilio token, hash salt, API tokens, MQTT password)."""
    values = [
        settings.twilio_auth_token.get_secret_value(),
        settings.phone_hash_salt.get_secret_value(),
        urlsplit(settings.mqtt_url).password or "",
    ]
    raw = settings.api_tokens.get_secret_value().strip()
    if raw.startswith("{"):
        with contextlib.suppress(ValueError, TypeError):
            values += [str(key) for key in json.loads(raw)]
    else:
        values += [item.split(":")[-2] for item in raw.split(",") if item.count(":") >= 1]
    return [value.strip() for value in values if value.strip()]


def configure_logging(fmt: str = "auto", level: str = "INFO", secrets: Iterable[str] = ()) -> None:
    """Set up structlog and the stdlib root logger once, at start."""
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    )
    values = RedactSecretValues(secrets)
    structlog.configure(
        # Masking once, after tracebacks are formatted, covers the fields and the traceback; the
        # time stamp, added after, holds nothing to mask.
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            values,
            redact_phones,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        # One write per line (PrintLogger writes the line and its newline apart: two calls).
        logger_factory=structlog.WriteLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(
        level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(_RedactingFilter(values))
    for noisy in ("amqtt", "transitions", "apscheduler"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
