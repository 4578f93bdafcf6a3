"""Test support: the engine's device outbox and timers, recorded or ignored (for engine tests
that need no broker)."""

from __future__ import annotations

from datetime import datetime

from dispatcher.effects import ArmMessageExpiry, ShowOnSign, ShowOnTerminal
from dispatcher.model import RequestId


class Outbox:
    """Keeps the terminal screens the engine sent; ignores the signs."""

    def __init__(self) -> None:
        self.screens: list[ShowOnTerminal] = []

    def show_on_sign(self, effect: ShowOnSign) -> None:
        return

    def show_on_terminal(self, effect: ShowOnTerminal) -> None:
        self.screens.append(effect)


class Timers:
    """Arms nothing."""

    def arm(self, request_id: RequestId, at: datetime) -> None:
        return

    def disarm(self, request_id: RequestId) -> None:
        return

    def arm_message_expiry(self, effect: ArmMessageExpiry) -> None:
        return
