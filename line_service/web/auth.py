"""Adapter: bearer-token authentication for the API — the FastAPI guards over the accounts.

Staff accounts, roles and token hashes are in `operator_accounts`; riders' and drivers'
accounts in `line_service.accounts`. A staff guard refuses an account's token with 403.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from line_service.accounts.book import AccountRole
from line_service.web.deps import AuthorityDep
from line_service.web.operator_accounts import Principal, Role, TokenAuthority


def bearer_token(authorization: str | None) -> str | None:
    """The token of an `Authorization: Bearer …` header, or None."""
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


async def authenticate(authority: TokenAuthority, token: str | None) -> Principal:
    """The caller, or 401 when the token is missing or unknown."""
    if token is None:
        raise HTTPException(
            401,
            "authentication required: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    principal = await asyncio.to_thread(authority.resolve_any, token)
    if principal is None:
        raise HTTPException(
            401, "unknown or revoked token", headers={"WWW-Authenticate": 'Bearer error="invalid"'}
        )
    return principal


def require(*roles: Role | AccountRole) -> Any:
    """A dependency: the caller must hold one of `roles` (401 without a valid token, 403
    otherwise); no role at all: any valid token."""

    async def guard(request: Request, authority: AuthorityDep) -> Principal:
        token = bearer_token(request.headers.get("authorization"))
        principal = await authenticate(authority, token)
        if roles and not any(principal.allows(role) for role in roles):
            needed = " or ".join(role.value for role in roles)
            raise HTTPException(
                403, f"this needs the {needed} role; your token has {principal.role.value}"
            )
        return principal

    return Depends(guard)


def acting_driver(principal: Principal) -> str:
    """The driver_ref a validation records: the driver's account, or the operator who
    validated on a driver's behalf (`operator:<name>`)."""
    if principal.account is not None:
        return principal.account.ref
    return f"operator:{principal.name}"


SignedIn = Annotated[Principal, require()]
Viewer = Annotated[Principal, require(Role.VIEWER)]
Operator = Annotated[Principal, require(Role.OPERATOR)]
Rider = Annotated[Principal, require(AccountRole.RIDER)]
Driver = Annotated[Principal, require(AccountRole.DRIVER)]
DriverOrOperator = Annotated[Principal, require(AccountRole.DRIVER, Role.OPERATOR)]
