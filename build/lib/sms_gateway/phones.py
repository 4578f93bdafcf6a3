"""Adapter: phone numbers — E.164 normalisation (phonenumbers, region FR) and salted hashes."""

from __future__ import annotations

import hashlib
import hmac

DEFAULT_REGION = "FR"


def to_e164(raw: str, region: str = DEFAULT_REGION) -> str | None:
    """The number in E.164 (`+33612345678`), or None when it is not a valid phone number."""
    import phonenumbers  # its metadata takes ~70 ms to import: only where numbers are parsed

    text = raw.strip()[:40]
    if not text:
        return None
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164


def phone_hash(phone: str, salt: str) -> str:
    """A salted hash of a number (HMAC-SHA256, hex, 32 chars): statistics without the number."""
    return hmac.new(salt.encode(), phone.encode(), hashlib.sha256).hexdigest()[:32]
