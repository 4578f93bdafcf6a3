"""Adapter: the `api_operator` table (accounts and roles: line_service.web.operator_accounts)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel


class OperatorRecord(SQLModel, table=True):
    """A person or system allowed to use the API; the token itself is never stored."""

    __tablename__ = "api_operator"

    name: str = Field(primary_key=True, max_length=80)
    role: str = Field(max_length=16)
    token_hash: str = Field(max_length=64, index=True)
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
