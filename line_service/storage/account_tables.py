"""Adapter: the tables of rider and driver accounts (the rules: line_service.accounts).

`account` holds the one verified number of a person; `account_token` the SHA-256 of each
bearer token it was given (never the token); `sign_in_challenge` each one-time code sent by
SMS, by the salted hash of the number and a salted hash of the code (never either in clear).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime
from sqlmodel import Field, SQLModel


def _utc_column(**kwargs: Any) -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), **kwargs))


class AccountRecord(SQLModel, table=True):
    """A rider or driver who proved they receive texts at `phone` (E.164)."""

    __tablename__ = "account"

    id: str = Field(primary_key=True, max_length=32)
    phone: str = Field(max_length=32, unique=True)
    created_at: datetime = _utc_column(nullable=False)
    signed_in_at: datetime = _utc_column(nullable=False)


class AccountTokenRecord(SQLModel, table=True):
    """One bearer token of an account, with the role it was asked for."""

    __tablename__ = "account_token"

    token_hash: str = Field(primary_key=True, max_length=64)
    account_id: str = Field(max_length=32, index=True)
    role: str = Field(max_length=16)
    created_at: datetime = _utc_column(nullable=False)
    expires_at: datetime = _utc_column(nullable=False)


class SignInChallengeRecord(SQLModel, table=True):
    """One code sent by SMS: live until used, expired, or out of attempts."""

    __tablename__ = "sign_in_challenge"

    id: str = Field(primary_key=True, max_length=32)
    phone_hash: str = Field(max_length=64, index=True)
    role: str = Field(max_length=16)
    code_hash: str = Field(max_length=64)
    created_at: datetime = _utc_column(nullable=False)
    expires_at: datetime = _utc_column(nullable=False)
    attempts: int = 0
    closed: bool = False  # used, or killed by too many wrong codes
