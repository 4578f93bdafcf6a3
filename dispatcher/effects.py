"""Pure: what the shell must do after an event (imperative names; the engine matches them all)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from dispatcher.model import DeviceKind, LineId, RequestId, SignId, StopId, TerminalId
from dispatcher.request_machine import DeviceRequestId, RequestState, RideRequest, Source

Page = tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SignDisplay:
    """What one sign must show until `expires_at` (`pages == ()` is blank)."""

    seq: int
    pages: tuple[Page, ...]
    expires_at: datetime


class ScreenState(StrEnum):
    """What a terminal's screen is telling its rider."""

    IDLE = "idle"
    WAITING = "waiting"
    PICKED_UP = "picked_up"
    CANCELLED = "cancelled"
    EXPIRED = "expired"
    FALLBACK = "fallback"
    CLOSED = "closed"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class TerminalScreen:
    """What one terminal must show; `device_request_id` is the terminal's own id of the press.

    `destination_id` names the destination of a waiting rider's request (None otherwise): the
    shell adds the expected wait to the screen from it, at the edge (see `estimates`).
    """

    seq: int
    state: ScreenState
    device_request_id: DeviceRequestId | None
    code: str | None
    lines: tuple[str, ...]
    expires_at: datetime
    destination_id: StopId | None = None


@dataclass(frozen=True, slots=True)
class ShowOnSign:
    """Publish this display to this sign."""

    line_id: LineId
    sign_id: SignId
    display: SignDisplay


@dataclass(frozen=True, slots=True)
class ShowOnTerminal:
    """Publish this screen to this terminal."""

    line_id: LineId
    terminal_id: TerminalId
    screen: TerminalScreen


@dataclass(frozen=True, slots=True)
class SaveRequest:
    """Persist the request as it now is, with the transition that led there."""

    request: RideRequest
    previous_state: RequestState | None


@dataclass(frozen=True, slots=True)
class SaveSourceAlias:
    """Persist that another source (a repeated press, a repeated SMS) names this request."""

    source: Source
    request_id: RequestId


@dataclass(frozen=True, slots=True)
class SaveDevicePresence:
    """A device's presence changed (online, or offline by its will): store it, best effort."""

    line_id: LineId
    kind: DeviceKind
    device_id: str
    online: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class ArmDeadline:
    """Fire DeadlineReached for this request at `at`."""

    request_id: RequestId
    at: datetime


@dataclass(frozen=True, slots=True)
class DisarmDeadline:
    """The request left WAITING: its deadline timer is moot."""

    request_id: RequestId


@dataclass(frozen=True, slots=True)
class DispatchFallback:
    """The wait guarantee is reached: send the line's fallback (taxi) to this rider."""

    request: RideRequest


@dataclass(frozen=True, slots=True)
class NotifyRider:
    """Tell a rider who gave a phone number what became of their request (SMS)."""

    request: RideRequest


@dataclass(frozen=True, slots=True)
class ArmMessageExpiry:
    """Send OperatorMessageCleared for this message at `at`."""

    line_id: LineId
    sign_id: SignId
    message_id: str
    at: datetime


class AlertKind(StrEnum):
    """Conditions an operator must see."""

    DEVICE_OFFLINE = "device_offline"
    SIGN_MISMATCH = "sign_mismatch"
    DEVICE_FLOODING = "device_flooding"
    CODE_GUESSING = "code_guessing"
    """Wrong drivers' codes spike on a line (its `device_id` is the line's id)."""


@dataclass(frozen=True, slots=True)
class Alert:
    """An operator alert about one device (or, without `device_kind`, about the line)."""

    kind: AlertKind
    line_id: LineId
    device_kind: DeviceKind | None
    device_id: str
    message: str
    raised_at: datetime


@dataclass(frozen=True, slots=True)
class RaiseAlert:
    """Tell operators about a condition."""

    alert: Alert


@dataclass(frozen=True, slots=True)
class ClearAlert:
    """A condition is over."""

    kind: AlertKind
    line_id: LineId
    device_id: str


class RejectionReason(StrEnum):
    """Why an event changed nothing."""

    UNKNOWN_LINE = "unknown_line"
    UNKNOWN_STOP = "unknown_stop"
    UNKNOWN_REQUEST = "unknown_request"
    UNKNOWN_CODE = "unknown_code"
    NOT_WAITING = "not_waiting"
    UNKNOWN_DEVICE = "unknown_device"
    UNKNOWN_MESSAGE = "unknown_message"
    INVALID_MESSAGE = "invalid_message"


@dataclass(frozen=True, slots=True)
class RejectEvent:
    """The event was illegal here; state is unchanged. The shell logs, counts and answers."""

    reason: RejectionReason
    detail: str


Effect = (
    ShowOnSign
    | ShowOnTerminal
    | SaveRequest
    | SaveSourceAlias
    | SaveDevicePresence
    | ArmDeadline
    | DisarmDeadline
    | DispatchFallback
    | NotifyRider
    | ArmMessageExpiry
    | RaiseAlert
    | ClearAlert
    | RejectEvent
)
