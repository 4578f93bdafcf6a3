"""Pure: a rider's expected wait at a stop, from the line's own history or the study's model.

An estimate is for one stop × destination at one local hour of one weekday. It is read from the
waits of recent riders (median and 90th percentile), at the narrowest level that holds enough
of them (`EstimateRules.floor`):

1. the same stop, destination, hour and weekday;
2. the same stop, destination and hour, any weekday;
3. the same stop and destination, any hour.

With fewer observations than the floor at every level, the planning model's figure is used
(its mean wait at that hour: 60 / stopping drivers per hour); without a model figure, there is
no estimate. Each estimate says which source it came from.

Waits of the model: stopping drivers arrive at random (Poisson), so waits are exponential with
the model's mean m: median m·ln 2, 90th percentile m·ln 10. Every figure is capped at the wait
guarantee when the line has one (the taxi is called then: no wait lasts longer).

A driver who announced a trip ("Je passe") passing the stop towards the destination is told to
the rider when it comes within the expected wait (or there is no estimate):
`announced_driver_minutes`, with the time until it passes given in.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from dispatcher.model import StopId


class EstimateSource(StrEnum):
    """Where an estimate comes from, narrowest first."""

    HISTORY = "history"  # stop × destination × hour × weekday
    HISTORY_ANY_WEEKDAY = "history_any_weekday"  # stop × destination × hour
    HISTORY_ANY_HOUR = "history_any_hour"  # stop × destination
    MODEL = "model"  # the covoiturabilité study's model (config/corridors.yaml)


@dataclass(frozen=True, slots=True)
class EstimateRules:
    """How much history counts and how much is enough."""

    window: timedelta = timedelta(weeks=8)  # requests asked within this time before now
    floor: int = 10  # fewest observations an estimate may rest on


@dataclass(frozen=True, slots=True)
class WaitObservation:
    """One past wait, placed in the line's local week."""

    stop_id: StopId
    destination_id: StopId
    weekday: int  # 0 = Monday, as datetime.weekday()
    hour: int  # local hour, 0-23
    wait: timedelta


@dataclass(frozen=True, slots=True)
class WaitEstimate:
    """The wait to expect and what it rests on (`observations` = 0 for the model)."""

    median: timedelta
    p90: timedelta
    source: EstimateSource
    observations: int


def observations_of(
    rows: Iterable[tuple[StopId, StopId, datetime, datetime]], timezone: str
) -> list[WaitObservation]:
    """Stored waits (stop, destination, asked at, left waiting at) in the line's local week."""
    zone = ZoneInfo(timezone)
    found = []
    for stop_id, destination_id, asked_at, left_at in rows:
        local = asked_at.astimezone(zone)
        wait = left_at - asked_at
        found.append(WaitObservation(stop_id, destination_id, local.weekday(), local.hour, wait))
    return found


def nearest_rank(values: Sequence[float], share: float) -> float:
    """The smallest value not exceeded by `share` of the values (nearest-rank percentile)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def estimate_wait(
    history: Iterable[WaitObservation],
    stop_id: StopId,
    destination_id: StopId,
    weekday: int,
    hour: int,
    *,
    model_mean: timedelta | None,
    guarantee: timedelta | None,
    rules: EstimateRules = EstimateRules(),
) -> WaitEstimate | None:
    """The wait at `stop_id` towards `destination_id` at local `hour` of `weekday`."""
    pair = [o for o in history if o.stop_id == stop_id and o.destination_id == destination_id]
    levels = (
        (EstimateSource.HISTORY, [o for o in pair if o.hour == hour and o.weekday == weekday]),
        (EstimateSource.HISTORY_ANY_WEEKDAY, [o for o in pair if o.hour == hour]),
        (EstimateSource.HISTORY_ANY_HOUR, pair),
    )
    for source, chosen in levels:
        if len(chosen) >= rules.floor:
            seconds = [o.wait.total_seconds() for o in chosen]
            return WaitEstimate(
                median=_capped(timedelta(seconds=statistics.median(seconds)), guarantee),
                p90=_capped(timedelta(seconds=nearest_rank(seconds, 0.9)), guarantee),
                source=source,
                observations=len(chosen),
            )
    if model_mean is None:
        return None
    return WaitEstimate(
        median=_capped(model_mean * math.log(2), guarantee),
        p90=_capped(model_mean * math.log(10), guarantee),
        source=EstimateSource.MODEL,
        observations=0,
    )


def model_mean_wait(stopping_drivers_per_hour: float) -> timedelta | None:
    """The model's mean wait: 60 / stopping drivers per hour minutes (None without drivers)."""
    if stopping_drivers_per_hour <= 0:
        return None
    return timedelta(minutes=60 / stopping_drivers_per_hour)


def _capped(wait: timedelta, guarantee: timedelta | None) -> timedelta:
    return wait if guarantee is None else min(wait, guarantee)


def whole_minutes(wait: timedelta) -> int:
    """A wait as shown to riders: whole minutes, rounded, at least 1."""
    return max(1, round(wait.total_seconds() / 60))


def announced_driver_minutes(
    estimate: WaitEstimate | None, driver_in: timedelta | None
) -> int | None:
    """The whole minutes until an announced driver passes, when worth telling a waiting rider:
    the driver comes within the expected wait (its median), or there is no estimate."""
    if driver_in is None or driver_in < timedelta():
        return None
    if estimate is not None and driver_in > estimate.median:
        return None
    return whole_minutes(driver_in)
