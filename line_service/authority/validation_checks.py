"""Pure: validations that look staged — held for an operator's review, unpaid and unexported.

The registry's own rules (under 1 km, a fifth trip a day, the same pair within 30 minutes) are
refusals: the registry would reject the journey anyway. These checks are suspicions about the
proof itself; a trip they flag waits for an operator (`trip_reviews`), who approves or rejects.

Thresholds, and why:
- `driver_impossible_speed`: the driver validated at a stop more than 2 km from their previous
  validation sooner than 130 km/h allows (the French motorway limit) as the crow flies. The
  straight line is shorter than any road, so a real driver's implied speed is well below it.
- `driver_many_stops_in_minutes`: one driver's validations at 3 or more different stops within
  15 minutes. A car run picks its riders up at one stop; a driver who must drop a rider before
  the next pickup cannot serve three stops of a line (stops are kilometres apart) that fast,
  whereas someone typing codes read off photos of terminals can.
- `validated_too_soon`: the code came back sooner after the request than a passing driver needs:
  from the nearest sign upstream to the stop at 50 km/h, plus 20 s to stop and hear the code;
  never less than 30 s. A car already at the stop when the rider asked did not answer a sign.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

FLAG_IMPOSSIBLE_SPEED = "driver_impossible_speed"
FLAG_MANY_STOPS = "driver_many_stops_in_minutes"
FLAG_TOO_SOON = "validated_too_soon"
HELD_FLAGS = frozenset({FLAG_IMPOSSIBLE_SPEED, FLAG_MANY_STOPS, FLAG_TOO_SOON})


@dataclass(frozen=True, slots=True)
class ReviewRules:
    """The thresholds above (defaults argued in the module's docstring)."""

    max_speed_kmh: float = 130.0
    speed_check_min_km: float = 2.0
    many_stops: int = 3
    many_stops_window: timedelta = timedelta(minutes=15)
    approach_speed_kmh: float = 50.0
    code_exchange: timedelta = timedelta(seconds=20)
    min_validation: timedelta = timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class Validation:
    """One validation by a driver: where (stop id, position) and when."""

    stop_id: str
    position: tuple[float, float] | None
    at: datetime


def earliest_validation(nearest_sign_m: int | None, rules: ReviewRules) -> timedelta:
    """How soon after the request a driver who saw a sign can validate at the earliest."""
    if nearest_sign_m is None:
        return rules.min_validation
    approach = timedelta(hours=nearest_sign_m / 1000 / rules.approach_speed_kmh)
    return max(rules.min_validation, approach + rules.code_exchange)


def held_flags(
    this: Validation,
    requested_at: datetime,
    nearest_sign_m: int | None,
    earlier: Sequence[Validation],
    distance_km: Callable[[tuple[float, float], tuple[float, float]], float],
    rules: ReviewRules | None = None,
) -> tuple[str, ...]:
    """The suspicions about this validation, given the same driver's earlier ones that day.

    `distance_km` is a function of two (lat, lon) positions (great-circle kilometres).
    """
    rules = rules or ReviewRules()
    flags: list[str] = []
    previous = [v for v in earlier if v.at <= this.at]
    for before in previous:
        if before.stop_id == this.stop_id or before.position is None or this.position is None:
            continue
        km = distance_km(before.position, this.position)
        hours = (this.at - before.at).total_seconds() / 3600
        if km > rules.speed_check_min_km and (hours <= 0 or km / hours > rules.max_speed_kmh):
            flags.append(FLAG_IMPOSSIBLE_SPEED)
            break
    recent = {v.stop_id for v in previous if this.at - v.at <= rules.many_stops_window}
    if len(recent | {this.stop_id}) >= rules.many_stops:
        flags.append(FLAG_MANY_STOPS)
    if this.at - requested_at < earliest_validation(nearest_sign_m, rules):
        flags.append(FLAG_TOO_SOON)
    return tuple(flags)
