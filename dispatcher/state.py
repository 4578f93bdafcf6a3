"""Pure: the dispatcher's whole state, an immutable value replaced at every step.

Indexes (`waiting_by_stop`, `codes`, `by_source`) are derived from `requests` and kept in step
with it by `step`; `restore` rebuilds them from a list of requests read back from the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from dispatcher.effects import (
    Alert,
    AlertKind,
    Effect,
    RejectEvent,
    RejectionReason,
    SignDisplay,
    TerminalScreen,
)
from dispatcher.model import DeviceKind, LineId, Network, RequestId, SignId, StopId, TerminalId
from dispatcher.persistent_map import PersistentMap
from dispatcher.request_machine import DeviceRequestId, RequestState, RideRequest, Source

CodeKey = tuple[LineId, str]
DeviceKey = tuple[DeviceKind, str]
AlertKey = tuple[AlertKind, str]

Step = tuple["DispatcherState", list[Effect]]

CODE_HOLDING_STATES = frozenset(
    {RequestState.WAITING, RequestState.ANNOUNCED, RequestState.FALLBACK}
)


@dataclass(frozen=True, slots=True)
class SignReport:
    """What a sign last said it shows."""

    seq: int
    pages: tuple[tuple[str, ...], ...]
    at: datetime


@dataclass(frozen=True, slots=True)
class CommissioningPress:
    """The last button pressed on a terminal whose stop is in commissioning (not a ride)."""

    device_request_id: DeviceRequestId | None
    destination_id: StopId
    known: bool  # the button names a destination served from this stop
    pressed_at: datetime


@dataclass(frozen=True, slots=True)
class OperatorMessage:
    """An operator's message on one sign, active until `expires_at`."""

    message_id: str
    pages: tuple[tuple[str, ...], ...]
    priority: int
    posted_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class DispatcherState:
    """Everything the core knows; never mutated (each step builds a new one)."""

    network: Network
    """The lines this process drives: every line of the file, or in a cluster those it owns."""
    requests: PersistentMap[RequestId, RideRequest] = field(default_factory=PersistentMap)
    by_source: PersistentMap[Source, RequestId] = field(default_factory=PersistentMap)
    waiting_by_stop: PersistentMap[StopId, tuple[RequestId, ...]] = field(
        default_factory=PersistentMap
    )
    codes: PersistentMap[CodeKey, RequestId] = field(default_factory=PersistentMap)
    announced_by_stop: PersistentMap[StopId, tuple[RequestId, ...]] = field(
        default_factory=PersistentMap
    )
    """Riders on the way to each stop ("J'arrive"), oldest announcement first."""
    signs: PersistentMap[SignId, SignDisplay] = field(default_factory=PersistentMap)
    sign_reports: PersistentMap[SignId, SignReport] = field(default_factory=PersistentMap)
    screens: PersistentMap[TerminalId, TerminalScreen] = field(default_factory=PersistentMap)
    online: PersistentMap[DeviceKey, bool] = field(default_factory=PersistentMap)
    presence_changed_at: PersistentMap[DeviceKey, datetime] = field(default_factory=PersistentMap)
    settling: PersistentMap[DeviceKey, datetime] = field(default_factory=PersistentMap)
    """Devices back online after a flap, by when they came back: their alert is still on."""
    alerts: PersistentMap[AlertKey, Alert] = field(default_factory=PersistentMap)
    operator_messages: Mapping[SignId, tuple[OperatorMessage, ...]] = field(default_factory=dict)
    commissioning_presses: PersistentMap[TerminalId, CommissioningPress] = field(
        default_factory=PersistentMap
    )
    foreign_codes: frozenset[str] = frozenset()
    """Codes held on lines other processes dispatch (a cluster): never given here."""

    def operator_message(self, sign_id: SignId, now: datetime) -> OperatorMessage | None:
        """The operator message a sign shows now: highest priority, then newest; None if none."""
        active = [m for m in self.operator_messages.get(sign_id, ()) if m.expires_at > now]
        if not active:
            return None
        return max(active, key=lambda message: (message.priority, message.posted_at))

    def waiting_at(self, stop_id: StopId) -> tuple[RideRequest, ...]:
        """The requests waiting at a stop, oldest first."""
        return tuple(self.requests[rid] for rid in self.waiting_by_stop.get(stop_id, ()))

    def announced_at(self, stop_id: StopId) -> tuple[RideRequest, ...]:
        """The riders announced at a stop (on their way), oldest announcement first."""
        return tuple(self.requests[rid] for rid in self.announced_by_stop.get(stop_id, ()))

    def announced(self) -> tuple[RideRequest, ...]:
        """Every announced request, stop by stop in the network's order."""
        found: list[RideRequest] = []
        for line in self.network.lines:
            for stop in line.all_stops():
                found += (self.requests[rid] for rid in self.announced_by_stop.get(stop.id, ()))
        return tuple(found)

    def waiting(self) -> tuple[RideRequest, ...]:
        """Every waiting request, stop by stop in the network's order, oldest first at each."""
        found: list[RideRequest] = []
        for line in self.network.lines:
            for stop in line.all_stops():
                found += (self.requests[rid] for rid in self.waiting_by_stop.get(stop.id, ()))
        return tuple(found)

    def request_by_code(self, line_id: LineId, code: str) -> RideRequest | None:
        """The request holding this code on the line, or None."""
        rid = self.codes.get((line_id, code))
        return self.requests[rid] if rid is not None else None

    def requests_holding(self, code: str) -> tuple[RideRequest, ...]:
        """Every request of the network holding this code (one, unless restored data predates
        network-wide codes)."""
        return tuple(
            request
            for line in self.network.lines
            if (request := self.request_by_code(line.id, code)) is not None
        )

    def request_by_source(self, source: Source) -> RideRequest | None:
        """The request born of this source (terminal press, SMS), or None."""
        rid = self.by_source.get(source)
        return self.requests.get(rid) if rid is not None else None

    def waiting_for_phone(self, phone: str) -> RideRequest | None:
        """The live request of this phone number (waiting, or announced), or None."""
        for request in (*self.waiting(), *self.announced()):
            if request.phone == phone:
                return request
        return None


def index_requests(
    network: Network,
    requests: Iterable[RideRequest],
    aliases: Iterable[tuple[Source, RequestId]] = (),
) -> DispatcherState:
    """A state holding `requests` (any states) and their source aliases, every index rebuilt."""
    # Oldest first; requests of the same instant in the order of their ids, so that a restart
    # gives one order whatever order the database returns them in.
    ordered = sorted(requests, key=lambda request: (request.created_at, request.id))
    by_id = {request.id: request for request in ordered}
    by_source = {source: rid for source, rid in aliases if rid in by_id}
    by_source.update({request.source: request.id for request in ordered})
    waiting_by_stop: dict[StopId, tuple[RequestId, ...]] = {}
    announced_by_stop: dict[StopId, tuple[RequestId, ...]] = {}
    codes: dict[CodeKey, RequestId] = {}
    for request in ordered:
        if request.is_live:
            index = waiting_by_stop if request.is_waiting else announced_by_stop
            index[request.stop_id] = (*index.get(request.stop_id, ()), request.id)
        if request.code is not None and request.state in CODE_HOLDING_STATES:
            codes[(request.line_id, request.code)] = request.id
    return DispatcherState(
        network=network,
        requests=PersistentMap(by_id),
        by_source=PersistentMap(by_source),
        waiting_by_stop=PersistentMap(waiting_by_stop),
        announced_by_stop=PersistentMap(announced_by_stop),
        codes=PersistentMap(codes),
    )


def reject(state: DispatcherState, reason: RejectionReason, detail: str) -> Step:
    """The event changes nothing: same state, one RejectEvent for the shell to log and answer."""
    return state, [RejectEvent(reason, detail)]
