"""Adapter: wait estimates for the service — the store's recent waits, the study's model.

The history of a line is read at most once per `refresh` (a query over the last weeks of
requests), so the API, the SMS replies and the GTFS export can ask as often as they like.
The model is the corridor of the line's id in `corridors.yaml` beside the lines file: the
line's first direction is the corridor's main way, its second the corridor's `reverse`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import structlog

from dispatcher.model import Line, LineId, Network, StopId
from line_service.estimates.wait_estimate import (
    EstimateRules,
    WaitEstimate,
    WaitObservation,
    estimate_wait,
    model_mean_wait,
    observations_of,
)
from line_service.planning.scenario import CorridorSpec

log = structlog.get_logger(__name__)

WaitRows = Callable[[str, datetime], list[tuple[StopId, StopId, datetime, datetime]]]
"""The store's `finished_waits(line_id, since)`."""


def load_corridors(corridors_file: Path) -> dict[str, CorridorSpec]:
    """The study's corridors by id; none (logged) when the file is missing or invalid."""
    from line_service.planning.scenario import load_scenario

    if not corridors_file.exists():
        return {}
    try:
        return {c.id: c for c in load_scenario(corridors_file).corridors}
    except Exception as exc:
        log.warning("estimates.no_model", file=str(corridors_file), reason=str(exc)[:200])
        return {}


@dataclass
class _Cached:
    read_at: datetime
    history: list[WaitObservation]


_Peeked = tuple[tuple[datetime, bool], WaitEstimate | None]
"""An estimate given by `peek_now`, with what it rests on (history read at, model read)."""


class WaitEstimator:
    """Estimates for every stop × destination of the network, history first."""

    def __init__(
        self,
        network: Network,
        waits: WaitRows,
        clock: Callable[[], datetime],
        corridors: Callable[[], dict[str, CorridorSpec]],
        rules: EstimateRules | None = None,
        refresh: timedelta = timedelta(minutes=5),
    ) -> None:
        self.network = network
        self.rules = rules or EstimateRules()
        self._waits = waits
        self._clock = clock
        self._load_corridors = corridors  # read on first need: the study file takes ~0.5 s
        self._corridors: dict[str, CorridorSpec] | None = None
        self._refresh = refresh
        self._cache: dict[LineId, _Cached] = {}
        self._peeked: dict[tuple[LineId, StopId, StopId, int, int], _Peeked] = {}
        self._lock = threading.Lock()

    def history(self, line: Line) -> list[WaitObservation]:
        """The line's recent waits (read again once `refresh` has passed).

        A database that fails keeps the last history read (none at first: the model answers)
        until the next refresh; estimates never fail with it.
        """
        now = self._clock()
        with self._lock:
            cached = self._cache.get(line.id)
            if cached is None or now - cached.read_at >= self._refresh:
                try:
                    rows = self._waits(line.id, now - self.rules.window)
                except Exception as exc:
                    log.warning("estimates.history_unavailable", line=line.id, error=str(exc)[:200])
                    cached = _Cached(now, cached.history if cached else [])
                else:
                    cached = _Cached(now, observations_of(rows, line.timezone))
                self._cache[line.id] = cached
            return cached.history

    def warm(self) -> None:
        """Read every line's history and the study's model now (blocking: run it in a thread),
        so that `peek_now` has figures to give."""
        for line in self.network.lines:
            self.warm_line(line)

    def warm_line(self, line: Line) -> None:
        """Read the line's history (if due) and the study's model (once), then work out this
        hour's figure of every stop × destination, so that `peek_now` finds them ready
        (20,000 waits of history: ~2 ms a pair, off the engine's loop); blocking."""
        self.history(line)
        self._corridors_read()
        for stop in line.all_stops():
            for destination in line.destinations_from(stop.id):
                self.peek_now(line, stop.id, destination.id)

    def history_is_stale(self, line: Line) -> bool:
        """True when `peek_now` would answer from no history, or one older than `refresh`."""
        cached = self._cache.get(line.id)
        return cached is None or self._clock() - cached.read_at >= self._refresh

    def peek_now(self, line: Line, stop_id: StopId, destination_id: StopId) -> WaitEstimate | None:
        """The wait to expect now from what was read already: no database, no file (the engine's
        loop may call it). None until `warm` or an estimate read the line's history once."""
        cached = self._cache.get(line.id)
        if cached is None:
            return None
        local = self._clock().astimezone(ZoneInfo(line.timezone))
        key = (line.id, stop_id, destination_id, local.weekday(), local.hour)
        corridors = self._corridors
        basis = (cached.read_at, corridors is not None)
        with self._lock:
            memo = self._peeked.get(key)
            if memo is not None and memo[0] == basis:
                return memo[1]
        found = estimate_wait(
            cached.history,
            stop_id,
            destination_id,
            local.weekday(),
            local.hour,
            model_mean=self._model_mean(corridors or {}, line, stop_id, local.hour),
            guarantee=line.tuning.wait_guarantee if line.has_fallback else None,
            rules=self.rules,
        )
        with self._lock:
            self._peeked[key] = (basis, found)
        return found

    def _corridors_read(self) -> dict[str, CorridorSpec]:
        with self._lock:
            if self._corridors is None:
                self._corridors = self._load_corridors()
            return self._corridors

    def model_mean(self, line: Line, stop_id: StopId, hour: int) -> timedelta | None:
        """The study's mean wait at `hour` for the direction of `stop_id`, if it has one."""
        return self._model_mean(self._corridors_read(), line, stop_id, hour)

    @staticmethod
    def _model_mean(
        corridors: dict[str, CorridorSpec], line: Line, stop_id: StopId, hour: int
    ) -> timedelta | None:
        from line_service.planning.rates import hourly_rates

        corridor = corridors.get(line.id)
        index = next(
            (i for i, d in enumerate(line.directions) if any(s.id == stop_id for s in d.stops)),
            None,
        )
        if corridor is None or index is None or index > 1:
            return None
        if index == 1 and corridor.reverse is None:
            return None
        rates = hourly_rates(corridor, hour, reverse=index == 1)
        return model_mean_wait(rates.stopping_drivers_per_hour)

    def estimate(
        self, line: Line, stop_id: StopId, destination_id: StopId, weekday: int, hour: int
    ) -> WaitEstimate | None:
        """The wait at `stop_id` towards `destination_id` at a local hour of a weekday."""
        return estimate_wait(
            self.history(line),
            stop_id,
            destination_id,
            weekday,
            hour,
            model_mean=self.model_mean(line, stop_id, hour),
            guarantee=line.tuning.wait_guarantee if line.has_fallback else None,
            rules=self.rules,
        )

    def estimate_now(
        self, line: Line, stop_id: StopId, destination_id: StopId, at: datetime | None = None
    ) -> WaitEstimate | None:
        """The wait to expect for a rider asking at `at` (default: now)."""
        local = (at or self._clock()).astimezone(ZoneInfo(line.timezone))
        return self.estimate(line, stop_id, destination_id, local.weekday(), local.hour)
