"""Adapter: the expected wait in whole minutes for a terminal's screen, without blocking.

The engine's loop publishes screens, so the figure comes from what the estimator read already
(`peek_now`); a history older than its refresh is read again in a worker thread, one line at a
time, and the screens after it show the new figure.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import structlog

from dispatcher.model import LineId, Network, StopId
from line_service.estimates.estimator import WaitEstimator
from line_service.estimates.wait_estimate import whole_minutes

log = structlog.get_logger(__name__)


class ScreenWaits:
    """`minutes(line, stop, destination)` for the terminals' screens."""

    def __init__(
        self,
        network: Network,
        estimator: WaitEstimator,
        reads_allowed: Callable[[], bool] = lambda: True,
    ) -> None:
        """`reads_allowed` says whether a stale history may be read now (the service passes
        "every device re-asserted": reads in worker threads would take the interpreter from the
        thousands of publications of a restart)."""
        self._network = network
        self._estimator = estimator
        self._reads_allowed = reads_allowed
        self._reading: set[LineId] = set()
        self._lock = threading.Lock()

    def minutes(self, line_id: LineId, stop_id: StopId, destination_id: StopId) -> int | None:
        """The expected wait, or None when there is none yet (never raises, never blocks)."""
        line = self._network.line(line_id)
        if line is None:
            return None
        try:
            if self._estimator.history_is_stale(line) and self._reads_allowed():
                self._read_later(line_id)
            found = self._estimator.peek_now(line, stop_id, destination_id)
        except Exception as exc:
            log.warning("estimates.screen_failed", line=line_id, reason=str(exc)[:200])
            return None
        return None if found is None else whole_minutes(found.median)

    def _read_later(self, line_id: LineId) -> None:
        with self._lock:
            if line_id in self._reading:
                return
            self._reading.add(line_id)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._read(line_id)
            return
        loop.run_in_executor(None, self._read, line_id)

    def _read(self, line_id: LineId) -> None:
        try:
            line = self._network.line(line_id)
            if line is not None:
                self._estimator.warm_line(line)
        except Exception as exc:
            log.warning("estimates.screen_read_failed", line=line_id, reason=str(exc)[:200])
        finally:
            with self._lock:
                self._reading.discard(line_id)
