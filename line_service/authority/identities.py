"""Shell: who a trip's refs are, for attestation — one function to resolve a `driver_ref`.

A driver's ref says how the line knows them: `sms:<salted hash>` (validated by SMS: the
number is in `party`, written by the SMS channel when Twilio delivered the code), `+33…` or
`tel:+33…` (the app sent the number), `account:<id>` (the app's sign-in: not resolved here yet;
extend `resolve_ref`). A rider who asked by SMS is known by the number on the request; what
either gave by SMS (last name, adult or not) is in `party` under `sms:<hash of the number>`.
"""

from __future__ import annotations

from dataclasses import dataclass

from line_service.authority.trips import phone_in_ref
from line_service.storage.party_store import PartyStore
from line_service.storage.store import Store

SMS_REF = "sms:"
ACCOUNT_REF = "account:"


@dataclass(frozen=True, slots=True)
class Person:
    """What vouches for a person's identity: the number, and what they gave by SMS."""

    phone: str
    last_name: str = ""
    over_18: bool | None = None


def resolve_ref(parties: PartyStore, ref: str) -> Person | None:
    """The person behind a driver (or rider) ref, or None when nothing vouches for one."""
    phone = phone_in_ref(ref)
    if ref.startswith(SMS_REF) or phone is not None:
        party = parties.get(ref)
        if party is not None:
            return Person(party.phone, party.last_name or "", party.over_18)
    if phone is not None:
        return Person(phone)
    return None  # account:<id> — the accounts room resolves its own refs


class IdentityResolver:
    """Resolves refs and riders' numbers against the database (call it from a worker thread)."""

    def __init__(self, store: Store) -> None:
        self._parties = PartyStore(store.engine)
        self._hash = store.phone_hasher

    def driver(self, ref: str) -> Person | None:
        """The driver behind `ref` (see `resolve_ref`)."""
        return resolve_ref(self._parties, ref)

    def rider(self, phone: str) -> Person:
        """The rider with this number, with what they gave by SMS if anything."""
        if self._hash is not None:
            found = resolve_ref(self._parties, SMS_REF + self._hash(phone))
            if found is not None and found.phone == phone:
                return found
        return Person(phone)
