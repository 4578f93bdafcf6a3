"""Adapter: the `rpc_journey` table — the registry outbox, one row per trip (journey).

Written and read by `line_service.authority.rpc_outbox`: what is still to be done for the
journey (`next_at`, None when nothing is), the registry's status as last known (or ours before
it is sent: `queued`, `not_sent`, `expired`), why, and the body last sent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, Text
from sqlmodel import Field, SQLModel


def _utc_column(**kwargs: Any) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), **kwargs))


class RpcJourneyRecord(SQLModel, table=True):
    """One journey's attestation: queued, sent, rejected, cancelled, checked."""

    __tablename__ = "rpc_journey"

    journey_id: str = Field(primary_key=True, max_length=64)  # = trip.id
    line_id: str = Field(max_length=64)
    trip_at: datetime = _utc_column(nullable=False, index=True)  # the passenger's pick-up
    status: str = Field(max_length=32, index=True)
    reason: str = Field(default="", max_length=500)
    details: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    attempts: int = 0
    next_at: datetime | None = _utc_column(nullable=True, index=True)
    sent_at: datetime | None = _utc_column(nullable=True)  # the registry accepted it (201/409)
    checked_at: datetime | None = _utc_column(nullable=True)
    final: bool = False  # the status read 48 h after the trip, when it no longer changes
    payload: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    cancel_code: str | None = Field(default=None, max_length=32)
    cancel_message: str | None = Field(default=None, max_length=512)
    updated_at: datetime = _utc_column(nullable=False)
