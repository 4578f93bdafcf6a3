"""Adapter: the phone line's steps already answered (`voice_step`), for Twilio's retries.

Twilio posts each step of a call (the call itself, then each keyed answer) to its action URL and
retries a post that timed out: a (CallSid, step) seen before gets its stored TwiML again and
changes nothing, so a retried last step never places a second request. The caller's number is
kept only as its salted hash.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, SQLModel


def _utc_column(**kwargs: Any) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), **kwargs))


class VoiceStepRecord(SQLModel, table=True):
    """One step of one call already answered, with the TwiML it got."""

    __tablename__ = "voice_step"

    call_sid: str = Field(primary_key=True, max_length=64)
    step: str = Field(primary_key=True, max_length=128)
    phone_hash: str = Field(max_length=64, index=True)
    twiml: str = Field(max_length=4000)
    answered_at: datetime = _utc_column(nullable=False)


class VoiceStore:
    """Synchronous access to `voice_step` (call it from a worker thread)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def answer_for(self, call_sid: str, step: str) -> str | None:
        """The TwiML this step of this call got before, or None if it is new."""
        with Session(self._engine) as session:
            row = session.get(VoiceStepRecord, (call_sid, step))
            return row.twiml if row else None

    def remember(self, call_sid: str, step: str, phone_hash: str, twiml: str, at: datetime) -> None:
        """Record the step's answer; a concurrent duplicate is ignored."""
        with Session(self._engine) as session:
            session.add(
                VoiceStepRecord(
                    call_sid=call_sid,
                    step=step[:128],
                    phone_hash=phone_hash,
                    twiml=twiml[:4000],
                    answered_at=at,
                )
            )
            try:
                session.commit()
            except IntegrityError:
                session.rollback()
