"""Pure: a study corridor as the dispatcher core's `Line` (one sign per stop, fallback on)."""

from __future__ import annotations

from datetime import timedelta

from dispatcher.model import (
    Direction,
    DirectionId,
    Line,
    LineId,
    LineTuning,
    Network,
    SignId,
    SignSpec,
    Stop,
    StopId,
)
from line_service.planning.scenario import CorridorSpec, StopSpec
from line_service.planning.service_days import service_hours

SIGN_UPSTREAM_M = 200


def direction_stops(corridor: CorridorSpec, reverse: bool) -> tuple[StopSpec, ...]:
    """The stops of one way in travel order; the reverse mirrors the main way unless given."""
    if not reverse:
        return corridor.stops
    if corridor.reverse is not None and corridor.reverse.stops is not None:
        return corridor.reverse.stops
    end = corridor.stops[-1].km
    return tuple(
        stop.model_copy(update={"id": f"{stop.id}-retour", "km": round(end - stop.km, 3)})
        for stop in reversed(corridor.stops)
    )


def _core_stop(spec: StopSpec, index: int) -> Stop:
    return Stop(
        id=StopId(spec.id),
        name=spec.name,
        code=f"P{index:03d}",
        lat=spec.lat if spec.lat is not None else 0.0,
        lon=spec.lon if spec.lon is not None else 0.0,
        km=spec.km,
        terminal=None,
        signs=(SignSpec(id=SignId(f"pmv-{spec.id}"), distance_upstream_m=SIGN_UPSTREAM_M),),
    )


def corridor_line(corridor: CorridorSpec) -> Line:
    """The core line of a corridor: its way, and its reverse when the scenario has one."""
    ways = [False] if corridor.reverse is None else [False, True]
    directions: list[Direction] = []
    index = 0
    for reverse in ways:
        stops: list[Stop] = []
        for spec in direction_stops(corridor, reverse):
            stops.append(_core_stop(spec, index))
            index += 1
        last = stops[-1].name
        name = corridor.reverse.name if reverse and corridor.reverse else None
        directions.append(
            Direction(
                id=DirectionId("retour" if reverse else "aller"),
                name=name or last,
                stops=tuple(stops),
            )
        )
    return Line(
        id=LineId(corridor.id),
        name=corridor.name,
        timezone=corridor.timezone,
        directions=tuple(directions),
        service_hours=service_hours(corridor.service_hours),
        tuning=LineTuning(wait_guarantee=timedelta(minutes=corridor.wait_guarantee_minutes)),
        has_fallback=True,
    )


def corridor_network(corridor: CorridorSpec) -> Network:
    """A network of the one line (corridors are simulated independently)."""
    return Network(lines=(corridor_line(corridor),))
