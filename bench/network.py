"""Shell: a synthetic network for the benchmark — many lines, a terminal and signs at each stop."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

STOPS_PER_LINE = 50  # boarding stops; each line also has a final stop without devices


@dataclass(frozen=True, slots=True)
class BenchStop:
    """One boarding stop: its terminal and the signs upstream of it."""

    line_id: str
    stop_id: str
    terminal_id: str
    sign_ids: tuple[str, ...]
    destination_id: str


@dataclass(frozen=True, slots=True)
class BenchNetwork:
    """Every boarding stop of the synthetic network, in a fixed order."""

    stops: tuple[BenchStop, ...]
    signs_per_stop: int

    @property
    def devices(self) -> int:
        """Terminals plus signs."""
        return len(self.stops) * (1 + self.signs_per_stop)

    def device_ids(self) -> list[tuple[str, str, str]]:
        """(line, "terminals"|"signs", device id) for every device."""
        found: list[tuple[str, str, str]] = []
        for stop in self.stops:
            found.append((stop.line_id, "terminals", stop.terminal_id))
            found.extend((stop.line_id, "signs", sign) for sign in stop.sign_ids)
        return found


def build(
    devices: int, signs_per_stop: int = 2, stops_per_line: int = STOPS_PER_LINE
) -> BenchNetwork:
    """A network with about `devices` devices (a terminal and `signs_per_stop` signs a stop),
    `stops_per_line` boarding stops a line (the last line may have fewer)."""
    stop_count = max(2, round(devices / (1 + signs_per_stop)))
    stops: list[BenchStop] = []
    lines = -(-stop_count // stops_per_line)
    for index in range(stop_count):
        line, position = divmod(index, stops_per_line)
        line_id = f"bench-{line:03d}"
        stop_id = f"l{line:03d}-s{position:02d}"
        stops.append(
            BenchStop(
                line_id=line_id,
                stop_id=stop_id,
                terminal_id=f"t-{stop_id}",
                sign_ids=tuple(f"pmv-{stop_id}-{k}" for k in range(signs_per_stop)),
                destination_id=f"l{line:03d}-end",
            )
        )
    assert lines == len({stop.line_id for stop in stops})
    return BenchNetwork(tuple(stops), signs_per_stop)


def write_lines_file(network: BenchNetwork, path: Path, max_waiting_per_stop: int = 100) -> Path:
    """Write the network as a lines.yaml (always open, generous limits)."""
    by_line: dict[str, list[BenchStop]] = {}
    for stop in network.stops:
        by_line.setdefault(stop.line_id, []).append(stop)
    lines: list[dict[str, Any]] = []
    for number, (line_id, stops) in enumerate(by_line.items()):
        entries: list[dict[str, Any]] = [
            {
                "id": stop.stop_id,
                "name": f"Arret {position}",
                "code": f"B{number:03d}{position:02d}",
                "lat": 50.0 + position / 1000,
                "lon": 2.0 + number / 1000,
                "terminal": stop.terminal_id,
                "signs": [{"id": sign, "distance_upstream_m": 250} for sign in stop.sign_ids],
            }
            for position, stop in enumerate(stops)
        ]
        entries.append(
            {
                "id": stops[0].destination_id,
                "name": f"Terminus {number}",
                "code": f"E{number:03d}",
                "lat": 50.5,
                "lon": 2.0 + number / 1000,
            }
        )
        lines.append(
            {
                "id": line_id,
                "name": f"Bench line {number}",
                "timezone": "Europe/Paris",
                "tuning": {"max_waiting_per_stop": max_waiting_per_stop, "max_wait_minutes": 240},
                "directions": [{"id": "outbound", "name": "Terminus", "stops": entries}],
            }
        )
    path.write_text(yaml.safe_dump({"lines": lines}, sort_keys=False))
    return path
