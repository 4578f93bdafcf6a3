"""Adapter: what a valid lines.yaml is — frozen pydantic models, plus the cross-entry rules.

Field rules live on the models; rules that need the whole file (unique codes and ids, no
device on a direction's last stop, km order, guarantee before expiry) are in `cross_check`.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from datetime import time
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, field_validator

from dispatcher.model import Weekday
from line_service.network.authority_keys import (
    AgencyEntry,
    CompensationEntry,
    FallbackEntry,
    HolidayPolicy,
    check_compensation,
)

_WEEKDAYS = tuple(Weekday)
_DAY_NAMES = frozenset(day.value for day in Weekday)
_DAY_ITEM = re.compile(r"([a-z]{3})(?:-([a-z]{3}))?")
_WINDOW = re.compile(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)")
_ZONE_NAME = re.compile(r"[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*")
# A stop code is the first word of a ride request by SMS: it must not read as a command
# (ours, or the opt-out keywords carriers and Twilio handle themselves).
RESERVED_CODES = frozenset(
    {"AIDE", "PARTI", "ANNULER", "ARRET", "STOP", "START", "HELP", "INFO", "END", "QUIT", "YES"}
)


def days_of(spec: str) -> tuple[Weekday, ...]:
    """The weekdays of a service-hours key (`mon-fri`, `sat`, `mon,wed`, `mon-wed,fri`).

    Raises ValueError for anything else: unknown day, backward range, a day named twice.
    """
    days: list[Weekday] = []
    for item in spec.split(","):
        match = _DAY_ITEM.fullmatch(item.strip())
        if match is None:
            raise ValueError(f"{item.strip()!r} is not a day (mon..sun) or a range like mon-fri")
        first, last = match.group(1), match.group(2) or match.group(1)
        for name in (first, last):
            if name not in _DAY_NAMES:
                raise ValueError(f"unknown day {name!r}; use mon, tue, wed, thu, fri, sat, sun")
        start, end = _WEEKDAYS.index(Weekday(first)), _WEEKDAYS.index(Weekday(last))
        if start > end:
            raise ValueError(f"range {item.strip()!r} goes backwards; write it as two items")
        for day in _WEEKDAYS[start : end + 1]:
            if day in days:
                raise ValueError(f"{day.value} is named twice")
            days.append(day)
    return tuple(days)


def window_bounds(text: str) -> tuple[time, time]:
    """Start and end of an "HH:MM-HH:MM" window; ValueError unless start < end."""
    match = _WINDOW.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a window like 06:30-09:30 (24-hour HH:MM-HH:MM)")
    hours_a, minutes_a, hours_b, minutes_b = (int(part) for part in match.groups())
    start, end = time(hours_a, minutes_a), time(hours_b, minutes_b)
    if start >= end:
        raise ValueError(f"window {text!r} must start before it ends (same day)")
    return start, end


def _check_days(spec: str) -> str:
    days_of(spec)
    return spec


def _check_window(text: str) -> str:
    window_bounds(text)
    return text


def _check_zone(name: str) -> str:
    try:
        if _ZONE_NAME.fullmatch(name) is None:
            raise ValueError(name)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {name!r}; use an IANA name like Europe/Paris") from exc
    return name


def _check_code(code: str) -> str:
    if code in RESERVED_CODES:
        raise ValueError(f"{code!r} is an SMS keyword; choose another code")
    return code


SLUG_PATTERN = r"^[a-z0-9-]+$"
CODE_PATTERN = r"^[A-Z][A-Z0-9]{1,5}$"
INSEE_PATTERN = r"^[0-9][0-9AB][0-9]{3}$"
BNLC_PATTERN = r"^[0-9][0-9AB][0-9]{3}-[A-Z]-[0-9]{3}$"
PATTERN_HINTS = {
    SLUG_PATTERN: "expected an id of lowercase letters, digits and '-'",
    CODE_PATTERN: "expected a code of 2-6 capital letters or digits, starting with a letter",
    INSEE_PATTERN: "expected a 5-character INSEE commune code such as 62193",
    BNLC_PATTERN: "expected a BNLC place id such as 62548-C-001",
}

Slug = Annotated[str, Strict(), Field(pattern=SLUG_PATTERN, min_length=1, max_length=64)]
Name = Annotated[str, Strict(), Field(min_length=1, max_length=80)]
Code = Annotated[str, Strict(), Field(pattern=CODE_PATTERN), AfterValidator(_check_code)]
Latitude = Annotated[float, Strict(), Field(ge=-90, le=90, allow_inf_nan=False)]
Longitude = Annotated[float, Strict(), Field(ge=-180, le=180, allow_inf_nan=False)]
DaySpec = Annotated[str, Strict(), AfterValidator(_check_days)]
WindowText = Annotated[str, Strict(), AfterValidator(_check_window)]
Insee = Annotated[str, Strict(), Field(pattern=INSEE_PATTERN)]
BnlcId = Annotated[str, Strict(), Field(pattern=BNLC_PATTERN)]


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class GeometrySpec(_Spec):
    """What a sign can show (defaults: 3 rows of 18 characters)."""

    rows: Annotated[int, Strict(), Field(ge=1, le=10)] = 3
    columns: Annotated[int, Strict(), Field(ge=4, le=80)] = 18


class SignEntry(_Spec):
    """A variable-message sign upstream of a stop."""

    id: Slug
    distance_upstream_m: Annotated[int, Strict(), Field(ge=1, le=2000)]
    road_speed_kmh: Annotated[int, Strict(), Field(ge=10, le=130)] | None = None
    geometry: GeometrySpec | None = None


class StopEntry(_Spec):
    """One side of the road in one direction."""

    id: Slug
    name: Name
    code: Code
    lat: Latitude
    lon: Longitude
    km: Annotated[float, Strict(), Field(ge=0, le=2000, allow_inf_nan=False)] | None = None
    bnlc_id: BnlcId | None = None
    insee: Insee | None = None
    terminal: Slug | None = None
    signs: tuple[SignEntry, ...] = Field(default=(), max_length=8)
    commissioning: Annotated[bool, Strict()] = False  # under test: riders not served yet


class DirectionEntry(_Spec):
    """Stops in travel order."""

    id: Slug
    name: Name
    stops: tuple[StopEntry, ...] = Field(min_length=2, max_length=100)


class TuningEntry(_Spec):
    """Timing rules; each absent key keeps the core's default."""

    sign_lease_seconds: Annotated[int, Strict(), Field(ge=1, le=3600)] = 90
    max_wait_minutes: Annotated[int, Strict(), Field(ge=1, le=480)] = 30
    result_screen_seconds: Annotated[int, Strict(), Field(ge=1, le=600)] = 30
    max_waiting_per_stop: Annotated[int, Strict(), Field(ge=1, le=100)] = 6
    terminal_reserve: Annotated[int, Strict(), Field(ge=0, le=100)] = 2
    max_pages: Annotated[int, Strict(), Field(ge=1, le=10)] = 3
    device_settle_seconds: Annotated[int, Strict(), Field(ge=1, le=600)] = 10
    announce_grace_minutes: Annotated[int, Strict(), Field(ge=1, le=60)] = 10
    """How long after the announced time a rider on the way ("J'arrive") still counts."""


class LineEntry(_Spec):
    """A line; `service_hours` absent means always open."""

    id: Slug
    name: Name
    timezone: Annotated[str, Strict(), AfterValidator(_check_zone)]
    wait_guarantee_minutes: Annotated[int, Strict(), Field(ge=1, le=240)] | None = None
    service_hours: dict[DaySpec, tuple[WindowText, ...]] | None = Field(default=None, min_length=1)
    tuning: TuningEntry | None = None
    fallback: FallbackEntry | None = None  # who the wait guarantee calls
    compensation: CompensationEntry | None = None  # money of a trip (cents)
    public_holidays: HolidayPolicy = "closed"  # French public holidays: closed unless "open"
    commissioning: Annotated[bool, Strict()] = False  # every stop under test: no rider served
    agency: AgencyEntry | None = None  # who runs the line for riders (GTFS, trip planners)
    directions: tuple[DirectionEntry, ...] = Field(min_length=1, max_length=20)

    @field_validator("service_hours")
    @classmethod
    def _no_overlap(
        cls, hours: dict[str, tuple[str, ...]] | None
    ) -> dict[str, tuple[str, ...]] | None:
        """Two windows of one day must not overlap, even when written under different keys."""
        if hours is None:
            return None
        by_day: dict[Weekday, list[tuple[time, time, str]]] = {}
        for spec, windows in hours.items():
            for day in days_of(spec):
                by_day.setdefault(day, []).extend((*window_bounds(w), w) for w in windows)
        for day, spans in by_day.items():
            spans.sort()
            for before, after in itertools.pairwise(spans):
                if after[0] < before[1]:
                    raise ValueError(f"on {day.value}, {before[2]} overlaps {after[2]}")
        return hours


class LinesFileEntry(_Spec):
    """The whole file: a mapping with one key, `lines`."""

    lines: tuple[LineEntry, ...] = Field(min_length=1, max_length=100)


def _entries(container: object, key: str, prefix: str) -> list[tuple[str, dict[Any, Any], bool]]:
    """(path, mapping, is_last) for each mapping of the list `container[key]`, if any."""
    items = container.get(key) if isinstance(container, dict) else None
    if not isinstance(items, list):
        return []
    base = f"{prefix}.{key}" if prefix else key
    return [
        (f"{base}[{index}]", item, index == len(items) - 1)
        for index, item in enumerate(items)
        if isinstance(item, dict)
    ]


class _Registry:
    """First place each value was seen, per kind; reports the later duplicates."""

    def __init__(self, problems: list[str], what: str, key: Callable[[str], str] = str) -> None:
        self._problems, self._what, self._key = problems, what, key
        self._seen: dict[str, str] = {}

    def claim(self, value: object, path: str) -> None:
        """Note `value` seen at `path`; report it if an earlier path had it."""
        if not isinstance(value, str):
            return
        first = self._seen.setdefault(self._key(value), path)
        if first != path:
            self._problems.append(f"{path}: duplicate {self._what} {value!r} (first at {first})")


def _number(value: object) -> float | None:
    """A finite YAML number as float, else None (field validation reports the rest)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def cross_check(data: object) -> list[str]:
    """Problems across entries that field validation cannot see, as "<path>: <message>".

    Runs on the raw YAML data, whatever its shape, so that these problems are reported
    together with the field errors rather than after they are fixed.
    """
    problems: list[str] = []
    line_ids = _Registry(problems, "line id")
    codes = _Registry(problems, "stop code", key=lambda code: code.strip().upper())
    terminals = _Registry(problems, "terminal id")
    signs = _Registry(problems, "sign id")
    for line_path, line, _ in _entries(data, "lines", ""):
        line_ids.claim(line.get("id"), f"{line_path}.id")
        _check_guarantee(line, line_path, problems)
        problems.extend(check_compensation(line, line_path))
        directions = _Registry(problems, "direction id")
        stops = _Registry(problems, "stop id in this line")
        for direction_path, direction, _ in _entries(line, "directions", line_path):
            directions.claim(direction.get("id"), f"{direction_path}.id")
            kms: list[tuple[str, object]] = []
            for stop_path, stop, is_last in _entries(direction, "stops", direction_path):
                stops.claim(stop.get("id"), f"{stop_path}.id")
                codes.claim(stop.get("code"), f"{stop_path}.code")
                kms.append((f"{stop_path}.km", stop.get("km")))
                if is_last:
                    for key in ("terminal", "signs"):
                        if stop.get(key):
                            problems.append(
                                f"{stop_path}.{key}: the last stop of a direction takes no "
                                f"{key}: no ride starts there"
                            )
                    continue
                terminals.claim(stop.get("terminal"), f"{stop_path}.terminal")
                for sign_path, sign, _ in _entries(stop, "signs", stop_path):
                    signs.claim(sign.get("id"), f"{sign_path}.id")
            problems.extend(_check_km(kms))
    return problems


def _check_guarantee(line: dict[Any, Any], line_path: str, problems: list[str]) -> None:
    default = TuningEntry.model_fields["max_wait_minutes"].default
    tuning = line.get("tuning")
    raw = tuning.get("max_wait_minutes", default) if isinstance(tuning, dict) else default
    max_wait = _number(raw)
    guarantee = _number(line.get("wait_guarantee_minutes"))
    if guarantee is not None and max_wait is not None and guarantee >= max_wait:
        problems.append(
            f"{line_path}.wait_guarantee_minutes: must be shorter than max_wait_minutes "
            f"({max_wait:g}), or requests expire before the guarantee"
        )


def _check_km(raw: list[tuple[str, object]]) -> list[str]:
    if any(km is not None and _number(km) is None for _, km in raw):
        return []  # an invalid km: field validation reports it
    kms = [(path, _number(km)) for path, km in raw]
    given = [(path, km) for path, km in kms if km is not None]
    if not given:
        return []
    if len(given) < len(kms):
        return [
            f"{path}: missing while other stops of this direction have km; give all or none"
            for path, km in kms
            if km is None
        ]
    return [
        f"{path}: {km:g} km is not beyond the previous stop ({before:g} km); km grows along "
        "the direction"
        for (_, before), (path, km) in itertools.pairwise(given)
        if km <= before
    ]
