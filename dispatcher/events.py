"""Pure: what happened, as the adapters report it to the core (past tense, already validated)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dispatcher.model import DeviceKind, LineId, Network, RequestId, SignId, StopId, TerminalId
from dispatcher.request_machine import RideRequest, Source


class Actor(StrEnum):
    """Who acted on a request."""

    RIDER = "rider"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class RideRequested:
    """A rider asked for a ride (terminal button, SMS or API).

    `request_id` and `code_candidate` are chosen by the shell (the core draws no randomness).
    """

    request_id: RequestId
    line_id: LineId
    stop_id: StopId
    destination_id: StopId
    seats: int
    source: Source
    code_candidate: str
    terminal_id: TerminalId | None = None
    phone: str | None = None
    arriving_at: datetime | None = None
    """Set when the rider is not at the stop yet ("J'arrive"): when they say they will be."""


@dataclass(frozen=True, slots=True)
class RiderArrived:
    """A rider who announced their coming is at the stop now (SMS ICI, the app)."""

    line_id: LineId
    request_id: RequestId


@dataclass(frozen=True, slots=True)
class RideCancelled:
    """The rider (or an operator) cancelled, or the rider reported having left with a driver.

    The request is named by its id or by its source (a terminal's own request_id).
    """

    line_id: LineId
    actor: Actor
    departed: bool = False
    request_id: RequestId | None = None
    source: Source | None = None


@dataclass(frozen=True, slots=True)
class CodeValidated:
    """A driver sent a rider's code: the rider is on board."""

    line_id: LineId
    code: str
    driver_ref: str


@dataclass(frozen=True, slots=True)
class DeadlineReached:
    """A request's deadline (wait guarantee or maximum wait) came."""

    request_id: RequestId


@dataclass(frozen=True, slots=True)
class LeaseRefreshDue:
    """Time to renew the leases of lit signs (sent periodically by the timers)."""


@dataclass(frozen=True, slots=True)
class DevicesResyncRequested:
    """Every device must get its desired display again (start, broker reconnect)."""


@dataclass(frozen=True, slots=True)
class SignReported:
    """A sign said what it shows now."""

    line_id: LineId
    sign_id: SignId
    seq: int
    pages: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class DeviceStatusReported:
    """A device went online, or its last will said it went offline."""

    line_id: LineId
    kind: DeviceKind
    device_id: str
    online: bool


@dataclass(frozen=True, slots=True)
class DeviceFloodReported:
    """The gateway dropped a device's messages beyond its rate (`flooding`), or it calmed down.

    Sent once when a flood episode opens and once when it closes, never per message.
    """

    line_id: LineId
    kind: DeviceKind
    device_id: str
    flooding: bool


@dataclass(frozen=True, slots=True)
class CodeGuessingReported:
    """Wrong drivers' codes on a line passed its alarm threshold (`alarmed`), or fell back.

    Sent by the shell's guessing guard once when the alarm opens and once when it closes;
    `sources` names who sent them (hashed identities, client addresses), never a number.
    """

    line_id: LineId
    alarmed: bool
    wrong_codes: int = 0
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FallbackRequested:
    """An operator sends the line's fallback to a waiting rider now."""

    line_id: LineId
    request_id: RequestId


@dataclass(frozen=True, slots=True)
class OperatorMessagePosted:
    """An operator puts a message on a sign (`pages == ()` blanks it) until `expires_at`.

    While active it wins over riders' destinations; between operator messages on one sign the
    highest `priority` wins, then the newest.
    """

    line_id: LineId
    sign_id: SignId
    message_id: str
    pages: tuple[tuple[str, ...], ...]
    priority: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OperatorMessageCleared:
    """An operator message is withdrawn, or its expiry came (timers send this too)."""

    line_id: LineId
    sign_id: SignId
    message_id: str


@dataclass(frozen=True, slots=True)
class StorageFailed:
    """These requests were accepted but the database has not stored them in time: refuse them.

    The shell sends it when its writes keep failing; the refusal is stored once the database
    is back, after the creation, so the history stays whole.
    """

    request_ids: tuple[RequestId, ...]


@dataclass(frozen=True, slots=True)
class LinesAdopted:
    """This process now owns more lines (a peer died, or they were free): drive them too.

    `network` is every line owned from now on (those held and the adopted ones, in the lines
    file's order). `requests` are the adopted lines' requests read back from the database (any
    states, as for a restart) and `aliases` their other sources; those of lines already held
    are ignored (the memory of a held line is newer than the database).
    """

    network: Network
    requests: tuple[RideRequest, ...] = ()
    aliases: tuple[tuple[Source, RequestId], ...] = ()


@dataclass(frozen=True, slots=True)
class LinesDropped:
    """This process hands lines over (rebalancing, shutting down): forget them.

    `network` is what stays owned. The dropped lines' riders stay stored as they are: their
    next owner restores them.
    """

    network: Network


@dataclass(frozen=True, slots=True)
class ForeignCodesSeen:
    """The codes riders hold now on lines other processes dispatch (a cluster): a new code is
    chosen among the others, so that a code stays unique over the whole network (a driver's
    SMS names no line)."""

    codes: frozenset[str]


Event = (
    RideRequested
    | RiderArrived
    | RideCancelled
    | CodeValidated
    | DeadlineReached
    | LeaseRefreshDue
    | DevicesResyncRequested
    | SignReported
    | DeviceStatusReported
    | DeviceFloodReported
    | CodeGuessingReported
    | FallbackRequested
    | OperatorMessagePosted
    | OperatorMessageCleared
    | StorageFailed
    | LinesAdopted
    | LinesDropped
    | ForeignCodesSeen
)
