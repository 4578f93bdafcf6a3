"""Pure: a discrete-event simulation of one corridor's service days, driving the real core.

Theory of operation
-------------------
A heap of timed events and a simulated clock (minutes since the day's local midnight) feed
`dispatcher.step.step`. Riders arrive Poisson by hour at every boarding stop and ask, through
the core, for a ride to the last stop of their way (`RideRequested`). The core decides: it refuses
out of service hours or at a full stop, lights the stop's signs (`ShowOnSign`) and arms the wait
guarantee (`ArmDeadline`). While a stop's signs are lit, drivers pass it Poisson at the hour's
traffic and each stops with the hour's share; since a Poisson stream thinned at random is Poisson,
only the stopping drivers are drawn (rate traffic × share, piecewise constant by hour). A stopping
driver takes the oldest waiting rider and sends the code (`CodeValidated`): every driver is
assumed to drive to the end of the corridor, so any lit destination suits. A deadline that fires
(`DeadlineReached`, unless `DisarmDeadline` came first) makes the core dispatch the taxi.
Each day starts from an empty core state: requests never outlive a service day.

Same `random.Random` seed → same events → same results.
"""

from __future__ import annotations

import heapq
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from dispatcher.effects import (
    ArmDeadline,
    DisarmDeadline,
    DispatchFallback,
    Effect,
    SaveRequest,
    ShowOnSign,
)
from dispatcher.events import CodeValidated, DeadlineReached, Event, RideRequested
from dispatcher.model import DeviceKind, Line, RequestId, StopId, Weekday
from dispatcher.request_machine import Channel, RequestState, Source
from dispatcher.state import DispatcherState
from dispatcher.step import step
from line_service.planning.line_build import corridor_network
from line_service.planning.rates import hourly_rates
from line_service.planning.scenario import CorridorSpec
from line_service.planning.service_days import open_minutes_by_hour

PICKED_UP, FALLBACK, EXPIRED = 0, 1, 2
_ARRIVAL, _DEADLINE, _DRIVER = 0, 1, 2
_DAY_MINUTES = 24 * 60


@dataclass(slots=True)
class CorridorRun:
    """What happened to every accepted request of a corridor (parallel lists), and refusals."""

    corridor_id: str
    days: int
    waits: list[float] = field(default_factory=list)  # minutes until pickup or taxi dispatch
    hours: list[int] = field(default_factory=list)  # local hour the rider asked
    outcomes: list[int] = field(default_factory=list)  # PICKED_UP, FALLBACK or EXPIRED
    trip_km: list[float] = field(default_factory=list)
    traffic: list[float] = field(default_factory=list)  # vehicles/h passing when the rider asked
    refused: int = 0


@dataclass(slots=True)
class _Waiting:
    code: str
    stop_id: StopId
    asked_at: float
    hour: int
    km: float


@dataclass(slots=True)
class _Day:
    """One service day's mutable bookkeeping: the heap, what is lit, who waits where."""

    start: datetime
    heap: list[tuple[float, int, int, str, int]] = field(default_factory=list)
    seq: int = 0
    lit: dict[StopId, int] = field(default_factory=dict)  # stop → generation of its driver
    waiting: dict[RequestId, _Waiting] = field(default_factory=dict)
    by_stop: dict[StopId, list[RequestId]] = field(default_factory=dict)
    disarmed: set[RequestId] = field(default_factory=set)

    def push(self, at: float, kind: int, name: str, number: int = 0) -> None:
        self.seq += 1
        heapq.heappush(self.heap, (at, self.seq, kind, name, number))


class CorridorSimulator:
    """Simulates service days of one corridor; call `run(days)` once."""

    def __init__(self, corridor: CorridorSpec, seed: int, start: date) -> None:
        self.corridor = corridor
        self.network = corridor_network(corridor)
        self.line: Line = self.network.lines[0]
        self.rng = random.Random(f"{seed}:{corridor.id}")
        self.start = start
        self.zone = ZoneInfo(corridor.timezone)
        ways = [False] if corridor.reverse is None else [False, True]
        self.ways = [
            (direction, [hourly_rates(corridor, hour, reverse=way) for hour in range(24)])
            for direction, way in zip(self.line.directions, ways, strict=True)
        ]
        # Stopping drivers per minute at a lit stop, by hour, for the way each stop belongs to.
        self.stop_rate: dict[StopId, list[float]] = {}
        self.stop_km: dict[StopId, float] = {}
        self.stop_traffic: dict[StopId, list[float]] = {}
        for direction, rates in self.ways:
            for stop in direction.stops:
                self.stop_rate[stop.id] = [r.stopping_drivers_per_hour / 60 for r in rates]
                self.stop_km[stop.id] = stop.km
                self.stop_traffic[stop.id] = [r.drivers_per_hour for r in rates]
        self.sign_stop = {
            sign_id: place.stop_id
            for (kind, sign_id), place in self.network.devices().items()
            if kind is DeviceKind.SIGN
        }
        self.result = CorridorRun(corridor_id=corridor.id, days=0)

    def service_dates(self, days: int) -> list[date]:
        """The first `days` dates from the start on which the line opens at all."""
        found: list[date] = []
        day = self.start
        while len(found) < days:
            weekday = tuple(Weekday)[day.weekday()]
            if open_minutes_by_hour(self.line.service_hours, weekday):
                found.append(day)
            day += timedelta(days=1)
            if (day - self.start).days > 7 * days + 7:
                break  # a line never open: no service day exists
        return found

    def run(self, days: int) -> CorridorRun:
        """Simulate `days` service days; the result accumulates over calls."""
        for day in self.service_dates(days):
            self._simulate_day(day)
            self.result.days += 1
        return self.result

    # --- one day ---------------------------------------------------------------------------

    def _simulate_day(self, day: date) -> None:
        local_midnight = datetime(day.year, day.month, day.day, tzinfo=self.zone)
        today = _Day(start=local_midnight.astimezone(UTC))
        self._draw_riders(today)
        state = DispatcherState(network=self.network)
        count = 0
        while today.heap:
            at, _, kind, name, number = heapq.heappop(today.heap)
            event: Event
            if kind == _ARRIVAL:
                count += 1
                event = RideRequested(
                    request_id=RequestId(f"r{count}"),
                    line_id=self.line.id,
                    stop_id=StopId(name),
                    destination_id=StopId(self._last_stop(StopId(name))),
                    seats=1,
                    source=Source(Channel.API, f"r{count}"),
                    code_candidate=f"{self.rng.randrange(10_000):04d}",
                )
            elif kind == _DEADLINE:
                if name in today.disarmed:
                    continue
                event = DeadlineReached(request_id=RequestId(name))
            else:
                stop = StopId(name)
                if today.lit.get(stop) != number or not today.by_stop.get(stop):
                    continue  # the sign went dark since this driver was drawn
                oldest = today.waiting[today.by_stop[stop][0]]
                event = CodeValidated(line_id=self.line.id, code=oldest.code, driver_ref="sim")
            state, effects = step(state, event, today.start + timedelta(minutes=at))
            self._apply(today, effects, at)
            if kind == _DRIVER and today.by_stop.get(StopId(name)):
                self._next_driver(today, StopId(name), at)

    def _last_stop(self, stop_id: StopId) -> StopId:
        return self.line.destinations_from(stop_id)[-1].id

    def _draw_riders(self, today: _Day) -> None:
        for direction, rates in self.ways:
            for stop in direction.stops[:-1]:
                for hour, rate in enumerate(rates):
                    per_minute = rate.riders_per_stop_per_hour / 60
                    if per_minute <= 0:
                        continue
                    at = hour * 60 + self.rng.expovariate(per_minute)
                    while at < hour * 60 + 60:
                        today.push(at, _ARRIVAL, stop.id)
                        at += self.rng.expovariate(per_minute)

    def _next_driver(self, today: _Day, stop: StopId, now: float) -> None:
        """Draw when the next stopping driver passes `stop` (piecewise Poisson by hour)."""
        rates = self.stop_rate[stop]
        at = now
        while at < _DAY_MINUTES:
            hour = int(at // 60)
            end = hour * 60 + 60
            if rates[hour] > 0:
                candidate = at + self.rng.expovariate(rates[hour])
                if candidate < end:
                    today.push(candidate, _DRIVER, stop, today.lit[stop])
                    return
            at = end

    def _apply(self, today: _Day, effects: list[Effect], now: float) -> None:
        """Do what the core asks, as far as the simulation is concerned."""
        for effect in effects:
            match effect:
                case SaveRequest(request=request, previous_state=None):
                    if request.state is RequestState.REFUSED:
                        self.result.refused += 1
                    elif request.code is not None:
                        km = self.stop_km[request.destination_id] - self.stop_km[request.stop_id]
                        today.waiting[request.id] = _Waiting(
                            request.code, request.stop_id, now, int(now // 60) % 24, km
                        )
                        today.by_stop.setdefault(request.stop_id, []).append(request.id)
                case SaveRequest(request=request):
                    self._finished(today, request.id, request.state, now)
                case ArmDeadline(request_id=request_id, at=at):
                    today.push((at - today.start).total_seconds() / 60, _DEADLINE, request_id)
                case DisarmDeadline(request_id=request_id):
                    today.disarmed.add(request_id)
                case ShowOnSign(sign_id=sign_id, display=display):
                    self._sign_changed(today, self.sign_stop[sign_id], bool(display.pages), now)
                case DispatchFallback():
                    pass  # counted from the request's FALLBACK state
                case _:
                    pass  # screens, notifications: nothing to simulate

    def _finished(
        self, today: _Day, request_id: RequestId, state: RequestState, now: float
    ) -> None:
        waiting = today.waiting.pop(request_id, None)
        if waiting is None:
            return  # e.g. a taxi rider's late validation: already counted
        today.by_stop[waiting.stop_id].remove(request_id)
        outcome = {RequestState.PICKED_UP: PICKED_UP, RequestState.FALLBACK: FALLBACK}
        self.result.waits.append(now - waiting.asked_at)
        self.result.hours.append(waiting.hour)
        self.result.outcomes.append(outcome.get(state, EXPIRED))
        self.result.trip_km.append(waiting.km)
        self.result.traffic.append(self.stop_traffic[waiting.stop_id][waiting.hour])

    def _sign_changed(self, today: _Day, stop: StopId, lit: bool, now: float) -> None:
        was_lit = stop in today.lit
        if lit and not was_lit:
            today.lit[stop] = today.seq + 1  # any fresh number invalidates older drivers
            self._next_driver(today, stop, now)
        elif not lit and was_lit:
            del today.lit[stop]


def simulate_corridor(corridor: CorridorSpec, days: int, seed: int, start: date) -> CorridorRun:
    """Simulate `days` service days of `corridor` from `start` (deterministic for a seed)."""
    return CorridorSimulator(corridor, seed, start).run(days)
