"""Shell: the one door into the engine for riders and drivers — ids, submit with its timeout,
and what became of the event as a typed outcome (`Accepted` or `Rejected`).

Every channel (MQTT terminals, the HTTP API, SMS) asks through here, so none of them scans effect
lists or reads the engine's state around a submit, and all wait for the same storage timeout.
"""

from __future__ import annotations

import asyncio
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from dispatcher.effects import Effect, RejectEvent, RejectionReason, SaveRequest
from dispatcher.events import (
    Actor,
    CodeValidated,
    Event,
    RideCancelled,
    RiderArrived,
    RideRequested,
)
from dispatcher.model import LineId, RequestId, StopId
from dispatcher.request_machine import RideRequest, Source
from line_service.dispatch.engine import Engine

SUBMIT_TIMEOUT = timedelta(seconds=10)
"""How long a channel waits for its change to be stored before it answers "unavailable"."""


def new_request_ids() -> tuple[RequestId, str]:
    """A fresh request id (hex, as the national registry wants) and a 4-digit code candidate."""
    return RequestId(uuid.uuid4().hex), f"{secrets.randbelow(10_000):04d}"


@dataclass(frozen=True, slots=True)
class Accepted:
    """The event applied; `request` is the request as stored (for a repeated ask, the existing
    one: `new` is then False)."""

    request: RideRequest
    new: bool = True


@dataclass(frozen=True, slots=True)
class Rejected:
    """The core refused the event; nothing changed."""

    reason: RejectionReason
    detail: str


Outcome = Accepted | Rejected


class StorageTimeout(TimeoutError):  # noqa: N818 - a timeout, named as asyncio names its own
    """The change was not stored within the submit timeout (the database is not answering)."""


class NotOwnerError(RuntimeError):
    """This process does not dispatch the lines (a cluster's standby): the change is refused."""


class Intake:
    """Turns a channel's ask into an event, submits it, and says what came of it."""

    def __init__(
        self,
        engine: Engine,
        timeout: timedelta = SUBMIT_TIMEOUT,
        refusal: Callable[[str | None], str | None] = lambda _line: None,
    ) -> None:
        """`refusal` says why this process takes no change for a line now (None: it takes
        it; a cluster process dispatches some lines only)."""
        self._engine = engine
        self._timeout = timeout
        self._refusal = refusal

    async def submit(self, event: Event) -> list[Effect]:
        """The event's effects once stored; raises StorageTimeout past the timeout, and
        NotOwnerError when this process does not dispatch the event's line."""
        refused = self._refusal(getattr(event, "line_id", None))
        if refused is not None:
            raise NotOwnerError(refused)
        try:
            return await asyncio.wait_for(self._engine.submit(event), self._timeout.total_seconds())
        except TimeoutError as exc:
            raise StorageTimeout(f"not stored within {self._timeout}") from exc

    async def request_ride(
        self,
        *,
        line_id: LineId,
        stop_id: StopId,
        destination_id: StopId,
        seats: int,
        source: Source,
        phone: str | None = None,
        request_id: RequestId | None = None,
        arriving_at: datetime | None = None,
    ) -> Outcome:
        """Ask for a ride; a repeated source answers with the request it already made.

        With `arriving_at` the rider is on the way ("J'arrive"): signs say when they come, and
        the request waits from their arrival (`arrived`, a press, or the same ask again)."""
        fresh_id, code = new_request_ids()
        event = RideRequested(
            request_id=request_id or fresh_id,
            line_id=line_id,
            stop_id=stop_id,
            destination_id=destination_id,
            seats=seats,
            source=source,
            code_candidate=code,
            phone=phone,
            arriving_at=arriving_at,
        )
        effects = await self.submit(event)
        outcome = outcome_of(effects)
        if outcome is None:
            existing = self._engine.state.request_by_source(source)
            if existing is None:
                return Rejected(RejectionReason.UNKNOWN_REQUEST, "the request could not be placed")
            return Accepted(existing, new=False)
        return outcome

    async def arrived(self, request: RideRequest) -> Outcome:
        """A rider who announced their coming is at the stop (SMS ICI, the app)."""
        return _decided(await self.submit(RiderArrived(request.line_id, request.id)))

    async def validate(self, line_id: LineId, code: str, driver_ref: str) -> Outcome:
        """A driver's code for a rider waiting on `line_id`."""
        return _decided(await self.submit(CodeValidated(line_id, code, driver_ref)))

    async def cancel(self, request: RideRequest, actor: Actor, departed: bool = False) -> Outcome:
        """End a waiting request: cancelled, or the rider left with someone."""
        event = RideCancelled(
            line_id=request.line_id, actor=actor, departed=departed, request_id=request.id
        )
        return _decided(await self.submit(event))


def outcome_of(effects: list[Effect]) -> Outcome | None:
    """What a step's effects say of the event: the request it stored, or the core's refusal
    (None when it did neither, as for a repeated ask)."""
    for effect in effects:
        if isinstance(effect, SaveRequest):
            return Accepted(effect.request)
    for effect in effects:
        if isinstance(effect, RejectEvent):
            return Rejected(effect.reason, effect.detail)
    return None


def _decided(effects: list[Effect]) -> Outcome:
    outcome = outcome_of(effects)
    if outcome is None:
        return Rejected(RejectionReason.NOT_WAITING, "nothing changed")
    return outcome
