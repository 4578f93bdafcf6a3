"""Adapter: the lines as "driver journeys" of the standard covoiturage (read side, type LINE).

Standard covoiturage v1.0.0-alpha (Fabrique des Mobilités, OpenAPI "standard-covoiturage"):
`GET /driver_journeys?departureLat&departureLng&arrivalLat&arrivalLng&departureDate` answers
carpool journeys a passenger could take from near the departure to near the arrival around
`departureDate` (± `timeDelta`, default 900 s), within `departureRadius`/`arrivalRadius` km
(default 1). A line offers no single driver and no booking: each journey is a pair of stops of
one direction, boarded at the stop nearest the departure, with the pickup expected at the asked
time plus the median wait to expect there (`type` LINE). The journey's `driver` is the line
itself (the schema requires a user): id `line:<line id>`, alias the line's name.

A pair is left out when the line is closed at `departureDate` (service hours, closed public
holidays), when there is no estimate of the wait, or when the expected pickup falls after
`departureDate + timeDelta`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from dispatcher.model import Line, Network, Stop
from dispatcher.service_calendar import is_open
from line_service.estimates.estimator import WaitEstimator

SPEED_KMH = 60.0
_EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True, slots=True)
class JourneySearch:
    """The query of `GET /driver_journeys`, checked."""

    departure: tuple[float, float]  # (lat, lng)
    arrival: tuple[float, float]
    departure_at: datetime  # aware
    time_delta: timedelta = timedelta(seconds=900)
    departure_radius_km: float = 1.0
    arrival_radius_km: float = 1.0
    count: int | None = None


def distance_km(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance between two (lat, lng) points."""
    lat_a, lon_a, lat_b, lon_b = (math.radians(v) for v in (*a, *b))
    h = (
        math.sin((lat_b - lat_a) / 2) ** 2
        + math.cos(lat_a) * math.cos(lat_b) * math.sin((lon_b - lon_a) / 2) ** 2
    )
    return 2 * _EARTH_RADIUS_KM * math.asin(math.sqrt(h))


def operator_id(line: Line, public_url: str) -> str:
    """The operator's domain: the line's `agency.operator_domain`, else PUBLIC_URL's host."""
    if line.agency is not None and line.agency.domain:
        return line.agency.domain
    return urlsplit(public_url).hostname or "localhost"


class DriverJourneys:
    """Answers `GET /driver_journeys` from the network and the wait estimates."""

    def __init__(
        self,
        network: Network,
        estimator: WaitEstimator | None,
        public_url: str,
        clock: Callable[[], datetime],
    ) -> None:
        self.network = network
        self._estimator = estimator
        self._public_url = public_url
        self._clock = clock

    def search(self, query: JourneySearch) -> list[dict[str, Any]]:
        """Matching journeys, earliest pickup first (blocking: the estimates read the store)."""
        found: list[tuple[float, dict[str, Any]]] = []
        for line in self.network.lines:
            if not is_open(line, query.departure_at):
                continue
            for direction in line.directions:
                for index, board in enumerate(direction.stops[:-1]):
                    walk = distance_km(query.departure, (board.lat, board.lon))
                    if walk > query.departure_radius_km:
                        continue
                    for alight in direction.stops[index + 1 :]:
                        if distance_km(query.arrival, (alight.lat, alight.lon)) > (
                            query.arrival_radius_km
                        ):
                            continue
                        journey = self._journey(line, board, alight, query)
                        if journey is not None:
                            found.append((journey["passengerPickupDate"], journey))
        found.sort(key=lambda item: item[0])
        journeys = [journey for _, journey in found]
        return journeys if query.count is None else journeys[: query.count]

    def _journey(
        self, line: Line, board: Stop, alight: Stop, query: JourneySearch
    ) -> dict[str, Any] | None:
        if self._estimator is None:
            return None
        wait = self._estimator.estimate_now(line, board.id, alight.id, query.departure_at)
        if wait is None or wait.median > query.time_delta:
            return None
        pickup = query.departure_at + wait.median
        distance_m = round(abs(alight.km - board.km) * 1000)
        operator = operator_id(line, self._public_url)
        money = line.compensation.passenger_contribution_cents
        journey: dict[str, Any] = {
            "id": f"{line.id}:{board.id}:{alight.id}:{int(pickup.timestamp())}",
            "operator": operator,
            "type": "LINE",
            "passengerPickupDate": int(pickup.timestamp()),
            "passengerPickupLat": board.lat,
            "passengerPickupLng": board.lon,
            "passengerDropLat": alight.lat,
            "passengerDropLng": alight.lon,
            "passengerPickupAddress": f"Arrêt de covoiturage {board.name} ({board.code})",
            "passengerDropAddress": f"Arrêt de covoiturage {alight.name} ({alight.code})",
            "distance": distance_m,
            "duration": round(distance_m / 1000 / SPEED_KMH * 3600),
            "driver": {"id": f"line:{line.id}", "alias": line.name, "operator": operator},
            "price": (
                {"type": "FREE"}
                if money == 0
                else {"type": "PAYING", "amount": money / 100, "currency": "EUR"}
            ),
        }
        return journey
