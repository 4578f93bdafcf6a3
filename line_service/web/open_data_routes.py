"""Adapter: the public open-data routes — the GTFS feed and the standard covoiturage read side.

`GET /gtfs.zip` serves the feed `carpool-line export gtfs` writes, rebuilt at most hourly;
clients may keep it until the next rebuild. Under `/standard-covoiturage`:
`GET /driver_journeys` (the lines' journeys of type LINE, authority.driver_journeys) and
`GET /status`.
Bad queries get the standard's 400 `{"error": …}` rather than FastAPI's 422.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import JSONResponse

from line_service.authority.driver_journeys import JourneySearch
from line_service.web.deps import DriverJourneysDep, GtfsFeedDep

FIRST_DEPARTURE, LAST_DEPARTURE = 946_684_800, 4_102_444_800  # 2000-01-01, 2100-01-01 (UTC)

feeds = APIRouter(tags=["open data"])
standard = APIRouter(prefix="/standard-covoiturage", tags=["standard covoiturage"])


@feeds.get(
    "/gtfs.zip",
    response_class=Response,
    responses={200: {"content": {"application/zip": {}}, "description": "the GTFS feed"}},
)
async def gtfs_zip(feed: GtfsFeedDep) -> Response:
    """The lines as a GTFS feed (routes, stops, calendar, frequencies = expected waits)."""
    archive, built_at, fresh_for = await asyncio.to_thread(feed.archive)
    return Response(
        archive,
        media_type="application/zip",
        headers={
            "Cache-Control": f"public, max-age={max(0, int(fresh_for.total_seconds()))}",
            "Content-Disposition": 'attachment; filename="gtfs.zip"',
            "Last-Modified": built_at.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        },
    )


class _BadQueryError(ValueError):
    pass


def _number(name: str, raw: str | None, *, default: float | None = None) -> float:
    if raw is None:
        if default is None:
            raise _BadQueryError(f"{name} is required")
        return default
    try:
        value = float(raw)
    except ValueError as exc:
        raise _BadQueryError(f"{name} must be a number, got {raw[:20]!r}") from exc
    if not math.isfinite(value):
        raise _BadQueryError(f"{name} must be a finite number")
    return value


def _integer(name: str, raw: str | None, *, default: int | None = None) -> int:
    if raw is None:
        if default is None:
            raise _BadQueryError(f"{name} is required")
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise _BadQueryError(f"{name} must be an integer, got {raw[:20]!r}") from exc


def _search(params: dict[str, str | None]) -> JourneySearch:
    lat_a = _number("departureLat", params["departureLat"])
    lng_a = _number("departureLng", params["departureLng"])
    lat_b = _number("arrivalLat", params["arrivalLat"])
    lng_b = _number("arrivalLng", params["arrivalLng"])
    for name, value, bound in (
        ("departureLat", lat_a, 90),
        ("arrivalLat", lat_b, 90),
        ("departureLng", lng_a, 180),
        ("arrivalLng", lng_b, 180),
    ):
        if abs(value) > bound:
            raise _BadQueryError(f"{name} must be within ±{bound}")
    departure = _integer("departureDate", params["departureDate"])
    delta = _integer("timeDelta", params["timeDelta"], default=900)
    radius_a = _number("departureRadius", params["departureRadius"], default=1.0)
    radius_b = _number("arrivalRadius", params["arrivalRadius"], default=1.0)
    count = None if params["count"] is None else _integer("count", params["count"])
    if not 0 <= delta <= 86_400:
        raise _BadQueryError("timeDelta must be 0-86400 seconds")
    if not (0 < radius_a <= 100 and 0 < radius_b <= 100):
        raise _BadQueryError("departureRadius and arrivalRadius must be above 0 and at most 100 km")
    if count is not None and count < 1:
        raise _BadQueryError("count must be at least 1")
    if not FIRST_DEPARTURE <= departure <= LAST_DEPARTURE:
        raise _BadQueryError("departureDate must be a UNIX time between 2000 and 2100")
    departure_at = datetime.fromtimestamp(departure, UTC)
    return JourneySearch(
        departure=(lat_a, lng_a),
        arrival=(lat_b, lng_b),
        departure_at=departure_at,
        time_delta=timedelta(seconds=delta),
        departure_radius_km=radius_a,
        arrival_radius_km=radius_b,
        count=count,
    )


Param = Annotated[str | None, Query()]


@standard.get(
    "/driver_journeys",
    responses={400: {"description": 'Bad Request: `{"error": "…"}`'}},
)
async def driver_journeys(
    journeys: DriverJourneysDep,
    departureLat: Param = None,  # noqa: N803 - the standard's parameter names
    departureLng: Param = None,  # noqa: N803
    arrivalLat: Param = None,  # noqa: N803
    arrivalLng: Param = None,  # noqa: N803
    departureDate: Param = None,  # noqa: N803
    timeDelta: Param = None,  # noqa: N803
    departureRadius: Param = None,  # noqa: N803
    arrivalRadius: Param = None,  # noqa: N803
    count: Param = None,
) -> Any:
    """Journeys of type LINE from a stop near the departure to a stop near the arrival."""
    try:
        search = _search(
            {
                "departureLat": departureLat,
                "departureLng": departureLng,
                "arrivalLat": arrivalLat,
                "arrivalLng": arrivalLng,
                "departureDate": departureDate,
                "timeDelta": timeDelta,
                "departureRadius": departureRadius,
                "arrivalRadius": arrivalRadius,
                "count": count,
            }
        )
    except _BadQueryError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return await asyncio.to_thread(journeys.search, search)


@standard.get("/status")
async def status() -> Response:
    """200 while the service answers (the standard's health route: no body)."""
    return Response(status_code=200)
