"""Adapter: REST routes of riders' and drivers' sign-in — a code by SMS, a token, revocation.

The rules (lifetimes, tries, limits, what is stored) are in `line_service.accounts.sign_in`.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request, Response, status

from line_service.accounts.book import hash_token
from line_service.accounts.sign_in import CodeRefused, TooSoon
from line_service.web.auth import SignedIn, bearer_token
from line_service.web.deps import SignInDep, phone_e164
from line_service.web.models import (
    AUTH_ERRORS,
    TOO_MANY,
    UNPROCESSABLE,
    CodeRequestIn,
    CodeSentOut,
    Problem,
    Responses,
    TokenOut,
    TokenRequestIn,
)

CODE_REFUSED: Responses = {401: {"model": Problem, "description": "wrong, expired or used code"}}

router = APIRouter(prefix="/api/v1/auth", tags=["accounts"])

CODE_SENT = (
    "if this number can receive texts from the service, a 6-digit code is on its way "
    "(a number that wrote STOP gets none until it writes to the line again)"
)


@router.post(
    "/otp",
    status_code=status.HTTP_202_ACCEPTED,
    responses=UNPROCESSABLE | TOO_MANY,
)
async def request_code(body: CodeRequestIn, sign_in: SignInDep) -> CodeSentOut:
    """Text a one-time sign-in code to the number, for a rider's or a driver's token."""
    outcome = await sign_in.send_code(phone_e164(body.phone), body.role)
    if isinstance(outcome, TooSoon):
        raise HTTPException(
            429,
            f"a code was sent to this number lately: try again in {outcome.retry_after_seconds} s",
            headers={"Retry-After": str(outcome.retry_after_seconds)},
        )
    return CodeSentOut(
        detail=CODE_SENT, expires_in_seconds=round(outcome.expires_in.total_seconds())
    )


@router.post(
    "/token",
    responses=CODE_REFUSED | UNPROCESSABLE,
)
async def exchange_code(body: TokenRequestIn, sign_in: SignInDep) -> TokenOut:
    """Exchange the texted code for a bearer token of the role it was asked for."""
    outcome = await sign_in.exchange(phone_e164(body.phone), body.code)
    if isinstance(outcome, CodeRefused):
        detail = outcome.reason
        if outcome.attempts_left:
            detail += f" ({outcome.attempts_left} tries left on this code)"
        raise HTTPException(401, detail, headers={"WWW-Authenticate": 'Bearer error="invalid"'})
    return TokenOut(
        access_token=outcome.token,
        role=outcome.role,
        account_id=outcome.account.id,
        expires_at=outcome.expires_at,
    )


@router.delete(
    "/token",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=AUTH_ERRORS,
)
async def revoke_own_token(request: Request, caller: SignedIn, sign_in: SignInDep) -> Response:
    """Revoke the rider's or driver's own token (staff tokens: `carpool-line operator remove`)."""
    token = bearer_token(request.headers.get("authorization"))
    if caller.account is None or token is None:
        raise HTTPException(403, "staff tokens are revoked with `carpool-line operator remove`")
    await asyncio.to_thread(sign_in.book.revoke_token, hash_token(token))
    return Response(status_code=204)
