"""Adapter: a signed-in rider's or driver's own trip attestation, as the printable page.

The same page as `carpool-line attestation` (`line_service.authority.attestation`), for the
account's verified number: its trips as passenger, and as driver (also those its token
validated, `account:<id>`). Staff tokens have no number of their own: 403.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse

from line_service.authority.attestation import (
    ATTESTATION_POLICY,
    render_attestation,
    trips_of_person,
    year_bounds,
)
from line_service.web.auth import SignedIn
from line_service.web.deps import NetworkDep, NowDep, StoreDep
from line_service.web.models import AUTH_ERRORS, UNPROCESSABLE

router = APIRouter(prefix="/api/v1/me", tags=["accounts"])

Year = Annotated[int, Query(ge=2000, le=2100, description="the calendar year, e.g. 2026")]


def _no_hash(_phone: str) -> str:
    return ""  # a service without a salt keeps no texted drivers' hashes to match


@router.get(
    "/attestation",
    response_class=HTMLResponse,
    responses=AUTH_ERRORS | UNPROCESSABLE,
)
async def my_attestation(
    year: Year, caller: SignedIn, network: NetworkDep, store: StoreDep, now: NowDep
) -> HTMLResponse:
    """The caller's validated trips of `year` as a printable French page (Forfait mobilités
    durables): as passenger and as driver, with totals; "Imprimer → PDF" gives the document."""
    account = caller.account
    if account is None:
        raise HTTPException(403, "an attestation is for a rider's or driver's token")
    timezone = network.lines[0].timezone if network.lines else "Europe/Paris"
    start, end = year_bounds(year, timezone)
    trips = await asyncio.to_thread(
        trips_of_person,
        store,
        account.phone,
        store.phone_hasher or _no_hash,
        start,
        end,
        account.ref,
    )
    page = render_attestation(network, account.phone, year, trips, now)
    return HTMLResponse(
        page,
        headers={
            "Content-Security-Policy": ATTESTATION_POLICY,
            "Content-Disposition": f'inline; filename="attestation-{year}.html"',
            "Cache-Control": "no-store",
        },
    )
