"""Scenario builders shared by the planning tests."""

from __future__ import annotations

from datetime import date
from typing import Any

from line_service.planning.scenario import CorridorSpec, Scenario, parse_scenario

START = date(2026, 1, 5)
PEAKS = {"mon-fri": ["06:30-09:30", "16:00-19:30"]}


def corridor_data(
    traffic: float | dict[int, float],
    riders: float | dict[int, float],
    *,
    share: float | None = None,
    hours: dict[str, list[str]] | None = None,
    guarantee: float = 15.0,
    **extra: Any,
) -> dict[str, Any]:
    """A two-stop corridor (one boarding stop): constant rates unless given by hour."""
    data: dict[str, Any] = {
        "id": "test",
        "name": "Aville – Bville",
        "stops": [
            {"id": "aville", "name": "Aville", "km": 0},
            {"id": "bville", "name": "Bville", "km": 12},
        ],
        "traffic_per_hour": traffic
        if isinstance(traffic, dict)
        else dict.fromkeys(range(24), traffic),
        "riders_per_hour": riders if isinstance(riders, dict) else dict.fromkeys(range(24), riders),
        "wait_guarantee_minutes": guarantee,
        **extra,
    }
    if share is not None:
        data["stop_share"] = share
    if hours is not None:
        data["service_hours"] = hours
    return data


def corridor(*args: Any, **kwargs: Any) -> CorridorSpec:
    """A validated corridor (see `corridor_data`)."""
    return scenario([corridor_data(*args, **kwargs)]).corridors[0]


def scenario(corridors: list[dict[str, Any]], **top: Any) -> Scenario:
    """A validated scenario of these corridors."""
    return parse_scenario({"days": 5, "seed": 1, **top, "corridors": corridors})
