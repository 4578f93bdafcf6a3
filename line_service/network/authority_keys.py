"""Adapter: the authority's keys of a line in lines.yaml — fallback, compensation, holidays.

`fallback:` names who the wait guarantee calls; `compensation:` the money rules of a trip, in
integer euro cents, checked against the legal cost-sharing ceiling (no profit: the recommended
maximum is 0.20 € per km and per passenger, over the shortest trip of the line).
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, Strict, model_validator

CEILING_CENTS_PER_KM = 20
E164_PATTERN = r"^\+[1-9][0-9]{7,14}$"
URL_PATTERN = r"^https?://[^\s/]+(/\S*)?$"
SIRET_PATTERN = r"^[0-9]{14}$"
_EARTH_RADIUS_KM = 6371.0088

Cents = Annotated[int, Strict(), Field(ge=0, le=100_000)]
HolidayPolicy = Literal["closed", "open"]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FallbackEntry(_Spec):
    """The line's fallback: a taxi company reached by SMS (`phone`) or a webhook (`url`)."""

    kind: Literal["sms", "webhook"]
    name: Annotated[str, Strict(), Field(min_length=1, max_length=80)] | None = None
    phone: Annotated[str, Strict(), Field(pattern=E164_PATTERN)] | None = None
    url: Annotated[str, Strict(), Field(pattern=URL_PATTERN, max_length=500)] | None = None

    @model_validator(mode="after")
    def _address_for_kind(self) -> FallbackEntry:
        if self.kind == "sms" and (self.phone is None or self.url is not None):
            raise ValueError("kind sms takes a phone (E.164, e.g. +33321000000) and no url")
        if self.kind == "webhook" and (self.url is None or self.phone is not None):
            raise ValueError("kind webhook takes a url (http:// or https://) and no phone")
        return self

    @property
    def address(self) -> str:
        """The phone number or URL, whichever the kind uses."""
        return self.phone or self.url or ""


class CompensationEntry(_Spec):
    """Money of one trip, in integer euro cents; `siret` = who pays the driver's incentive."""

    driver_per_trip_cents: Cents = 0
    driver_per_passenger_cents: Cents = 0
    passenger_contribution_cents: Cents = 0
    siret: Annotated[str, Strict(), Field(pattern=SIRET_PATTERN)] | None = None


class AgencyEntry(_Spec):
    """Who runs the line for riders (GTFS `agency.txt`): the authority or its operator."""

    name: Annotated[str, Strict(), Field(min_length=1, max_length=100)]
    url: Annotated[str, Strict(), Field(pattern=URL_PATTERN, max_length=500)]
    phone: Annotated[str, Strict(), Field(min_length=4, max_length=32)] | None = None
    operator_domain: (
        Annotated[str, Strict(), Field(pattern=r"^[a-z0-9-]+(\.[a-z0-9-]+)+$", max_length=253)]
        | None
    ) = None  # the operator's domain name, as national carpool APIs identify operators


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _haversine_km(a: dict[Any, Any], b: dict[Any, Any]) -> float | None:
    coords = [_number(point.get(key)) for point in (a, b) for key in ("lat", "lon")]
    if any(value is None for value in coords):
        return None
    lat_a, lon_a, lat_b, lon_b = (math.radians(value or 0.0) for value in coords)
    h = (
        math.sin((lat_b - lat_a) / 2) ** 2
        + math.cos(lat_a) * math.cos(lat_b) * math.sin((lon_b - lon_a) / 2) ** 2
    )
    return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def shortest_trip_km(line: dict[Any, Any]) -> float | None:
    """The shortest ride the line offers (two adjacent stops), by `km` or else great-circle."""
    hops: list[float] = []
    directions = line.get("directions")
    for direction in directions if isinstance(directions, list) else []:
        stops = direction.get("stops") if isinstance(direction, dict) else None
        if not isinstance(stops, list):
            continue
        stops = [stop for stop in stops if isinstance(stop, dict)]
        kms = [_number(stop.get("km")) for stop in stops]
        for index in range(1, len(stops)):
            before, after = kms[index - 1], kms[index]
            if before is not None and after is not None:
                hop: float | None = after - before
            else:
                hop = _haversine_km(stops[index - 1], stops[index])
            if hop is not None and hop > 0:
                hops.append(hop)
    return min(hops) if hops else None


def check_compensation(line: dict[Any, Any], line_path: str) -> list[str]:
    """The cost-sharing ceiling, as "<path>: <message>" problems (raw YAML data of one line)."""
    money = line.get("compensation")
    if not isinstance(money, dict):
        return []
    share = _number(money.get("passenger_contribution_cents"))
    shortest = shortest_trip_km(line)
    if not share or shortest is None:
        return []
    ceiling = math.floor(CEILING_CENTS_PER_KM * shortest)
    if share <= ceiling:
        return []
    return [
        f"{line_path}.compensation.passenger_contribution_cents: {share:g} cents per passenger "
        f"exceeds the cost-sharing ceiling of {CEILING_CENTS_PER_KM} cents per km over the "
        f"line's shortest trip ({shortest:.1f} km): at most {ceiling} cents"
    ]
