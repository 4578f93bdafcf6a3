"""Adapter: the SMS tables — inbound messages already answered, outbound delivery status, and
the numbers that wrote STOP.

`sms_inbound` makes Twilio's retries harmless: a MessageSid seen before gets its stored answer
again and changes nothing. Numbers are never stored here, only their salted hash.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel, select


def _utc_column(**kwargs: Any) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), **kwargs))


class SmsInboundRecord(SQLModel, table=True):
    """One inbound SMS already handled, with the answer it got ("" = no answer)."""

    __tablename__ = "sms_inbound"

    message_sid: str = Field(primary_key=True, max_length=64)
    phone_hash: str = Field(max_length=64, index=True)
    command: str = Field(max_length=32)
    reply: str = Field(max_length=1600)
    received_at: datetime = _utc_column(nullable=False)


class SmsDeliveryRecord(SQLModel, table=True):
    """The last delivery status Twilio reported for one outbound SMS."""

    __tablename__ = "sms_delivery"

    message_sid: str = Field(primary_key=True, max_length=64)
    status: str = Field(max_length=32)
    error_code: str | None = Field(default=None, max_length=16)
    updated_at: datetime = _utc_column(nullable=False)


class SmsOptOutRecord(SQLModel, table=True):
    """A number that asked for no more texts (STOP, ARRET), by its salted hash."""

    __tablename__ = "sms_opt_out"

    phone_hash: str = Field(primary_key=True, max_length=64)
    opted_out_at: datetime = _utc_column(nullable=False)


class SmsStore:
    """Synchronous access to the SMS tables (call it from a worker thread)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def reply_for(self, message_sid: str) -> str | None:
        """The answer given to this MessageSid before, or None if it is new."""
        with Session(self._engine) as session:
            row = session.get(SmsInboundRecord, message_sid)
            return row.reply if row else None

    def remember(
        self, message_sid: str, phone_hash: str, command: str, reply: str, at: datetime
    ) -> None:
        """Record that this MessageSid was handled; a concurrent duplicate is ignored."""
        with Session(self._engine) as session:
            session.add(
                SmsInboundRecord(
                    message_sid=message_sid,
                    phone_hash=phone_hash,
                    command=command[:32],
                    reply=reply[:1600],
                    received_at=at,
                )
            )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()

    def record_status(
        self, message_sid: str, status: str, error_code: str | None, at: datetime
    ) -> None:
        """Upsert the delivery status of an outbound message."""
        with Session(self._engine) as session:
            session.merge(
                SmsDeliveryRecord(
                    message_sid=message_sid[:64],
                    status=status[:32],
                    error_code=error_code[:16] if error_code else None,
                    updated_at=at.astimezone(UTC),
                )
            )
            session.commit()

    def delivery(self, message_sid: str) -> SmsDeliveryRecord | None:
        """The last known status of an outbound message."""
        with Session(self._engine) as session:
            return session.get(SmsDeliveryRecord, message_sid)

    def opt_out(self, phone_hash: str, at: datetime) -> None:
        """Remember that this number wrote STOP (again: the first time is kept)."""
        with Session(self._engine) as session:
            if session.get(SmsOptOutRecord, phone_hash) is None:
                session.add(SmsOptOutRecord(phone_hash=phone_hash, opted_out_at=at))
                session.commit()

    def opt_in(self, phone_hash: str) -> None:
        """Forget a STOP: the number wrote again."""
        with Session(self._engine) as session:
            row = session.get(SmsOptOutRecord, phone_hash)
            if row is not None:
                session.delete(row)
                session.commit()

    def opted_out(self) -> set[str]:
        """The hashes of every number that asked for no more texts."""
        with Session(self._engine) as session:
            return set(session.exec(select(SmsOptOutRecord.phone_hash)).all())
