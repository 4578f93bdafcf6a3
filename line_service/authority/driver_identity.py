"""Pure: who drove — the one place a trip's `driver_ref` becomes an identified driver, or not.

Money follows proof: only an identified driver is paid. Identified today are app drivers whose
`driver_ref` is an account (`account:<id>`, a verified phone behind it) or an E.164 number
(`+33…`, `tel:+33…`). An SMS validation carries `sms:<salted hash>` of the number: stable, but
nobody can be paid or attested from it, so it is not identified; nor is any other text.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

ACCOUNT_PREFIX = "account:"
UNPAID_OWN_RIDE = "own_ride"
UNPAID_DRIVER_UNKNOWN = "driver_not_identified"

SMS_PREFIX = "sms:"  # an SMS driver: the salted hash of the number Twilio vouched for
RETAINED_PREFIX = "hash:"  # privacy's pseudonym of a number once its retention is over

_PHONE_IN_REF = re.compile(r"^(?:tel:)?(\+[1-9][0-9]{7,14})$")
_ACCOUNT_REF = re.compile(r"^account:[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True, slots=True)
class Driver:
    """An identified driver: `key` names the person for caps, bans and payouts; `phone` (E.164)
    when known (the registry's identity, and the own-ride check)."""

    key: str
    phone: str | None


def phone_in_ref(driver_ref: str) -> str | None:
    """The driver's E.164 number when the app sent it as `driver_ref` (`+33…` or `tel:+33…`)."""
    match = _PHONE_IN_REF.fullmatch(driver_ref.strip())
    return match.group(1) if match else None


def identify_driver(driver_ref: str) -> Driver | None:
    """The driver behind a validation's `driver_ref`, or None when nobody can be identified."""
    ref = driver_ref.strip()
    if _ACCOUNT_REF.fullmatch(ref):
        return Driver(key=ref, phone=None)
    phone = phone_in_ref(ref)
    return None if phone is None else Driver(key=f"tel:{phone}", phone=phone)


def identify_with(
    phone_of_account: Callable[[str], str | None],
) -> Callable[[str], Driver | None]:
    """`identify_driver`, with the verified number of an account driver filled in by
    `phone_of_account` (the registry's identity, and the own-ride check)."""

    def identify(driver_ref: str) -> Driver | None:
        driver = identify_driver(driver_ref)
        if driver is None or driver.phone is not None or not driver.key.startswith(ACCOUNT_PREFIX):
            return driver
        return Driver(key=driver.key, phone=phone_of_account(driver.key))

    return identify


def unpaid_reason(driver: Driver | None, rider_phone: str | None) -> str | None:
    """Why the driver of this ride is paid nothing whatever the campaigns say, or None."""
    if driver is None:
        return UNPAID_DRIVER_UNKNOWN
    if driver.phone is not None and rider_phone is not None and driver.phone == rider_phone:
        return UNPAID_OWN_RIDE
    return None


def shown_driver(key: str) -> str:
    """A driver's key for a screen or a terminal: a number loses its last two digits."""
    return f"{key[:-2]}xx" if key.startswith("tel:") else key


def payee_of(driver_ref: str, unpaid: str | None) -> Driver | None:
    """Who is paid for a stored trip: the identified driver; or, for a trip whose driver was
    identified when it was recorded (`unpaid` None), its ref as it is stored — an SMS driver's
    `sms:…` whose number the service kept for attestation, or the salted hash (`hash:…`) the
    retention period put in place of a number. None: nobody is paid."""
    driver = identify_driver(driver_ref)
    if driver is not None or unpaid is not None:
        return driver
    ref = driver_ref.strip()
    return Driver(key=ref, phone=None) if ref.startswith((RETAINED_PREFIX, SMS_PREFIX)) else None
