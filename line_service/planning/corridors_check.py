"""Adapter: check a corridors file (the scenario format plus descriptive keys), every problem."""

from __future__ import annotations

from pathlib import Path

from line_service.planning.scenario import ScenarioError, load_scenario


def check_corridors(path: Path | str) -> list[str]:
    """Every problem of the file as `path.to[3].key: message`; an empty list when it is valid.

    Beyond the schema: every stop has a position, every corridor has traffic, riders, service
    hours and says where its traffic figures come from.
    """
    try:
        scenario = load_scenario(Path(path))
    except ScenarioError as exc:
        return list(exc.problems)
    problems: list[str] = []
    for index, corridor in enumerate(scenario.corridors):
        where = f"corridors[{index}]"
        for stop_index, stop in enumerate(corridor.stops):
            if stop.lat is None or stop.lon is None:
                problems.append(f"{where}.stops[{stop_index}]: lat and lon are required here")
        if not any(corridor.traffic_per_hour.values()):
            problems.append(f"{where}.traffic_per_hour: no traffic at any hour")
        if not any(corridor.riders_per_hour.values()):
            problems.append(f"{where}.riders_per_hour: no rider at any hour")
        if corridor.service_hours is None:
            problems.append(f"{where}.service_hours: required in a corridors file")
        if not corridor.traffic_source:
            problems.append(f"{where}.traffic_source: say where the traffic figures come from")
        if not corridor.department:
            problems.append(f"{where}.department: required in a corridors file")
    return problems
