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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
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
    SaveDevicePresence,
    SaveRequest,
    SaveSourceAlias,
    ShowOnSign,
    ShowOnTerminal,
)
from dispatcher.events import Event, StorageFailed
from dispatcher.model import RequestId
from dispatcher.request_machine import RequestState, RideRequest, Source
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


Outcome = asyncio.Future[list[Effect]]
StepTimer = Callable[[str, float], None]


class Inbox:
    """The engine's queue of events, made before the engine so that what feeds it (timers, the
    device gateway, the writer's refusals) can be built first."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[tuple[Event, Outcome | None]] = asyncio.Queue()

    def submit_nowait(self, event: Event) -> None:
        """Queue an event; do not wait for its outcome."""
        self._queue.put_nowait((event, None))

    async def submit(self, event: Event) -> list[Effect]:
        """Queue an event and return its effects once they are stored."""
        outcome: Outcome = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((event, outcome))
        return await outcome

    async def next(self) -> tuple[Event, Outcome | None]:
        """The oldest event not yet applied."""
        return await self._queue.get()


@dataclass
class _Plan:
    """What one step's effects ask of the shell, sorted by when it must happen."""

    saves: list[tuple[RideRequest, RequestState | None]] = field(default_factory=list)
    aliases: list[tuple[Source, RequestId]] = field(default_factory=list)
    after_commit: list[Callable[[], None]] = field(default_factory=list)

    @property
    def writes(self) -> bool:
        return bool(self.saves or self.aliases)


class Engine:
    """One task, one state: every event goes through `step` here, in arrival order."""

    def __init__(
        self,
        state: DispatcherState,
        clock: Clock,
        inbox: Inbox,
        outbox: DeviceOutbox,
        timers: DeadlineTimers,
        writer: Writer,
        *,
        notifier: RiderNotifier | None = None,
        fallback: FallbackDispatcher | None = None,
        listeners: Iterable[Listener] = (),
    ) -> None:
        self._state = state
        self._clock = clock
        self._inbox = inbox
        self._outbox = outbox
        self._timers = timers
        self._writer = writer
        self._notifier: RiderNotifier = notifier or LoggingNotifier()
        self._fallback: FallbackDispatcher = fallback or LoggingFallback()
        self._listeners: list[Listener] = list(listeners)
        self._step_timers: list[StepTimer] = []
        self.rejected: Counter[str] = Counter()
        self.processed = 0
        self.step_seconds_total = 0.0

    @property
    def state(self) -> DispatcherState:
        """The current state (an immutable value: safe to read from anywhere)."""
        return self._state

    def subscribe(self, listener: Listener) -> None:
        """Call `listener` after every step with the event, its effects and the new state."""
        self._listeners.append(listener)

    def time_steps(self, timer: StepTimer) -> None:
        """Call `timer` with each step's event name and duration in seconds."""
        self._step_timers.append(timer)

    def submit_nowait(self, event: Event) -> None:
        """Queue an event; do not wait for its outcome."""
        self._inbox.submit_nowait(event)

    async def submit(self, event: Event) -> list[Effect]:
        """Queue an event and return its effects once they are stored."""
        return await self._inbox.submit(event)

    def restore(
        self, requests: list[RideRequest], aliases: list[tuple[Source, RequestId]] | None = None
    ) -> None:
        """Adopt requests (and their source aliases) read back from the database (before `run`);
        devices hear of them on the link's connection (`DevicesResyncRequested`)."""
        self._state, effects = restore(self._state, requests, aliases or ())
        self._commit(None, effects, self._route(effects), None)
        log.info("engine.restored", waiting=len(self._state.waiting()), requests=len(requests))

    async def run(self) -> None:
        """Apply events until cancelled."""
        while True:
            event, outcome = await self._inbox.next()
            started = time.perf_counter()
            try:
                self._state, effects = step(self._state, event, self._clock())
            except Exception as exc:
                log.exception("engine.step_failed", event=type(event).__name__)
                if outcome is not None and not outcome.done():
                    outcome.set_exception(exc)
                continue
            self.processed += 1
            self._commit(event, effects, self._route(effects), outcome)
            elapsed = time.perf_counter() - started
            self.step_seconds_total += elapsed
            for timer in self._step_timers:
                timer(type(event).__name__, elapsed)

    def _route(self, effects: list[Effect]) -> _Plan:
        """Perform what needs no commit (displays, timers, logs); plan what follows a commit."""
        plan = _Plan()
        for effect in effects:
            match effect:
                case ShowOnSign():
                    self._outbox.show_on_sign(effect)
                case ShowOnTerminal():
                    plan.after_commit.append(
                        functools.partial(self._outbox.show_on_terminal, effect)
                    )
                case SaveSourceAlias():
                    plan.aliases.append((effect.source, effect.request_id))
                case SaveRequest():
                    plan.saves.append((effect.request, effect.previous_state))
                    _log_saved(effect.request)
                case SaveDevicePresence():
                    self._writer.save_device_status(effect)
                case ArmDeadline():
                    self._timers.arm(effect.request_id, effect.at)
                case DisarmDeadline():
                    self._timers.disarm(effect.request_id)
                case DispatchFallback():
                    plan.after_commit.append(
                        functools.partial(self._fallback.dispatch, effect.request)
                    )
                case NotifyRider():
                    plan.after_commit.append(
                        functools.partial(self._notifier.notify, effect.request)
                    )
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
        return plan

    def _commit(
        self, event: Event | None, effects: list[Effect], plan: _Plan, outcome: Outcome | None
    ) -> None:
        """Tell listeners, then store the step's writes and run its follow-ups in order."""
        for listener in self._listeners:
            try:
                listener(event, effects, self._state)
            except Exception:
                log.exception("engine.listener_failed")

        def finish() -> None:
            for follow_up in plan.after_commit:
                follow_up()
            if outcome is not None and not outcome.done():
                outcome.set_result(effects)

        if isinstance(event, StorageFailed):
            # The riders must hear the refusal now, not once the database is back; the refusal
            # itself is stored after the creation it refuses.
            finish()
            if plan.writes:
                self._writer.save(plan.saves, then=_nothing, aliases=plan.aliases)
        elif plan.writes or self._writer.busy:
            # While earlier writes are pending, even a step with nothing to store answers after
            # them: screens (retained) must reach the broker in the order the engine made them.
            self._writer.save(plan.saves, then=finish, aliases=plan.aliases)
        else:
            finish()


def _log_saved(request: RideRequest) -> None:
    log.info(
        "request.saved",
        request_id=request.id,
        stop=request.stop_id,
        destination=request.destination_id,
        state=request.state.value,
        cause=request.cause.value,
    )


def _nothing() -> None:
    """A follow-up with nothing left to do."""
