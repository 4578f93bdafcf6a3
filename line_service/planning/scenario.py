"""Adapter: what a valid study scenario is (frozen pydantic models), loaded with error paths.

A scenario lists corridors; each corridor is one direction of stops in travel order, with the
hourly traffic and riders of that direction, and optionally its `reverse`. Descriptive keys
(department, EPCIs, roads, sources) travel with it into the report.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from line_service.planning.service_days import weekdays, window

Hour = Annotated[int, Field(ge=0, le=23)]
PerHour = dict[Hour, Annotated[float, Field(ge=0, allow_inf_nan=False)]]
Share = Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]
Slug = Annotated[str, Field(pattern=r"^[a-z0-9-]+$", max_length=64)]
Euros = Annotated[float, Field(ge=0, allow_inf_nan=False)]

# SCoT Sambre-Avesnois figures: a short line (line 1) and the longer lines of the same study.
SHORT_LINE_KM = 25.0
SHORT_INVESTMENT_EUR = 73_000.0
SHORT_OPERATION_EUR = (141_000.0, 128_000.0, 119_000.0)
LONG_INVESTMENT_EUR = 135_000.0
LONG_OPERATION_EUR = (309_000.0, 294_000.0, 275_000.0)


class ScenarioError(Exception):
    """The scenario cannot be used; `problems` name each fault with its path."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StopSpec(_Frozen):
    """A candidate stop: position along the corridor, optional WGS84 position."""

    id: Slug
    name: str = Field(min_length=1)
    km: float = Field(ge=0, allow_inf_nan=False)
    lat: float | None = Field(default=None, ge=-90, le=90)
    lon: float | None = Field(default=None, ge=-180, le=180)
    commune: str | None = None


class DirectionFlows(_Frozen):
    """The other direction of a corridor: its own traffic and riders (stops default to mirror)."""

    name: str | None = None
    stops: tuple[StopSpec, ...] | None = Field(default=None, min_length=2)
    traffic_per_hour: PerHour
    riders_per_hour: PerHour = Field(default_factory=dict)
    stop_share: Share | None = None

    @field_validator("stops")
    @classmethod
    def _stops_in_order(cls, stops: tuple[StopSpec, ...] | None) -> tuple[StopSpec, ...] | None:
        return _check_stops(stops)


class Costs(_Frozen):
    """Money of one line, in euros; absent figures take the SCoT Sambre-Avesnois defaults."""

    investment_eur: Euros | None = None
    operation_eur_per_year: tuple[Euros, ...] | None = Field(default=None, min_length=1)
    study_phase1_eur: Euros = 25_000.0
    study_phase2_eur: Euros = 40_000.0
    taxi_eur_per_fallback: Euros = 35.0


class CorridorSpec(_Frozen):
    """One candidate corridor of the study."""

    id: Slug
    name: str = Field(min_length=1)
    stops: tuple[StopSpec, ...] = Field(min_length=2)
    traffic_per_hour: PerHour
    riders_per_hour: PerHour = Field(default_factory=dict)
    stop_share: Share | None = None
    awareness: float = Field(default=1.0, gt=0, le=3)
    wait_guarantee_minutes: float = Field(default=15.0, gt=0, le=120)
    service_hours: dict[str, tuple[str, ...]] | None = Field(default=None, min_length=1)
    timezone: str = "Europe/Paris"
    reverse: DirectionFlows | None = None
    costs: Costs = Field(default_factory=Costs)
    epci_count: int | None = Field(default=None, ge=1, le=20)
    co2_kg_per_km: float = Field(default=0.2, ge=0, le=2)
    # Descriptive keys: shown in the report, not used by the model.
    number: str | None = None
    department: str | None = None
    epcis: tuple[str, ...] = ()
    roads: tuple[str, ...] = ()
    towns: tuple[str, ...] = ()
    traffic_source: str | None = None
    sources: tuple[str, ...] = ()
    notes: str | None = None

    @field_validator("service_hours")
    @classmethod
    def _hours_parse(cls, value: dict[str, tuple[str, ...]] | None) -> Any:
        for key, texts in (value or {}).items():
            weekdays(key)
            for text in texts:
                window(text)
        return value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ValueError, ZoneInfoNotFoundError) as exc:
            raise ValueError(f"{value!r} is not a time zone such as Europe/Paris") from exc
        return value

    @field_validator("stops")
    @classmethod
    def _stops_in_order(cls, stops: tuple[StopSpec, ...]) -> tuple[StopSpec, ...]:
        return _check_stops(stops) or stops

    @property
    def length_km(self) -> float:
        """Distance from the first to the last stop."""
        return self.stops[-1].km - self.stops[0].km

    @property
    def epcis_crossed(self) -> int:
        """How many EPCIs the line crosses (funding key of operation)."""
        return self.epci_count or max(1, len(self.epcis))

    @property
    def investment_eur(self) -> float:
        """Investment: given, else the SCoT figure for a short or a longer line."""
        if self.costs.investment_eur is not None:
            return self.costs.investment_eur
        return SHORT_INVESTMENT_EUR if self.length_km <= SHORT_LINE_KM else LONG_INVESTMENT_EUR

    @property
    def operation_eur(self) -> tuple[float, ...]:
        """Operation per year of the experiment: given, else the SCoT figures (3 years)."""
        if self.costs.operation_eur_per_year is not None:
            return self.costs.operation_eur_per_year
        return SHORT_OPERATION_EUR if self.length_km <= SHORT_LINE_KM else LONG_OPERATION_EUR


def _check_stops(stops: tuple[StopSpec, ...] | None) -> tuple[StopSpec, ...] | None:
    """Stops in travel order: ids unique, km strictly increasing (errors name the stop)."""
    seen: set[str] = set()
    for index, stop in enumerate(stops or ()):
        if stop.id in seen:
            raise ValueError(f"[{index}].id: {stop.id!r} is used twice")
        seen.add(stop.id)
        if index and stop.km <= (stops or ())[index - 1].km:
            raise ValueError(f"[{index}].km: must be greater than the previous stop's km")
    return stops


class Scenario(_Frozen):
    """A whole study: corridors, how many service days to simulate, the random seed."""

    days: int = Field(default=250, ge=1, le=3660)
    seed: int = 1
    service_days_per_year: int = Field(default=250, ge=1, le=366)
    start_date: str = "2026-01-05"
    title: str | None = None
    region: str | None = None
    sources: tuple[str, ...] = ()
    corridors: tuple[CorridorSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_ids(self) -> Scenario:
        ids = [corridor.id for corridor in self.corridors]
        for index, corridor_id in enumerate(ids):
            if corridor_id in ids[:index]:
                raise ValueError(f"corridors[{index}].id: {corridor_id!r} is used twice")
        return self


def error_path(loc: tuple[int | str, ...]) -> str:
    """`("corridors", 3, "stops", 1, "km")` → `corridors[3].stops[1].km`."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part == "[key]":
            path += " (key)"
        elif part.lstrip("-").isdigit() and path:
            path += f"[{part}]"
        else:
            path += f".{part}" if path else part
    return path


_INNER_PATH = re.compile(r"^((?:\[\d+\]|[a-z_][a-z0-9_]*)(?:\[\d+\]|\.[a-z_][a-z0-9_]*)*): ")


def problems_of(error: ValidationError) -> list[str]:
    """One line per fault, `path: message`; a path our validators name is appended to the loc."""
    found: list[str] = []
    items = error.errors()
    for item in items:
        loc = tuple(item["loc"])
        # A tuple whose items failed is also reported "too short": the item errors say it all.
        if item["type"] == "too_short" and any(
            len(other["loc"]) > len(loc) and tuple(other["loc"][: len(loc)]) == loc
            for other in items
        ):
            continue
        message = str(item["msg"]).removeprefix("Value error, ")
        path = error_path(loc)
        inner = _INNER_PATH.match(message)
        if inner is not None:
            joint = "" if inner.group(1).startswith("[") or not path else "."
            path = f"{path}{joint}{inner.group(1)}"
            message = message[inner.end() :]
        found.append(f"{path or '(top)'}: {message}")
    return found


def read_yaml(path: Path) -> object:
    """The parsed YAML document; ScenarioError with a clear message when it cannot be read."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError([f"cannot read {path}: {exc.strerror or exc}"]) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError([f"not valid YAML{where}: {reason}"]) from exc


def parse_scenario(data: object) -> Scenario:
    """A Scenario from parsed YAML; ScenarioError listing every problem with its path."""
    if not isinstance(data, dict):
        raise ScenarioError(["(top): expected a mapping with days, seed and corridors"])
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(problems_of(exc)) from exc


def load_scenario(path: Path) -> Scenario:
    """Read and validate a scenario file."""
    return parse_scenario(read_yaml(path))
