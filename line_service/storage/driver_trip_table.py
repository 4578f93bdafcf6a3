"""Adapter: the `driver_trip` table — "Je passe": a signed-in driver announces a trip along a
line (the rules: line_service.driver_trips)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel


def _utc_column(**kwargs: Any) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), **kwargs))


class DriverTripRecord(SQLModel, table=True):
    """A trip a driver declared: from a stop towards a later one, leaving at `leaves_at`."""

    __tablename__ = "driver_trip"

    id: str = Field(primary_key=True, max_length=32)
    driver_ref: str = Field(max_length=160)  # account:<id>
    line_id: str = Field(max_length=64)
    direction_id: str = Field(max_length=64)
    from_stop: str = Field(max_length=64)
    towards: str = Field(max_length=64)
    declared_at: datetime = _utc_column(nullable=False)
    leaves_at: datetime = _utc_column(nullable=False)
    passes_until: datetime = _utc_column(nullable=False, index=True)  # at `towards`
    riders_told: int = 0
