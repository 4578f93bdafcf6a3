"""Adapter: the campaigns file (YAML) — checked with every problem's path, built into campaigns.

Without a file (`CARPOOL_CAMPAIGNS_FILE` unset), each line's `compensation` rule is the one
campaign (`default_campaigns`), so a line keeps paying what lines.yaml says.
"""

from __future__ import annotations

import re
from datetime import date, time
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dispatcher.model import LineId, Network
from line_service.authority.campaigns import (
    JOURNEY_KIND,
    PRESENCE_KIND,
    Campaign,
    SponsorKind,
)
from line_service.authority.siret import siret_problem
from line_service.network.lines_file import LinesFileError, parse_yaml, validation_problems

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])-([01][0-9]|2[0-4]):([0-5][0-9])$")
Cents = Annotated[int, Field(ge=0, le=10_000_000)]


class CampaignsFileError(Exception):
    """The campaigns file cannot be used; `problems` lists each as "<path>: <message>"."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        listing = "".join(f"\n  - {problem}" for problem in problems)
        super().__init__(f"{source}: {len(problems)} problem(s){listing}")


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SponsorEntry(_Entry):
    kind: SponsorKind = SponsorKind.TERRITORY
    name: str = Field(min_length=1, max_length=120)
    siret: str

    @field_validator("siret")
    @classmethod
    def _siret(cls, value: str) -> str:
        problem = siret_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value


class AmountsEntry(_Entry):
    per_trip_cents: Cents = 0
    per_passenger_cents: Cents = 0
    per_km_cents: Cents = 0
    per_declaration_cents: Cents = 0


class DistanceEntry(_Entry):
    min_km: float | None = Field(default=None, ge=0, le=1000)
    max_km: float | None = Field(default=None, gt=0, le=1000)

    @model_validator(mode="after")
    def _range(self) -> DistanceEntry:
        if self.min_km is not None and self.max_km is not None and self.min_km > self.max_km:
            raise ValueError(f"min_km {self.min_km} is above max_km {self.max_km}")
        return self


class ZoneEntry(_Entry):
    stops: list[str] | None = None
    insee: list[Annotated[str, Field(pattern=r"^(\d{5}|2[AB]\d{3})$")]] | None = None


class CapsEntry(_Entry):
    per_person_per_day_cents: Cents | None = None
    per_person_per_month_cents: Cents | None = None


class PeriodEntry(_Entry):
    start: date | None = Field(default=None, alias="from")
    end: date | None = Field(default=None, alias="to")


class CampaignEntry(_Entry):
    id: str = Field(pattern=r"^[a-z0-9-]{1,64}$")
    name: str = Field(min_length=1, max_length=120)
    kind: Literal["journey", "presence"] = "journey"
    sponsor: SponsorEntry
    lines: list[str] | None = None
    amounts: AmountsEntry
    distance: DistanceEntry = DistanceEntry()
    proof_classes: list[Literal["A", "B", "C"]] | None = None
    weekdays: list[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]] | None = None
    hours: list[str] = []
    zone: ZoneEntry | None = None
    adults_only: bool = False
    period: PeriodEntry | None = None
    caps: CapsEntry = CapsEntry()
    budget_cents: Cents | None = None

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: list[str]) -> list[str]:
        for window in value:
            match = _WINDOW.fullmatch(window)
            if match is None or window[:5] >= window[6:]:
                raise ValueError(f"hours are 'HH:MM-HH:MM' with start before end, got {window!r}")
        return value

    @model_validator(mode="after")
    def _kind(self) -> CampaignEntry:
        if self.budget_cents is not None and (self.period is None or self.period.start is None):
            raise ValueError("a budget needs period.from: the day it starts counting")
        if self.kind == PRESENCE_KIND and self.amounts.per_declaration_cents == 0:
            raise ValueError("a presence campaign needs amounts.per_declaration_cents")
        if self.kind == JOURNEY_KIND and self.amounts.per_declaration_cents:
            raise ValueError("per_declaration_cents is for presence campaigns only")
        return self


class CampaignsFileEntry(_Entry):
    campaigns: list[CampaignEntry]


def _time(text: str) -> time:
    return time.max if text == "24:00" else time.fromisoformat(text)


def _campaign(entry: CampaignEntry) -> Campaign:
    zone = entry.zone
    return Campaign(
        id=entry.id,
        name=entry.name,
        siret=entry.sponsor.siret,
        sponsor=entry.sponsor.kind,
        kind=entry.kind,
        lines=None if entry.lines is None else frozenset(entry.lines),
        per_trip_cents=entry.amounts.per_trip_cents,
        per_passenger_cents=entry.amounts.per_passenger_cents,
        per_km_cents=entry.amounts.per_km_cents,
        per_declaration_cents=entry.amounts.per_declaration_cents,
        min_distance_m=None
        if entry.distance.min_km is None
        else round(entry.distance.min_km * 1000),
        max_distance_m=None
        if entry.distance.max_km is None
        else round(entry.distance.max_km * 1000),
        classes=None if entry.proof_classes is None else frozenset(entry.proof_classes),
        weekdays=None
        if entry.weekdays is None
        else frozenset(WEEKDAYS.index(day) for day in entry.weekdays),
        hours=tuple((_time(w[:5]), _time(w[6:])) for w in entry.hours),
        zone_stops=None if zone is None or zone.stops is None else frozenset(zone.stops),
        zone_insee=None if zone is None or zone.insee is None else frozenset(zone.insee),
        adults_only=entry.adults_only,
        first_day=None if entry.period is None else entry.period.start,
        last_day=None if entry.period is None else entry.period.end,
        cap_per_day_cents=entry.caps.per_person_per_day_cents,
        cap_per_month_cents=entry.caps.per_person_per_month_cents,
        budget_cents=entry.budget_cents,
    )


def _cross_check(entry: CampaignsFileEntry, network: Network | None) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    stops = {
        str(stop.id) for line in (network.lines if network else ()) for stop in line.all_stops()
    }
    for n, campaign in enumerate(entry.campaigns):
        where = f"campaigns[{n}]"
        if campaign.id in seen:
            problems.append(f"{where}.id: {campaign.id!r} is used twice")
        seen.add(campaign.id)
        if network is None:
            continue
        for k, line_id in enumerate(campaign.lines or ()):
            if network.line(LineId(line_id)) is None:
                problems.append(f"{where}.lines[{k}]: no line {line_id!r} in the lines file")
        for k, stop_id in enumerate((campaign.zone.stops if campaign.zone else None) or ()):
            if stop_id not in stops:
                problems.append(f"{where}.zone.stops[{k}]: no stop {stop_id!r} in the lines file")
    return problems


def parse_campaigns(text: str, source: str, network: Network | None = None) -> list[Campaign]:
    """The campaigns of a YAML text; CampaignsFileError lists every problem with its path."""
    try:
        data = parse_yaml(text, source)
    except LinesFileError as exc:
        raise CampaignsFileError(source, exc.problems) from exc
    try:
        entry = CampaignsFileEntry.model_validate(data)
    except ValidationError as exc:
        raise CampaignsFileError(source, validation_problems(exc)) from exc
    problems = _cross_check(entry, network)
    if problems:
        raise CampaignsFileError(source, problems)
    return [_campaign(campaign) for campaign in entry.campaigns]


def load_campaigns(path: Path, network: Network | None = None) -> list[Campaign]:
    """Read and check the campaigns file at `path`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CampaignsFileError(str(path), [f"(file): cannot read the file: {exc}"]) from exc
    return parse_campaigns(text, str(path), network)


def default_campaigns(network: Network) -> list[Campaign]:
    """Each line's own compensation rule, as one campaign per line (payer: its `siret`)."""
    return [
        Campaign(
            id=f"line-{line.id}",
            name=f"Indemnité de la ligne {line.name}",
            siret=line.compensation.siret,
            lines=frozenset({str(line.id)}),
            per_trip_cents=line.compensation.driver_per_trip_cents,
            per_passenger_cents=line.compensation.driver_per_passenger_cents,
        )
        for line in network.lines
        if line.compensation.driver_per_trip_cents or line.compensation.driver_per_passenger_cents
    ]


def campaigns_for(path: Path | None, network: Network) -> list[Campaign]:
    """The campaigns file's campaigns, or the lines' own rules when there is no file."""
    return default_campaigns(network) if path is None else load_campaigns(path, network)
