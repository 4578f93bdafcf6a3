"""Adapter: API accounts — roles, token hashes, the operator table, who holds a token.

Staff tokens come from two places: `CARPOOL_API_TOKENS` (settings, for automation) and the
`api_operator` table (`carpool-line operator add`; its model is in `storage.operator_table`,
with the other tables the migrations build). Only SHA-256 hashes are kept in memory and in
the database; a token is never logged. Roles are ordered: viewer < operator < admin. The web
guards are in `auth`; this module has no web framework in it, so the service can create its
tables and start dispatching before the HTTP side is even imported. Riders' and drivers'
tokens (roles rider and driver, outside that order) are resolved by `line_service.accounts`.
"""

from __future__ import annotations

import hmac
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import SecretStr
from sqlmodel import Session, select

from line_service.accounts.book import AccountBook, AccountRef, AccountRole, hash_token
from line_service.storage.operator_table import OperatorRecord
from line_service.storage.store import Store

TOKEN_PREFIX = "cpl_"


class Role(StrEnum):
    """What a token may do; each role includes the ones before it."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        """Position in viewer < operator < admin."""
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        """True when this role includes `needed`."""
        return self.rank >= needed.rank


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: staff (viewer, operator, admin) or a rider's or driver's account."""

    name: str
    role: Role | AccountRole
    account: AccountRef | None = None

    def allows(self, needed: Role | AccountRole) -> bool:
        """Staff roles include the lower ones; an account's role is only itself."""
        if isinstance(self.role, Role) and isinstance(needed, Role):
            return self.role.allows(needed)
        return self.role is needed


def new_token() -> str:
    """A fresh random token."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def parse_api_tokens(raw: str) -> dict[str, Principal]:
    """Tokens from settings, by hash: `token:role,…`, `name:token:role,…` or JSON `{token: role}`.

    Raises ValueError naming the bad entry's position (never the token).
    """
    raw = raw.strip()
    if not raw:
        return {}
    entries: list[tuple[str, str, str]] = []
    if raw.startswith("{"):
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError("CARPOOL_API_TOKENS is not valid JSON") from exc
        for index, (token, role) in enumerate(dict(data).items()):
            entries.append((f"token-{index + 1}", str(token), str(role)))
    else:
        for index, item in enumerate(part.strip() for part in raw.split(",") if part.strip()):
            pieces = item.split(":")
            if len(pieces) == 2:
                entries.append((f"token-{index + 1}", pieces[0], pieces[1]))
            elif len(pieces) == 3:
                entries.append((pieces[0], pieces[1], pieces[2]))
            else:
                raise ValueError(f"CARPOOL_API_TOKENS entry {index + 1}: expected token:role")
    found: dict[str, Principal] = {}
    for index, (name, token, role) in enumerate(entries):
        if role not in Role.__members__.values():
            raise ValueError(
                f"CARPOOL_API_TOKENS entry {index + 1}: role must be viewer, operator or admin"
            )
        if len(token) < 8:
            raise ValueError(f"CARPOOL_API_TOKENS entry {index + 1}: token shorter than 8")
        found[hash_token(token)] = Principal(name, Role(role))
    return found


class TokenAuthority:
    """Resolves bearer tokens to principals: settings first, then the operator table, then
    (for the routes riders and drivers may call) the account tokens."""

    def __init__(
        self,
        configured: SecretStr,
        store: Store,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        accounts: AccountBook | None = None,
    ) -> None:
        self._configured = parse_api_tokens(configured.get_secret_value())
        self._store = store
        self._accounts = accounts or AccountBook(store.engine)
        self._clock = clock

    def resolve_any(self, token: str) -> Principal | None:
        """Staff or account holding `token`, or None (blocking: reads the database)."""
        staff = self.resolve(token)
        if staff is not None:
            return staff
        found = self._accounts.resolve(hash_token(token), self._clock())
        if found is None:
            return None
        account, role = found
        return Principal(account.ref, role, account)

    def resolve(self, token: str) -> Principal | None:
        """The staff principal holding `token`, or None (blocking: may read the database)."""
        digest = hash_token(token)
        for known, principal in self._configured.items():
            if hmac.compare_digest(known, digest):
                return principal
        with Session(self._store.engine) as session:
            row = session.exec(
                select(OperatorRecord).where(OperatorRecord.token_hash == digest)
            ).first()
        if row is None or row.role not in Role.__members__.values():
            return None
        return Principal(row.name, Role(row.role))


def add_operator(store: Store, name: str, role: Role) -> str:
    """Create (or replace) an operator; return its new token (shown once, stored hashed)."""
    token = new_token()
    store.create_schema()
    with Session(store.engine) as session:
        session.merge(
            OperatorRecord(
                name=name,
                role=role.value,
                token_hash=hash_token(token),
                created_at=datetime.now(UTC),
            )
        )
        session.commit()
    return token


def list_operators(store: Store) -> list[OperatorRecord]:
    """Every operator of the table (hashes included; never print them)."""
    store.create_schema()
    with Session(store.engine) as session:
        return list(session.exec(select(OperatorRecord)).all())


def remove_operator(store: Store, name: str) -> bool:
    """Revoke an operator's token; False when no such operator."""
    store.create_schema()
    with Session(store.engine) as session:
        row = session.get(OperatorRecord, name)
        if row is None:
            return False
        session.delete(row)
        session.commit()
    return True
