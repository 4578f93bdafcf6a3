"""Adapter: reads lines.yaml, reports every problem with its path, and builds the core Network."""

from __future__ import annotations

import itertools
import math
from collections.abc import Hashable, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from pydantic_core import ErrorDetails

from dispatcher.model import (
    Agency,
    Compensation,
    Direction,
    DirectionId,
    FallbackContact,
    Line,
    LineId,
    LineTuning,
    Network,
    ServiceHours,
    SignGeometry,
    SignId,
    SignSpec,
    Stop,
    StopId,
    TerminalId,
    TimeWindow,
    Weekday,
)
from line_service.network import cache as lines_cache
from line_service.network.holidays import french_public_holidays
from line_service.network.schema import (
    PATTERN_HINTS,
    DirectionEntry,
    LineEntry,
    LinesFileEntry,
    StopEntry,
    TuningEntry,
    cross_check,
    days_of,
    window_bounds,
)

_EARTH_RADIUS_KM = 6371.0088
_MERGE_TAG = "tag:yaml.org,2002:merge"


class LinesFileError(Exception):
    """lines.yaml cannot be used; `problems` lists each one as "<path>: <message>"."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.source = source
        self.problems = list(problems)
        count = len(self.problems)
        listing = "".join(f"\n  - {problem}" for problem in self.problems)
        super().__init__(f"{source}: {count} problem{'s' if count != 1 else ''}{listing}")


def load_network(path: Path, cache_dir: Path | None = None) -> Network:
    """Read and check the lines file at `path`; raise LinesFileError if it is unusable.

    With `cache_dir`, the parsed YAML is kept there for the next start (`lines_cache`).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise LinesFileError(
            str(path), [f"(file): not UTF-8 text (bad byte at offset {exc.start})"]
        ) from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise LinesFileError(str(path), [f"(file): cannot read the file: {reason}"]) from exc
    return parse_network(text, source=str(path), cache_dir=cache_dir)


def parse_network(text: str, source: str = "<text>", cache_dir: Path | None = None) -> Network:
    """Check the YAML text of a lines file and build the Network; every problem is reported."""
    cached = lines_cache.read(cache_dir, text) if cache_dir is not None else None
    data = cached if cached is not None else _parse_yaml(text, source)
    problems: list[str] = []
    entry: LinesFileEntry | None = None
    try:
        entry = LinesFileEntry.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        problems.extend(_describe(error) for error in errors if not _is_echo(error, errors))
    problems.extend(cross_check(data))
    if problems or entry is None:
        raise LinesFileError(source, problems)
    network = Network(lines=tuple(_line(line) for line in entry.lines))
    if cache_dir is not None and cached is None:
        lines_cache.write(cache_dir, text, data)
    return network


class _UniqueKeyLoader(yaml.CSafeLoader):
    """libyaml's safe loader, refusing a key written twice in a mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != _MERGE_TAG:
                key = self.construct_object(key_node)
                if key in seen:
                    raise yaml.constructor.ConstructorError(
                        "while constructing a mapping",
                        node.start_mark,
                        f"found duplicate key {key!r}",
                        key_node.start_mark,
                    )
                seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _parse_yaml(text: str, source: str) -> object:
    try:
        data: object = yaml.load(text, Loader=_UniqueKeyLoader)  # a CSafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        detail = "; ".join(part for part in (exc.context, exc.problem) if part)
        raise LinesFileError(source, [f"{where}: YAML syntax error: {detail}"]) from exc
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise LinesFileError(source, [f"(file): YAML error: {detail}"]) from exc
    except RecursionError as exc:
        raise LinesFileError(source, ["(file): YAML nested too deeply"]) from exc
    if data is None:
        raise LinesFileError(source, ["(root): the file is empty; expected a 'lines' mapping"])
    return data


def _yaml_type(value: object) -> str:
    kinds: tuple[tuple[type, str], ...] = (
        (bool, "a boolean"),
        (int, "an integer"),
        (float, "a number"),
        (str, "a string"),
        (dict, "a mapping"),
        (list, "a list"),
    )
    if value is None:
        return "null"
    return next((name for kind, name in kinds if isinstance(value, kind)), type(value).__name__)


_EXPECTED = {
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "dict_type": "a mapping",
    "tuple_type": "a list",
    "list_type": "a list",
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
}


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:36]}..."


def _path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
            continue
        shown = part if part.isprintable() and len(part) <= 40 else _short(part)
        path += f".{shown}" if path else shown
    return path or "(root)"


def _is_echo(error: ErrorDetails, errors: Sequence[ErrorDetails]) -> bool:
    """A list "too short" only because some of its items failed: those items say why."""
    loc, size = error["loc"], len(error["loc"])
    return error["type"] == "too_short" and any(
        len(other["loc"]) > size and other["loc"][:size] == loc for other in errors
    )


def _describe(error: ErrorDetails) -> str:
    loc = list(error["loc"])
    kind, context = error["type"], error.get("ctx", {})
    if kind == "missing":
        message = "required key is missing"
    elif kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "invalid_key":
        message = f"key {_short(loc.pop())} is not a string"
    elif kind == "too_short":
        least, actual = context.get("min_length"), context.get("actual_length")
        message = f"expected at least {least} items, got {actual}"
    elif kind == "string_pattern_mismatch" and context.get("pattern") in PATTERN_HINTS:
        message = f"{PATTERN_HINTS[context['pattern']]}, got {_short(error['input'])}"
    elif kind in _EXPECTED:
        message = f"expected {_EXPECTED[kind]}, got {_yaml_type(error['input'])}"
    else:
        message = error["msg"].removeprefix("Value error, ")
    if loc and loc[-1] == "[key]":
        loc.pop()
        message = f"invalid key: {message}"
    return f"{_path(loc)}: {message}"


def _line(entry: LineEntry) -> Line:
    tuning = entry.tuning or TuningEntry()
    guarantee = entry.wait_guarantee_minutes
    return Line(
        id=LineId(entry.id),
        name=entry.name,
        timezone=entry.timezone,
        directions=tuple(_direction(direction) for direction in entry.directions),
        service_hours=None
        if entry.service_hours is None
        else replace(
            _hours(entry.service_hours),
            closed_dates=french_public_holidays()
            if entry.public_holidays == "closed"
            else frozenset(),
        ),
        tuning=LineTuning(
            wait_guarantee=None if guarantee is None else timedelta(minutes=guarantee),
            max_wait=timedelta(minutes=tuning.max_wait_minutes),
            sign_lease=timedelta(seconds=tuning.sign_lease_seconds),
            result_screen_time=timedelta(seconds=tuning.result_screen_seconds),
            max_waiting_per_stop=tuning.max_waiting_per_stop,
            terminal_reserve=tuning.terminal_reserve,
            max_pages=tuning.max_pages,
            device_settle=timedelta(seconds=tuning.device_settle_seconds),
            announce_grace=timedelta(minutes=tuning.announce_grace_minutes),
        ),
        has_fallback=entry.fallback is not None,
        fallback=None
        if entry.fallback is None
        else FallbackContact(entry.fallback.kind, entry.fallback.address),
        compensation=_compensation(entry),
        commissioning=entry.commissioning,
        agency=None
        if entry.agency is None
        else Agency(
            entry.agency.name, entry.agency.url, entry.agency.phone, entry.agency.operator_domain
        ),
    )


def _compensation(entry: LineEntry) -> Compensation:
    money = entry.compensation
    if money is None:
        return Compensation()
    return Compensation(
        money.driver_per_trip_cents,
        money.driver_per_passenger_cents,
        money.passenger_contribution_cents,
        money.siret,
    )


def _hours(hours: dict[str, tuple[str, ...]]) -> ServiceHours:
    by_day: dict[Weekday, list[TimeWindow]] = {day: [] for day in Weekday}
    for spec, windows in hours.items():
        for day in days_of(spec):
            by_day[day].extend(TimeWindow(*window_bounds(window)) for window in windows)
    return ServiceHours(
        windows={day: tuple(sorted(spans, key=lambda w: w.start)) for day, spans in by_day.items()}
    )


def _direction(entry: DirectionEntry) -> Direction:
    return Direction(
        id=DirectionId(entry.id),
        name=entry.name,
        stops=tuple(
            _stop(stop, km) for stop, km in zip(entry.stops, _positions(entry.stops), strict=True)
        ),
    )


def _positions(stops: Sequence[StopEntry]) -> list[float]:
    """The stops' km: as written, or else the cumulative great-circle distance from the first."""
    if all(stop.km is not None for stop in stops):
        return [float(stop.km) for stop in stops if stop.km is not None]
    total, positions = 0.0, [0.0]
    for before, after in itertools.pairwise(stops):
        total += _haversine_km(before.lat, before.lon, after.lat, after.lon)
        positions.append(round(total, 1))
    return positions


def _haversine_km(lat_a: float, lon_a: float, lat_b: float, lon_b: float) -> float:
    phi_a, phi_b = math.radians(lat_a), math.radians(lat_b)
    d_phi, d_lambda = phi_b - phi_a, math.radians(lon_b - lon_a)
    h = math.sin(d_phi / 2) ** 2 + math.cos(phi_a) * math.cos(phi_b) * math.sin(d_lambda / 2) ** 2
    return 2 * _EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(h)))


def _stop(entry: StopEntry, km: float) -> Stop:
    return Stop(
        id=StopId(entry.id),
        name=entry.name,
        code=entry.code,
        lat=entry.lat,
        lon=entry.lon,
        km=km,
        terminal=None if entry.terminal is None else TerminalId(entry.terminal),
        signs=tuple(
            SignSpec(
                id=SignId(sign.id),
                distance_upstream_m=sign.distance_upstream_m,
                geometry=SignGeometry()
                if sign.geometry is None
                else SignGeometry(rows=sign.geometry.rows, columns=sign.geometry.columns),
            )
            for sign in entry.signs
        ),
        bnlc_id=entry.bnlc_id,
        insee=entry.insee,
        commissioning=entry.commissioning,
    )


def validation_problems(exc: ValidationError) -> list[str]:
    """Each problem of a pydantic validation as "<path>: <message>" (other YAML files too)."""
    errors = exc.errors(include_url=False)
    return [_describe(error) for error in errors if not _is_echo(error, errors)]


def parse_yaml(text: str, source: str) -> object:
    """YAML text as data, duplicate keys refused; LinesFileError says where it is broken."""
    return _parse_yaml(text, source)
