"""Shell: the single writer — owns the dispatcher state, applies events in order, performs effects.

Ordering that makes "accepted" mean "stored": signs are lit at once (a lease covers a crash), but
a terminal's screen and the caller of `submit` hear back only after the step's writes committed.
Nothing here waits on a slow peer: publishes are queued to the MQTT link, writes to the writer.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from typing import Protocol, assert_never

import structlog

from dispatcher.effects import (
    ArmDeadline,
    ArmMessageExpiry,
    ClearAlert,
    DisarmDeadline,
    DispatchFallback,
    Effect,
    NotifyRider,
    RaiseAlert,
    RejectEvent,
    SaveRequest,
    SaveSourceAlias,
    ShowOnSign,
    ShowOnTerminal,
)
from dispatcher.events import DeviceStatusReported, Event, StorageFailed
from dispatcher.model import RequestId
from dispatcher.request_machine import RideRequest, Source
from dispatcher.state import DispatcherState
from dispatcher.step import restore, step
from line_service.dispatch.writer import Writer

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
Listener = Callable[[Event | None, list[Effect], DispatcherState], None]


class DeviceOutbox(Protocol):
    """Where displays and screens go (the MQTT side)."""

    def show_on_sign(self, effect: ShowOnSign) -> None: ...
    def show_on_terminal(self, effect: ShowOnTerminal) -> None: ...


class DeadlineTimers(Protocol):
    """Where deadlines and operator-message expiries are armed."""

    def arm(self, request_id: RequestId, at: datetime) -> None: ...
    def disarm(self, request_id: RequestId) -> None: ...
    def arm_message_expiry(self, effect: ArmMessageExpiry) -> None: ...


class RiderNotifier(Protocol):
    """Tells riders who gave a phone number what became of their request (SMS)."""

    def notify(self, request: RideRequest) -> None: ...


class FallbackDispatcher(Protocol):
    """Sends the line's fallback (a taxi) to a rider whose wait guarantee is reached."""

    def dispatch(self, request: RideRequest) -> None: ...


class LoggingNotifier:
    """A notifier that only logs (no SMS channel configured)."""

    def notify(self, request: RideRequest) -> None:
        """Log what the rider would be told."""
        log.info("rider.notify", request_id=request.id, state=request.state.value)


class LoggingFallback:
    """A fallback dispatcher that only logs (no fallback configured)."""

    def dispatch(self, request: RideRequest) -> None:
        """Log the fallback that would be sent."""
        log.warning("fallback.dispatch", request_id=request.id, stop=request.stop_id)


class Engine:
    """One task, one state: every event goes through `step` here, in arrival order."""

    def __init__(
        self,
        state: DispatcherState,
        clock: Clock,
        outbox: DeviceOutbox,
        timers: DeadlineTimers,
        writer: Writer,
        notifier: RiderNotifier | None = None,
        fallback: FallbackDispatcher | None = None,
    ) -> None:
        self._state = state
        self.notifier: RiderNotifier = notifier or LoggingNotifier()
        self.fallback: FallbackDispatcher = fallback or LoggingFallback()
        self._clock = clock
        self._outbox = outbox
        self._timers = timers
        self._writer = writer
        writer.on_stuck = lambda ids: self.submit_nowait(StorageFailed(tuple(ids)))
        self._inbox: asyncio.Queue[tuple[Event, asyncio.Future[list[Effect]] | None]] = (
            asyncio.Queue()
        )
        self.listeners: list[Listener] = []
        self.step_timers: list[Callable[[str, float], None]] = []
        self.rejected: Counter[str] = Counter()
        self.processed = 0
        self.step_seconds_total = 0.0

    @property
    def state(self) -> DispatcherState:
        """The current state (an immutable value: safe to read from anywhere)."""
        return self._state

    def submit_nowait(self, event: Event) -> None:
        """Queue an event; do not wait for its outcome."""
        self._inbox.put_nowait((event, None))

    async def submit(self, event: Event) -> list[Effect]:
        """Queue an event and return its effects once they are stored."""
        outcome: asyncio.Future[list[Effect]] = asyncio.get_running_loop().create_future()
        self._inbox.put_nowait((event, outcome))
        return await outcome

    def restore(
        self, requests: list[RideRequest], aliases: list[tuple[Source, RequestId]] | None = None
    ) -> None:
        """Adopt requests (and their source aliases) read back from the database (before `run`);
        devices hear of them on the link's connection (`DevicesResyncRequested`)."""
        self._state, effects = restore(self._state, requests, aliases or ())
        self._perform(None, effects, None)
        log.info("engine.restored", waiting=len(self._state.waiting()), requests=len(requests))

    async def run(self) -> None:
        """Apply events until cancelled."""
        while True:
            event, outcome = await self._inbox.get()
            started = time.perf_counter()
            before = self._state
            try:
                self._state, effects = step(self._state, event, self._clock())
            except Exception as exc:
                log.exception("engine.step_failed", event=type(event).__name__)
                if outcome is not None and not outcome.done():
                    outcome.set_exception(exc)
                continue
            self.processed += 1
            self._perform(event, effects, outcome, before.online is not self._state.online)
            elapsed = time.perf_counter() - started
            self.step_seconds_total += elapsed
            for timer in self.step_timers:
                timer(type(event).__name__, elapsed)

    def _perform(
        self,
        event: Event | None,
        effects: list[Effect],
        outcome: asyncio.Future[list[Effect]] | None,
        presence_changed: bool = False,
    ) -> None:
        saves = []
        aliases: list[tuple[Source, RequestId]] = []
        after_commit: list[Callable[[], None]] = []
        for effect in effects:
            match effect:
                case ShowOnSign():
                    self._outbox.show_on_sign(effect)
                case ShowOnTerminal():
                    after_commit.append(functools.partial(self._outbox.show_on_terminal, effect))
                case SaveSourceAlias():
                    aliases.append((effect.source, effect.request_id))
                case SaveRequest():
                    saves.append((effect.request, effect.previous_state))
                    log.info(
                        "request.saved",
                        request_id=effect.request.id,
                        stop=effect.request.stop_id,
                        destination=effect.request.destination_id,
                        state=effect.request.state.value,
                        cause=effect.request.cause.value,
                    )
                case ArmDeadline():
                    self._timers.arm(effect.request_id, effect.at)
                case DisarmDeadline():
                    self._timers.disarm(effect.request_id)
                case DispatchFallback():
                    after_commit.append(functools.partial(self.fallback.dispatch, effect.request))
                case NotifyRider():
                    after_commit.append(functools.partial(self.notifier.notify, effect.request))
                case ArmMessageExpiry():
                    self._timers.arm_message_expiry(effect)
                case RaiseAlert():
                    log.warning(
                        "alert.raised",
                        kind=effect.alert.kind.value,
                        device=effect.alert.device_id,
                        message=effect.alert.message,
                    )
                case ClearAlert():
                    log.info("alert.cleared", kind=effect.kind.value, device=effect.device_id)
                case RejectEvent():
                    self.rejected[effect.reason.value] += 1
                    log.info("event.rejected", reason=effect.reason.value, detail=effect.detail)
                case _:
                    assert_never(effect)
        if isinstance(event, DeviceStatusReported) and presence_changed:
            self._writer.save_device_status(event, self._clock())
        for listener in self.listeners:
            try:
                listener(event, effects, self._state)
            except Exception:
                log.exception("engine.listener_failed")

        def finish() -> None:
            for follow_up in after_commit:
                follow_up()
            if outcome is not None and not outcome.done():
                outcome.set_result(effects)

        if isinstance(event, StorageFailed):
            # The riders must hear the refusal now, not once the database is back; the refusal
            # itself is stored after the creation it refuses.
            finish()
            if saves or aliases:
                self._writer.save(saves, then=_nothing, aliases=aliases)
        elif saves or aliases or self._writer.busy:
            # While earlier writes are pending, even a step with nothing to store answers after
            # them: screens (retained) must reach the broker in the order the engine made them.
            self._writer.save(saves, then=finish, aliases=aliases)
        else:
            finish()


def _nothing() -> None:
    """A follow-up with nothing left to do."""
