"""Pure: what a lines file lost against the riders who wait — stops, lines, destinations and
terminals named by waiting requests that the file no longer has.

A rider restored at a stop the file dropped would wait forever: no sign, no terminal, no
deadline anyone acts on. `serve` refuses to start over such riders and `check-config
--database` lists them, so the edit is fixed (or the riders ended) before it takes effect.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from dispatcher.model import Network
from dispatcher.request_machine import RideRequest


@dataclass(frozen=True, kw_only=True)
class Orphans:
    """Waiting riders held by something the lines file no longer has."""

    kind: str  # "line", "stop", "destination" or "terminal"
    line_id: str
    name: str  # the line's, stop's or terminal's id
    waiting: int

    def __str__(self) -> str:
        riders = f"{self.waiting} waiting rider{'s' if self.waiting != 1 else ''}"
        if self.kind == "line":
            return f"line {self.name} is gone from the lines file but {riders} on it"
        where = f"{self.kind} {self.name} of line {self.line_id}"
        return f"{where} is gone from the lines file but {riders} there"


def lost_place(network: Network, request: RideRequest) -> tuple[str, str, str] | None:
    """What of `network` a waiting (or announced) request needs and misses — (kind, line id,
    name) — or None."""
    if not request.is_live:
        return None
    line = network.line(request.line_id)
    if line is None:
        return ("line", request.line_id, request.line_id)
    stop = line.stop(request.stop_id)
    if stop is None:
        return ("stop", line.id, request.stop_id)
    if all(place.id != request.destination_id for place in line.destinations_from(stop.id)):
        return ("destination", line.id, request.destination_id)
    if request.terminal_id is not None and stop.terminal != request.terminal_id:
        return ("terminal", line.id, request.terminal_id)
    return None


def orphans(network: Network, requests: list[RideRequest]) -> list[Orphans]:
    """Every line, stop, destination or terminal missing from `network` that a waiting request
    names, with how many riders wait on it (most first)."""
    counted = Counter(
        place for request in requests if (place := lost_place(network, request)) is not None
    )
    return [
        Orphans(kind=kind, line_id=line_id, name=name, waiting=waiting)
        for (kind, line_id, name), waiting in counted.most_common()
    ]


class LostRidersError(Exception):
    """Riders wait on what the lines file no longer has: the service does not start over them."""

    def __init__(self, lost: list[Orphans]) -> None:
        self.lost = lost
        super().__init__("; ".join(str(orphan) for orphan in lost))
