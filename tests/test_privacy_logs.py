"""Log lines never carry a phone number or a secret, whatever the shape of what is logged."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import phonenumbers
import pytest
import structlog
from hypothesis import given
from hypothesis import strategies as st
from pydantic import SecretStr

from line_service.logging_setup import (
    RedactSecretValues,
    configure_logging,
    redact_phones,
    secret_values,
)
from line_service.settings import Settings

PHONES = [
    "+33612345678",
    "+33 6 12 34 56 78",
    "+33 (0)6 12 34 56 78",
    "06 12 34 56 78",
    "0612345678",
    "06.12.34.56.78",
    "06-12-34-56-78",
    "0033612345678",
    "tel:+33612345678",
    "From=%2B33612345678&Body=CAL",
    "to+33612345678",
]
HARMLESS = [
    "2026-11-23T06:45:12.345000+00:00",
    "request press-1 at stop marck-est",
    "sid SM3f2a9c1e0b7d4c5a8e6f1d2c3b4a5968",
    "phone_hash 1234567890abcdef1234567890abcdef",
    "code 4821, seq 123456, port 8000, 127.0.0.1",
    "12:30-19:30",
]


def redacted(**event: Any) -> dict[str, Any]:
    return dict(redact_phones(None, "info", dict(event)))


@pytest.mark.parametrize("phone", PHONES)
def test_every_usual_phone_format_is_masked_keeping_two_digits(phone: str) -> None:
    out = redacted(event="sms.received", detail=f"sender {phone} asked")

    assert "12 34" not in out["detail"]
    assert "1234" not in out["detail"]
    assert out["detail"].startswith("sender ")
    assert "…78" in out["detail"]


FORMATS = [
    phonenumbers.PhoneNumberFormat.E164,
    phonenumbers.PhoneNumberFormat.INTERNATIONAL,
    phonenumbers.PhoneNumberFormat.NATIONAL,
    phonenumbers.PhoneNumberFormat.RFC3966,
]
WORDS = st.text(alphabet=st.sampled_from("abcdefXYZ :;,=()[]{}'\"é\n"), max_size=20)


@given(
    first=st.sampled_from("67"),
    rest=st.text(alphabet="0123456789", min_size=8, max_size=8),
    fmt=st.sampled_from(FORMATS),
    sep=st.sampled_from(" :=,;([{'\"\n\t"),
    before=WORDS,
    after=WORDS,
)
def test_any_french_mobile_in_any_format_inside_any_text_loses_its_digits(
    first: str, rest: str, fmt: int, sep: str, before: str, after: str
) -> None:
    """Numbers glued to letters are left alone on purpose (ids); "+" numbers are masked anyway."""
    number = phonenumbers.format_number(phonenumbers.parse(f"0{first}{rest}", "FR"), fmt)
    out = redacted(detail=f"{before}{sep}{number}{sep}{after}", nested={"k": [number]})

    digits = "".join(ch for ch in json.dumps(out, ensure_ascii=False) if ch.isdigit())
    assert f"{first}{rest}"[:7] not in digits


@pytest.mark.parametrize("text", HARMLESS)
def test_dates_ids_codes_and_hashes_are_left_alone(text: str) -> None:
    assert redacted(detail=text)["detail"] == text


def test_phones_in_nested_dicts_lists_tuples_and_bytes_are_masked() -> None:
    out = redacted(
        payload={"form": {"From": "+33612345678", "To": ["0698765432", ("06 11 11 22 22",)]}},
        raw=b'{"phone": "+33612345678"}',
    )

    text = json.dumps(out)
    for digits in ("612345678", "698765432", "11 11 22"):
        assert digits not in text
    assert out["payload"]["form"]["From"] == "…78"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("twilio_auth_token", "tok-0123456789"),
        ("auth_token", "tok-0123456789"),
        ("AuthToken", "tok-0123456789"),
        ("api_tokens", "abcdefgh:admin"),
        ("password", "hunter22"),
        ("phone_hash_salt", "salty-salt"),
        ("X-Twilio-Signature", "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        ("Authorization", "Bearer abcdef123456"),
        ("cookie", "session=abc"),
    ],
)
def test_fields_named_like_secrets_are_masked(field: str, value: str) -> None:
    assert redacted(**{field: value})[field] == "***"
    assert redacted(request={"headers": [{field: value}]})["request"]["headers"][0][field] == "***"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("GET /lines with Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "eyJhbGciOiJ"),
        ("headers={'Authorization': 'Basic dXNlcjpwYXNzd29yZA=='}", "dXNlcjpw"),
        ("connecting to mqtt://dispatcher:s3cr3t-pw@broker:1883", "s3cr3t-pw"),
        ("callback https://x.example/cb?token=abc123def&x=1", "abc123def"),
        ('{"auth_token": "tok-0123456789", "sid": "AC1"}', "tok-0123456789"),
        ("password=hunter22 user=bob", "hunter22"),
        ("retrying with bearer zyxwvu987654", "zyxwvu987654"),
    ],
)
def test_secrets_written_into_free_text_are_masked(text: str, secret: str) -> None:
    out = redacted(event="x", error=text, nested=[{"detail": text}])

    assert secret not in json.dumps(out)
    assert "***" in out["error"]


def test_the_configured_secret_values_are_masked_wherever_they_appear() -> None:
    settings = Settings(
        twilio_auth_token=SecretStr("twilio-token-0123456789"),
        phone_hash_salt=SecretStr("pepper-and-salt"),
        mqtt_url="mqtt://dispatcher:broker-pw-42@127.0.0.1:1883",
        api_tokens=SecretStr("ops:operator-token-1:operator,viewer-token-2:viewer"),
    )
    secrets = secret_values(settings)
    mask = RedactSecretValues(secrets)

    for secret in (
        "twilio-token-0123456789",
        "pepper-and-salt",
        "broker-pw-42",
        "operator-token-1",
        "viewer-token-2",
    ):
        assert secret in secrets
        event = mask(None, "error", {"event": "boom", "error": f"401 for {secret}!"})
        assert event["error"] == "401 for ***!"
    assert "operator" not in secrets  # role names are not secrets
    assert RedactSecretValues(["short"])(None, "x", {"a": "short"}) == {"a": "short"}


@pytest.fixture
def configured() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    for handler in logging.getLogger().handlers:
        handler.filters.clear()


@pytest.mark.usefixtures("configured")
def test_printed_log_lines_are_redacted_tracebacks_and_stdlib_records_included(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    configure_logging("json", "INFO", secrets=["twilio-token-0123456789"])
    log = structlog.get_logger("test")

    log.info("sms.received", sender="06 12 34 56 78", headers={"Authorization": "Bearer abcdef12"})
    try:
        raise RuntimeError("Twilio refused +33612345678 with twilio-token-0123456789")
    except RuntimeError:
        log.exception("sms.send_failed")
    logging.getLogger("uvicorn.error").warning("client +33 6 98 76 54 32 sent token=zzz999")

    printed = capsys.readouterr().err
    lines = printed.strip().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["sms.received", "sms.send_failed"]
    assert "Twilio refused …78 with ***" in json.loads(lines[1])["exception"]
    assert caplog.messages == ["client …32 sent token=***"]
    for leak in ("12 34 56", "612345678", "twilio-token", "abcdef12", "98 76 54", "zzz999"):
        assert leak not in printed + caplog.text
