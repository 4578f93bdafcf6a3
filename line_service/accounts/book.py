"""Shell: rider and driver accounts in the database — tokens issued, resolved, revoked.

An account is one verified number (E.164). Each sign-in gives it a new bearer token with the
role asked for (rider or driver); only the token's SHA-256 is stored. A token lives until it
expires or is revoked (by its holder, or by an operator with `carpool-line accounts revoke`).
Calls are blocking: run them in a worker thread.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import delete, func
from sqlalchemy.engine import CursorResult, Engine
from sqlmodel import Session, col, select

from line_service.storage.account_tables import AccountRecord, AccountTokenRecord
from line_service.storage.store import as_utc

ACCOUNT_TOKEN_PREFIX = "cpa_"


class AccountRole(StrEnum):
    """What an account's token is for: asking for rides, or validating riders' codes."""

    RIDER = "rider"
    DRIVER = "driver"


@dataclass(frozen=True, slots=True)
class AccountRef:
    """A signed-in account: its id and the number it proved it holds."""

    id: str
    phone: str

    @property
    def ref(self) -> str:
        """How trips and requests name the account (`account:<id>`): never the number."""
        return f"account:{self.id}"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    """A token just made: shown once to its holder, stored hashed."""

    token: str
    account: AccountRef
    role: AccountRole
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class AccountSummary:
    """An account as operators list it (the number masked, no token)."""

    id: str
    phone_masked: str
    created_at: datetime
    signed_in_at: datetime
    live_tokens: int


def hash_token(token: str) -> str:
    """The SHA-256 of a token, hex (tokens are random: no salt or slow hash needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def masked_phone(phone: str) -> str:
    """A number as an operator's list shows it: country code and the last two digits."""
    return phone[:3] + "…" + phone[-2:]


class AccountBook:
    """The account tables: one account per number, its tokens by hash.

    Remembers the number of each account it resolved or signed in, so the trip of a validation
    (drafted on the engine's loop, where no database is read) gets the driver's identity.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._phones: dict[str, str] = {}

    def phone_of_ref(self, ref: str) -> str | None:
        """The verified number behind an `account:<id>` ref seen lately (None otherwise)."""
        prefix, _, account_id = ref.partition(":")
        return self._phones.get(account_id) if prefix == "account" else None

    def issue(
        self, phone: str, role: AccountRole, now: datetime, lifetime: timedelta
    ) -> IssuedToken:
        """A new token for the account of `phone` (made on its first sign-in)."""
        token = ACCOUNT_TOKEN_PREFIX + secrets.token_urlsafe(32)
        expires_at = now + lifetime
        with Session(self._engine) as session:
            query = select(AccountRecord).where(AccountRecord.phone == phone)
            account = session.exec(query).first()
            if account is None:
                account = AccountRecord(
                    id=uuid.uuid4().hex, phone=phone, created_at=now, signed_in_at=now
                )
            account.signed_in_at = now
            session.add(account)
            session.add(
                AccountTokenRecord(
                    token_hash=hash_token(token),
                    account_id=account.id,
                    role=role.value,
                    created_at=now,
                    expires_at=expires_at,
                )
            )
            session.commit()
            ref = AccountRef(account.id, account.phone)
        self._phones[ref.id] = ref.phone
        return IssuedToken(token, ref, role, expires_at)

    def resolve(self, token_hash: str, now: datetime) -> tuple[AccountRef, AccountRole] | None:
        """The account and role of a live token, or None (unknown, revoked or expired)."""
        with Session(self._engine) as session:
            found = session.exec(
                select(AccountTokenRecord, AccountRecord)
                .join(AccountRecord, col(AccountRecord.id) == col(AccountTokenRecord.account_id))
                .where(AccountTokenRecord.token_hash == token_hash)
            ).first()
        if found is None:
            return None
        token, account = found
        if as_utc(token.expires_at) <= now or token.role not in AccountRole.__members__.values():
            return None
        self._phones[account.id] = account.phone
        return AccountRef(account.id, account.phone), AccountRole(token.role)

    def revoke_token(self, token_hash: str) -> bool:
        """Revoke one token; False when it was not stored."""
        with Session(self._engine) as session:
            row = session.get(AccountTokenRecord, token_hash)
            if row is None:
                return False
            session.delete(row)
            session.commit()
        return True

    def revoke_account(self, account_id: str) -> int | None:
        """Revoke every token of an account; how many (None when there is no such account)."""
        with Session(self._engine) as session:
            if session.get(AccountRecord, account_id) is None:
                return None
            tokens = session.exec(
                select(AccountTokenRecord).where(AccountTokenRecord.account_id == account_id)
            ).all()
            for token in tokens:
                session.delete(token)
            session.commit()
        return len(tokens)

    def account_of_phone(self, phone: str) -> AccountRef | None:
        """The account of a number, if it ever signed in."""
        with Session(self._engine) as session:
            row = session.exec(select(AccountRecord).where(AccountRecord.phone == phone)).first()
        return None if row is None else AccountRef(row.id, row.phone)

    def accounts(self, now: datetime) -> list[AccountSummary]:
        """Every account, most recently signed in first, with its count of live tokens."""
        with Session(self._engine) as session:
            live = dict(
                session.exec(
                    select(AccountTokenRecord.account_id, func.count())
                    .where(col(AccountTokenRecord.expires_at) > now)
                    .group_by(col(AccountTokenRecord.account_id))
                ).all()
            )
            rows = session.exec(
                select(AccountRecord).order_by(col(AccountRecord.signed_in_at).desc())
            ).all()
            return [
                AccountSummary(
                    row.id,
                    masked_phone(row.phone),
                    as_utc(row.created_at),
                    as_utc(row.signed_in_at),
                    int(live.get(row.id, 0)),
                )
                for row in rows
            ]

    def forget_expired_tokens(self, now: datetime) -> int:
        """Delete tokens past their expiry; how many."""
        with Session(self._engine) as session:
            result = session.execute(
                delete(AccountTokenRecord).where(col(AccountTokenRecord.expires_at) <= now)
            )
            session.commit()
        return int(cast(CursorResult[Any], result).rowcount or 0)
