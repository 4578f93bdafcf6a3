"""Adapter: the tables of the trips' money — operators' reviews of flagged trips, banned drivers.

Written by line_service.authority (`trip_reviews`, `driver_bans`); revision 0005.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel


class TripReviewRecord(SQLModel, table=True):
    """An operator's decision on a trip the anti-abuse rules held: the latest one counts."""

    __tablename__ = "trip_review"

    trip_id: str = Field(primary_key=True, max_length=64)
    decision: str = Field(max_length=16)  # approve | reject
    note: str = Field(default="", max_length=500)
    decided_by: str = Field(max_length=80)
    decided_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class BannedDriverRecord(SQLModel, table=True):
    """A driver the operator excluded: earns nothing; listed for the registry."""

    __tablename__ = "banned_driver"

    driver_key: str = Field(primary_key=True, max_length=160)
    registry_user_id: str | None = Field(default=None, max_length=64)
    reason: str = Field(default="", max_length=500)
    banned_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
