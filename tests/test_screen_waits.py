"""The expected wait on a waiting rider's screen: added after commit, from cached figures."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dispatcher.events import Actor, RideCancelled, RideRequested
from dispatcher.model import LineId, RequestId, StopId, TerminalId
from dispatcher.request_machine import DeviceRequestId, Source
from dispatcher.state import DispatcherState
from line_service.dispatch.engine import Engine, Inbox
from line_service.dispatch.screen_waits import WaitOnScreens
from line_service.dispatch.writer import Writer
from line_service.estimates.estimator import WaitEstimator
from line_service.estimates.screen_waits import ScreenWaits
from line_service.network.lines_file import load_network
from line_service.storage.store import Store
from tests.support.engine_doubles import Outbox, Timers

NETWORK = load_network(Path(__file__).resolve().parents[1] / "config" / "lines.yaml")
LINE = LineId("calais-dunkerque")
MARCK, DUNKERQUE = StopId("marck-est"), StopId("dunkerque-est")
TERMINAL = TerminalId("t-marck-est")
NOW = datetime(2026, 11, 24, 6, 40, tzinfo=UTC)  # a Tuesday, 07:40 in Calais


def _history(minutes: float, count: int = 12) -> list[tuple[StopId, StopId, datetime, datetime]]:
    """`count` riders of last Tuesday at this hour who each waited `minutes`."""
    asked = NOW - timedelta(weeks=1)
    return [(MARCK, DUNKERQUE, asked, asked + timedelta(minutes=minutes))] * count


def _press(request_id: str) -> RideRequested:
    return RideRequested(
        RequestId(request_id),
        LINE,
        MARCK,
        DUNKERQUE,
        1,
        Source.of_terminal(TERMINAL, DeviceRequestId(request_id)),
        "4821",
        terminal_id=TERMINAL,
    )


async def test_a_waiting_rider_sees_the_expected_wait_and_a_result_screen_does_not(
    store: Store,
) -> None:
    estimator = WaitEstimator(NETWORK, lambda _line, _since: _history(4), lambda: NOW, dict)
    estimator.warm()
    outbox = Outbox()
    writer = Writer(store)
    engine = Engine(
        DispatcherState(NETWORK),
        lambda: NOW,
        Inbox(),
        WaitOnScreens(outbox, NETWORK, ScreenWaits(NETWORK, estimator).minutes),
        Timers(),
        writer,
    )
    tasks = [asyncio.create_task(job.run()) for job in (writer, engine)]
    try:
        await engine.submit(_press("p1"))
        waiting = outbox.screens[-1].screen
        assert waiting.state.value == "waiting"
        assert waiting.lines[-1] == "Attente estimee : 4 min"
        assert len(waiting.lines[-1]) <= 28  # as long as the idle screen's row, at most
        # The core's own screen (retained in its state, re-sent on a resync) has no figure.
        held = engine.state.screens.get(TERMINAL)
        assert held is not None
        assert "Attente estimee : 4 min" not in held.lines
        await engine.submit(
            RideCancelled(
                LINE, Actor.RIDER, source=Source.of_terminal(TERMINAL, DeviceRequestId("p1"))
            )
        )
        cancelled = outbox.screens[-1].screen
        assert cancelled.state.value == "cancelled"
        assert not any("Attente" in row for row in cancelled.lines)
    finally:
        for task in tasks:
            task.cancel()


def test_no_estimate_leaves_the_screen_as_the_core_made_it() -> None:
    # No history and no study model: nothing to say, the screen is unchanged.
    estimator = WaitEstimator(NETWORK, lambda _line, _since: [], lambda: NOW, dict)
    waits = ScreenWaits(NETWORK, estimator)
    assert waits.minutes(LINE, MARCK, DUNKERQUE) is None
    estimator_with = WaitEstimator(NETWORK, lambda _line, _since: _history(9.6), lambda: NOW, dict)
    assert ScreenWaits(NETWORK, estimator_with).minutes(LINE, MARCK, DUNKERQUE) == 10


def test_a_failing_database_never_stops_the_screen() -> None:
    def broken(_line: str, _since: datetime) -> list[tuple[StopId, StopId, datetime, datetime]]:
        raise OSError("database down")

    estimator = WaitEstimator(NETWORK, broken, lambda: NOW, dict)
    assert ScreenWaits(NETWORK, estimator).minutes(LINE, MARCK, DUNKERQUE) is None


def test_no_history_is_read_while_the_devices_are_re_asserted() -> None:
    # A restart re-asserts thousands of devices: the screens of that pass read no history (the
    # warm-up reads every line just after); the first screen after it reads its line's.
    reads: list[str] = []

    def waits(line: str, _since: datetime) -> list[tuple[StopId, StopId, datetime, datetime]]:
        reads.append(line)
        return _history(4)

    reasserted = False
    estimator = WaitEstimator(NETWORK, waits, lambda: NOW, dict)
    screens = ScreenWaits(NETWORK, estimator, reads_allowed=lambda: reasserted)
    assert screens.minutes(LINE, MARCK, DUNKERQUE) is None
    assert reads == []
    reasserted = True
    assert screens.minutes(LINE, MARCK, DUNKERQUE) == 4
    assert reads == [LINE]
