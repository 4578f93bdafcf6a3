"""Pure: the model's rates — riders asking and drivers passing, stopping, per corridor and hour.

The share of passing drivers who stop for a lit sign falls with traffic, as a power law:

    share(q) = min(SHARE_CAP, SHARE_AT_ANCHOR · (q / ANCHOR_TRAFFIC) ** -SHARE_EXPONENT)

for q passing vehicles an hour in the rider's direction. Calibration (see docs/PLANNING.md):
- a small local road (~20 vehicles/h) gives 1 driver in 2, and so a stopping rate of ~10/h, a
  mean wait of 6 min and 90 % of waits under 15 min, as in the hitchhiking tests (200+ tests);
- on one road, ~190 vehicles/h give 1 in 15 and ~760 vehicles/h (peak) 1 in 50;
- a busy road (≥ 800 vehicles/h) gives 1 in 50 or fewer, a mean wait near 3.5 min (Lane: < 4).
The exponent is below 1, so more traffic always means more stopping drivers (shorter waits).
"""

from __future__ import annotations

from dataclasses import dataclass

from line_service.planning.scenario import CorridorSpec, DirectionFlows

ANCHOR_TRAFFIC = 20.0
SHARE_AT_ANCHOR = 0.5
SHARE_EXPONENT = 0.85
SHARE_CAP = 0.5


@dataclass(frozen=True, slots=True)
class HourlyRates:
    """Rates of one direction of a corridor during one local hour (all per hour)."""

    riders_per_hour: float  # riders asking, all boarding stops together
    riders_per_stop_per_hour: float  # the same spread evenly over the boarding stops
    drivers_per_hour: float  # vehicles passing each stop
    stop_share: float  # share of passing drivers who stop for a lit sign
    stopping_drivers_per_hour: float  # drivers_per_hour × stop_share, at a lit stop


def default_stop_share(vehicles_per_hour: float, awareness: float = 1.0) -> float:
    """The calibrated share of passing drivers who stop for a lit sign (0 when no traffic).

    `awareness` scales it (1 = a line known locally, after its first year; below 1 at launch).
    """
    if vehicles_per_hour <= 0:
        return 0.0
    share: float = SHARE_AT_ANCHOR * (vehicles_per_hour / ANCHOR_TRAFFIC) ** -SHARE_EXPONENT
    return min(1.0, min(SHARE_CAP, share) * awareness)


def hourly_rates(corridor: CorridorSpec, hour: int, *, reverse: bool = False) -> HourlyRates:
    """Riders and drivers of `corridor` at local `hour` (0-23), in its main or `reverse` way.

    Raises ValueError for a reverse way the corridor does not have. Hours missing from the
    scenario have no traffic and no riders.
    """
    if not 0 <= hour <= 23:
        raise ValueError(f"hour {hour} is not 0-23")
    flows: CorridorSpec | DirectionFlows = corridor
    if reverse:
        if corridor.reverse is None:
            raise ValueError(f"corridor {corridor.id!r} has no reverse direction")
        flows = corridor.reverse
    boarding = len(flows.stops or corridor.stops) - 1
    riders = flows.riders_per_hour.get(hour, 0.0)
    traffic = flows.traffic_per_hour.get(hour, 0.0)
    if traffic <= 0:
        share = 0.0
    elif flows.stop_share is not None:
        share = flows.stop_share
    else:
        share = default_stop_share(traffic, corridor.awareness)
    return HourlyRates(
        riders_per_hour=riders,
        riders_per_stop_per_hour=riders / boarding,
        drivers_per_hour=traffic,
        stop_share=share,
        stopping_drivers_per_hour=traffic * share,
    )


@dataclass(frozen=True, slots=True)
class DemoTraffic:
    """What the study's model says of a corridor, shaped for the demo's simulated people."""

    riders_per_hour_off_peak: float  # both ways together, over the quietest served hour
    riders_per_hour_peak: float  # both ways together, over the busiest hour
    stopping_drivers_per_hour: float  # at a lit stop, mean over the hours riders ask


def demo_traffic(corridor: CorridorSpec) -> DemoTraffic:
    """The corridor's rider demand and stopping drivers, for `make run`'s simulated traffic.

    Raises ValueError when the corridor has no hour with riders.
    """
    ways = [False, True] if corridor.reverse is not None else [False]
    riders = {
        hour: sum(hourly_rates(corridor, hour, reverse=way).riders_per_hour for way in ways)
        for hour in range(24)
    }
    served = [hour for hour, count in riders.items() if count > 0]
    if not served:
        raise ValueError(f"corridor {corridor.id!r} has no hour with riders")
    stopping = [
        hourly_rates(corridor, hour, reverse=way).stopping_drivers_per_hour
        for hour in served
        for way in ways
    ]
    return DemoTraffic(
        riders_per_hour_off_peak=min(riders[hour] for hour in served),
        riders_per_hour_peak=max(riders.values()),
        stopping_drivers_per_hour=sum(stopping) / len(stopping),
    )
