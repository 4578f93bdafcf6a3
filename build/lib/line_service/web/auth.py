"""Adapter: bearer-token authentication for the API — the FastAPI guards over the accounts.

Accounts, roles and token hashes are in `operator_accounts`.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, WebSocket

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
    principal = await asyncio.to_thread(authority.resolve, token)
    if principal is None:
        raise HTTPException(
            401, "unknown or revoked token", headers={"WWW-Authenticate": 'Bearer error="invalid"'}
        )
    return principal


def _authority(connection: Request | WebSocket) -> TokenAuthority:
    authority: TokenAuthority = connection.app.state.operations.authority
    return authority


def require(role: Role) -> Any:
    """A dependency: the caller must hold `role` (401 without a valid token, 403 below it)."""

    async def guard(request: Request) -> Principal:
        token = bearer_token(request.headers.get("authorization"))
        principal = await authenticate(_authority(request), token)
        if not principal.role.allows(role):
            raise HTTPException(
                403, f"this needs the {role.value} role; your token has {principal.role.value}"
            )
        return principal

    return Depends(guard)


Viewer = Annotated[Principal, require(Role.VIEWER)]
Operator = Annotated[Principal, require(Role.OPERATOR)]
Admin = Annotated[Principal, require(Role.ADMIN)]
