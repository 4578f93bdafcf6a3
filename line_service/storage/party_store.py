"""Adapter: the `party` table — what attestation to the national registry needs of a person.

An SMS driver is known to the engine only as `sms:<salted hash>` (the number is never in a
request once it ends). To attest a trip the registry needs the number itself (it derives
`phone_trunc` and `identity_key` from it), so the SMS channel writes one row per person when a
code is validated (the driver) or when a trip is linked (the rider): the number Twilio vouched
for, and what the person chose to give once by SMS (last name, adult or not) with the time of
that consent. Nothing else is kept. Erased with the number by `carpool-line privacy erase`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlalchemy.engine import Engine
from sqlmodel import Field, Session, SQLModel, col, select


def _utc_column(**kwargs: Any) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), **kwargs))


class PartyRecord(SQLModel, table=True):
    """One person a trip may be attested for, keyed by the ref trips carry (`sms:<hash>`)."""

    __tablename__ = "party"

    ref: str = Field(primary_key=True, max_length=160)
    phone: str = Field(max_length=32, index=True)  # E.164, as the SMS provider gave it
    last_name: str | None = Field(default=None, max_length=64)  # [A-Z ]*, the registry's form
    over_18: bool | None = None
    identity_key: str = Field(max_length=64, index=True)  # sha256("<phone>-<last name>")
    consent_at: datetime | None = _utc_column(nullable=True)  # when NOM/MAJEUR was given
    updated_at: datetime = _utc_column(nullable=False)


def identity_key(phone: str, last_name: str | None) -> str:
    """The registry's identity key: sha256 of "<E.164>-<LAST NAME>" (empty name if none)."""
    return hashlib.sha256(f"{phone}-{last_name or ''}".encode()).hexdigest()


class PartyStore:
    """Synchronous access to `party` (call it from a worker thread)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def vouch(self, ref: str, phone: str, at: datetime) -> None:
        """Record that `ref` is the number `phone` (as the SMS provider vouched for it)."""
        with Session(self._engine) as session:
            row = session.get(PartyRecord, ref)
            if row is None:
                row = PartyRecord(ref=ref, phone=phone, identity_key="", updated_at=at)
            row.phone, row.updated_at = phone, at
            row.identity_key = identity_key(phone, row.last_name)
            session.add(row)
            session.commit()

    def give(
        self,
        ref: str,
        phone: str,
        at: datetime,
        last_name: str | None = None,
        over_18: bool | None = None,
    ) -> None:
        """Store what the person gave (last name, adult or not), with the time of consent."""
        with Session(self._engine) as session:
            row = session.get(PartyRecord, ref) or PartyRecord(
                ref=ref, phone=phone, identity_key="", updated_at=at
            )
            if last_name is not None:
                row.last_name = last_name
            if over_18 is not None:
                row.over_18 = over_18
            row.phone, row.consent_at, row.updated_at = phone, at, at
            row.identity_key = identity_key(phone, row.last_name)
            session.add(row)
            session.commit()

    def adult_by_key(self, keys: list[str]) -> dict[str, bool]:
        """Adult or not, as given by SMS, of the people with these identity keys."""
        with Session(self._engine) as session:
            rows = session.exec(
                select(PartyRecord).where(col(PartyRecord.identity_key).in_(keys))
            ).all()
            return {row.identity_key: row.over_18 for row in rows if row.over_18 is not None}

    def get(self, ref: str) -> PartyRecord | None:
        """The party of `ref`, or None."""
        with Session(self._engine) as session:
            return session.exec(select(PartyRecord).where(PartyRecord.ref == ref)).first()
