"""Pure: the study's figures per corridor, and the regional ranking, from the simulated runs."""

from __future__ import annotations

import math
from typing import Any

from line_service.planning import economics
from line_service.planning.rates import hourly_rates
from line_service.planning.scenario import CorridorSpec, Scenario
from line_service.planning.simulation import EXPIRED, FALLBACK, PICKED_UP, CorridorRun

MONTHS_PER_YEAR = 12


def percentile(values: list[float], share: float) -> float:
    """The `share` quantile (0-1) by linear interpolation between order statistics."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = share * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def _number(value: float | None, digits: int = 2) -> float | None:
    """JSON-friendly: None for missing or not-a-number figures."""
    return None if value is None or math.isnan(value) else round(value, digits)


def by_hour(run: CorridorRun) -> dict[str, dict[str, float | None]]:
    """Per local hour: requests, mean and p90 wait, fallback share, passing traffic."""
    table: dict[str, dict[str, float | None]] = {}
    for hour in sorted(set(run.hours)):
        index = [i for i, h in enumerate(run.hours) if h == hour]
        waits = [run.waits[i] for i in index]
        taxis = sum(1 for i in index if run.outcomes[i] == FALLBACK)
        table[str(hour)] = {
            "requests": len(index),
            "mean_wait_minutes": _number(_mean(waits)),
            "p90_wait_minutes": _number(percentile(waits, 0.9)),
            "fallback_share": _number(taxis / len(index), 4),
            "traffic_per_hour": _number(_mean([run.traffic[i] for i in index]), 0),
        }
    return table


def corridor_summary(
    corridor: CorridorSpec, run: CorridorRun, service_days_per_year: int
) -> dict[str, Any]:
    """Every figure the study reports for one corridor (waits over all accepted requests)."""
    requests = len(run.outcomes)
    days = max(run.days, 1)
    trips = sum(1 for outcome in run.outcomes if outcome == PICKED_UP)
    taxis = sum(1 for outcome in run.outcomes if outcome == FALLBACK)
    expired = sum(1 for outcome in run.outcomes if outcome == EXPIRED)
    carpool_km = sum(km for km, o in zip(run.trip_km, run.outcomes, strict=True) if o == PICKED_UP)
    scale = service_days_per_year / days
    spent = economics.money(corridor, trips * scale, taxis * scale)
    peak = max((hourly_rates(corridor, hour).drivers_per_hour for hour in range(24)), default=0.0)
    return {
        "id": corridor.id,
        "name": corridor.name,
        "number": corridor.number,
        "department": corridor.department,
        "roads": list(corridor.roads),
        "epcis": list(corridor.epcis),
        "epcis_crossed": corridor.epcis_crossed,
        "length_km": round(corridor.length_km, 1),
        "peak_traffic_per_hour": round(peak),
        "wait_guarantee_minutes": corridor.wait_guarantee_minutes,
        "days": run.days,
        "requests": requests,
        "refused": run.refused,
        "mean_wait_minutes": _number(_mean(run.waits)),
        "p50_wait_minutes": _number(percentile(run.waits, 0.5)),
        "p90_wait_minutes": _number(percentile(run.waits, 0.9)),
        "fallback_share": _number(taxis / requests if requests else math.nan, 4),
        "expired_share": _number(expired / requests if requests else math.nan, 4),
        "trips_per_day": round(trips / days, 2),
        "trips_per_month": round(trips * scale / MONTHS_PER_YEAR, 1),
        "fallbacks_per_month": round(taxis * scale / MONTHS_PER_YEAR, 1),
        "cost_per_trip_eur": _number(spent.cost_per_trip_eur),
        "co2_avoided_kg": round(economics.co2_avoided_kg(corridor, carpool_km * scale), 1),
        "investment_eur": round(spent.investment_eur, 2),
        "operation_eur": round(spent.operation_eur, 2),
        "experiment_years": spent.years,
        "phase_costs": economics.phase_costs(corridor, spent),
        "funding": economics.funding(corridor, spent),
        "by_hour": by_hour(run),
    }


def ranking(corridors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Cheapest trip first; corridors without trips last; ties by more trips a month."""

    def key(item: dict[str, Any]) -> tuple[float, float]:
        cost = item["cost_per_trip_eur"]
        return (math.inf if cost is None else cost, -item["trips_per_month"])

    ordered = sorted(corridors, key=key)
    return [
        {
            "rank": rank,
            "id": item["id"],
            "name": item["name"],
            "cost_per_trip_eur": item["cost_per_trip_eur"],
            "trips_per_month": item["trips_per_month"],
            "mean_wait_minutes": item["mean_wait_minutes"],
            "fallback_share": item["fallback_share"],
        }
        for rank, item in enumerate(ordered, start=1)
    ]


def study_summary(scenario: Scenario, runs: list[CorridorRun], days: int, seed: int) -> Any:
    """The whole `summary.json` document."""
    runs_by_id = {run.corridor_id: run for run in runs}
    corridors = [
        corridor_summary(corridor, runs_by_id[corridor.id], scenario.service_days_per_year)
        for corridor in scenario.corridors
        if corridor.id in runs_by_id
    ]
    return {
        "title": scenario.title,
        "region": scenario.region,
        "days": days,
        "seed": seed,
        "service_days_per_year": scenario.service_days_per_year,
        "corridors": corridors,
        "ranking": ranking(corridors),
    }
