"""Pure: the line network — lines, directions, stops, terminals and signs — as frozen values.

Built once from lines.yaml by the service's loader; the core trusts it (the loader validated it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time, timedelta
from enum import StrEnum
from typing import NewType

LineId = NewType("LineId", str)
DirectionId = NewType("DirectionId", str)
StopId = NewType("StopId", str)
TerminalId = NewType("TerminalId", str)
SignId = NewType("SignId", str)
RequestId = NewType("RequestId", str)


class Weekday(StrEnum):
    """Days as written in service hours; `value` order matches `datetime.weekday()`."""

    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """A local-time window of one day, start inclusive, end exclusive."""

    start: time
    end: time


@dataclass(frozen=True, slots=True)
class ServiceHours:
    """Opening windows by weekday, and local dates closed all day (public holidays).

    `None` on the line means always open.
    """

    windows: dict[Weekday, tuple[TimeWindow, ...]]
    closed_dates: frozenset[date] = frozenset()


@dataclass(frozen=True, slots=True)
class SignGeometry:
    """What a sign can show: rows per page and characters per row."""

    rows: int = 3
    columns: int = 18


@dataclass(frozen=True, slots=True)
class SignSpec:
    """A variable-message sign placed upstream of one stop."""

    id: SignId
    distance_upstream_m: int
    geometry: SignGeometry = SignGeometry()


@dataclass(frozen=True, slots=True, kw_only=True)
class Stop:
    """One side of the road, one direction; riders board here."""

    id: StopId
    name: str
    code: str
    lat: float
    lon: float
    km: float
    terminal: TerminalId | None
    signs: tuple[SignSpec, ...]
    bnlc_id: str | None = None  # the place's id in the national carpool-places base (BNLC)
    insee: str | None = None  # INSEE code of the commune
    commissioning: bool = False  # installed, under test: riders are not served here yet


@dataclass(frozen=True, slots=True)
class Direction:
    """Stops in travel order; the destinations of a stop are the stops after it."""

    id: DirectionId
    name: str
    stops: tuple[Stop, ...]


@dataclass(frozen=True, slots=True)
class LineTuning:
    """Timing rules of a line (data from lines.yaml, never constants)."""

    wait_guarantee: timedelta | None = timedelta(minutes=15)
    max_wait: timedelta = timedelta(minutes=30)
    sign_lease: timedelta = timedelta(seconds=90)
    result_screen_time: timedelta = timedelta(seconds=30)
    max_waiting_per_stop: int = 6
    terminal_reserve: int = 2
    """Places of a stop's cap that remote asks (SMS, app) never take while it has a terminal."""
    max_pages: int = 3
    device_settle: timedelta = timedelta(seconds=10)
    """How long a device that flapped must stay online before its offline alert clears."""
    announce_grace: timedelta = timedelta(minutes=10)
    """How long after the announced time a rider on the way ("J'arrive") still counts."""
    max_announce: timedelta = timedelta(minutes=30)
    """How far ahead a rider may announce their arrival."""


@dataclass(frozen=True, slots=True)
class Compensation:
    """Money rules of a line's trips, in integer euro cents (per passenger where it says so)."""

    driver_per_trip_cents: int = 0
    driver_per_passenger_cents: int = 0
    passenger_contribution_cents: int = 0
    siret: str | None = None  # who pays the driver's incentive (RPC `incentives`)


@dataclass(frozen=True, slots=True)
class FallbackContact:
    """Who the wait guarantee calls: a taxi company by SMS (`address` = E.164) or a webhook URL."""

    kind: str
    address: str


@dataclass(frozen=True, slots=True)
class Agency:
    """Who runs the line for riders (published to trip planners); `domain` names the operator."""

    name: str
    url: str
    phone: str | None = None
    domain: str | None = None


@dataclass(frozen=True, slots=True)
class Line:
    """A carpool line: directions of stops, with its calendar and tuning."""

    id: LineId
    name: str
    timezone: str
    directions: tuple[Direction, ...]
    service_hours: ServiceHours | None = None
    tuning: LineTuning = LineTuning()
    has_fallback: bool = False
    fallback: FallbackContact | None = None
    compensation: Compensation = Compensation()
    commissioning: bool = False  # the whole line is under test: no stop serves riders yet
    agency: Agency | None = None
    _stops: dict[StopId, tuple[Direction, int]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for direction in self.directions:
            for index, stop in enumerate(direction.stops):
                self._stops[stop.id] = (direction, index)

    def stop(self, stop_id: StopId) -> Stop | None:
        """The stop with this id, or None."""
        found = self._stops.get(stop_id)
        return found[0].stops[found[1]] if found else None

    def in_commissioning(self, stop: Stop) -> bool:
        """True while `stop` is being commissioned (itself, or its whole line)."""
        return self.commissioning or stop.commissioning

    def destinations_from(self, stop_id: StopId) -> tuple[Stop, ...]:
        """The stops reachable from `stop_id`: later stops of its direction."""
        found = self._stops.get(stop_id)
        if found is None:
            return ()
        direction, index = found
        return direction.stops[index + 1 :]

    def all_stops(self) -> tuple[Stop, ...]:
        """Every stop of every direction, in order."""
        return tuple(stop for direction in self.directions for stop in direction.stops)

    def sign(self, sign_id: str) -> tuple[Stop, SignSpec] | None:
        """The sign with this id and the stop it serves, or None (the one sign lookup)."""
        for stop in self.all_stops():
            for spec in stop.signs:
                if spec.id == sign_id:
                    return stop, spec
        return None


class DeviceKind(StrEnum):
    """The two kinds of roadside devices."""

    TERMINAL = "terminal"
    SIGN = "sign"


@dataclass(frozen=True, slots=True)
class DevicePlace:
    """Where a device sits: its line and stop."""

    line_id: LineId
    stop_id: StopId
    kind: DeviceKind


@dataclass(frozen=True, slots=True)
class Network:
    """Every line of the file, with device lookups."""

    lines: tuple[Line, ...]
    _lines: dict[LineId, Line] = field(default_factory=dict, init=False, repr=False, compare=False)
    _devices: dict[tuple[DeviceKind, str], DevicePlace] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        for line in self.lines:
            self._lines[line.id] = line
            for stop in line.all_stops():
                if stop.terminal is not None:
                    place = DevicePlace(line.id, stop.id, DeviceKind.TERMINAL)
                    self._devices[(DeviceKind.TERMINAL, stop.terminal)] = place
                for sign in stop.signs:
                    self._devices[(DeviceKind.SIGN, sign.id)] = DevicePlace(
                        line.id, stop.id, DeviceKind.SIGN
                    )

    def line(self, line_id: LineId) -> Line | None:
        """The line with this id, or None."""
        return self._lines.get(line_id)

    def device(self, kind: DeviceKind, device_id: str) -> DevicePlace | None:
        """Where a configured device sits, or None for a device absent from the file."""
        return self._devices.get((kind, device_id))

    def devices(self) -> dict[tuple[DeviceKind, str], DevicePlace]:
        """Every configured device."""
        return dict(self._devices)

    def stop_by_code(self, code: str) -> tuple[Line, Stop] | None:
        """The stop printed with this code (case-insensitive), or None."""
        wanted = code.strip().upper()
        for line in self.lines:
            for stop in line.all_stops():
                if stop.code.upper() == wanted:
                    return line, stop
        return None
