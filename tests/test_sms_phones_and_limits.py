"""Phone numbers (E.164, salted hashes) and the per-number rate limit, with a manual clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sms_gateway.phones import phone_hash, to_e164
from sms_gateway.rate_limit import RateLimit, Verdict

AT = datetime(2026, 11, 23, 6, 45, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("+33612345678", "+33612345678"),
        ("06 12 34 56 78", "+33612345678"),
        ("06.12.34.56.78", "+33612345678"),
        ("0033612345678", "+33612345678"),
        ("+44 7911 123456", "+447911123456"),
        ("TWILIO", None),
        ("", None),
        ("12", None),
        ("+33 6 12", None),
        ("☎" * 500, None),
    ],
)
def test_numbers_are_normalised_to_e164(raw: str, expected: str | None) -> None:
    assert to_e164(raw) == expected


def test_the_hash_depends_on_the_salt_and_hides_the_number() -> None:
    hashed = phone_hash("+33612345678", "salt-a")
    assert hashed == phone_hash("+33612345678", "salt-a")
    assert hashed != phone_hash("+33612345678", "salt-b")
    assert "612345678" not in hashed
    assert len(hashed) == 32


def test_over_the_limit_one_polite_refusal_then_silence_then_allowed_again() -> None:
    limit = RateLimit(3, timedelta(minutes=10))
    verdicts = [limit.check("+33612345678", AT + timedelta(seconds=i)) for i in range(6)]
    assert verdicts == [Verdict.ALLOWED] * 3 + [Verdict.REFUSED, Verdict.SILENT, Verdict.SILENT]
    assert limit.check("+33698765432", AT) is Verdict.ALLOWED  # another number
    assert limit.check("+33612345678", AT + timedelta(minutes=10, seconds=1)) is Verdict.ALLOWED


def test_memory_stays_bounded_with_many_numbers() -> None:
    limit = RateLimit(1, timedelta(minutes=10), max_keys=100)
    for i in range(1000):
        limit.check(f"+336{i:08d}", AT)
    assert len(limit._seen) <= 100
