"""Shell: a waiting rider's screen gets the expected wait, added where screens leave the engine.

The core composes screens without estimates (they come from the database and the study, not
from events); the engine hands screens over only after their step committed, and this outbox adds
one row to a `waiting` screen on the way to the broker. Retained screens stay as the core made
them in its state, so a resync adds the figure of that moment again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from dispatcher.effects import ScreenState, ShowOnSign, ShowOnTerminal
from dispatcher.model import DeviceKind, LineId, Network, StopId
from dispatcher.terminal_screens import expected_wait_row
from line_service.dispatch.engine import DeviceOutbox

WaitMinutes = Callable[[LineId, StopId, StopId], int | None]
"""The expected wait at a stop towards a destination, in whole minutes (None: no estimate)."""


class WaitOnScreens:
    """A DeviceOutbox that adds "Attente estimee : N min" to waiting riders' screens."""

    def __init__(self, inner: DeviceOutbox, network: Network, minutes: WaitMinutes) -> None:
        self._inner = inner
        self._network = network
        self._minutes = minutes

    def show_on_sign(self, effect: ShowOnSign) -> None:
        """Signs pass unchanged."""
        self._inner.show_on_sign(effect)

    def show_on_terminal(self, effect: ShowOnTerminal) -> None:
        """The screen, with the expected wait when the rider waits and there is an estimate."""
        self._inner.show_on_terminal(self.with_wait(effect))

    def with_wait(self, effect: ShowOnTerminal) -> ShowOnTerminal:
        """The effect with its screen's wait row (unchanged when there is nothing to add)."""
        screen = effect.screen
        if screen.state is not ScreenState.WAITING or screen.destination_id is None:
            return effect
        place = self._network.device(DeviceKind.TERMINAL, effect.terminal_id)
        if place is None:
            return effect
        minutes = self._minutes(effect.line_id, place.stop_id, screen.destination_id)
        if minutes is None:
            return effect
        lines = (*screen.lines, expected_wait_row(minutes))
        return replace(effect, screen=replace(screen, lines=lines))
