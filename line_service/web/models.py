"""Adapter: HTTP request and response bodies of the REST API (frozen pydantic models)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dispatcher.effects import AlertKind, ScreenState
from dispatcher.model import DeviceKind
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest
from line_service.accounts.book import AccountRole
from line_service.web.operator_accounts import Role

Slug = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,64}$")]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _refuse_field(data: Any, name: str, why: str) -> Any:
    """A before-validator's check: `name` in the body is refused, saying why."""
    if isinstance(data, dict) and name in data:
        raise ValueError(f"{name} is not accepted: {why}")
    return data


Phone = Annotated[str, Field(max_length=32, pattern=r"^\+?[0-9 .()-]{6,31}$")]


class ValidationIn(_Body):
    """A driver validates a rider's code; the driver is the token's account."""

    code: Annotated[str, Field(pattern=r"^\d{4}$")]

    @model_validator(mode="before")
    @classmethod
    def _no_driver_ref(cls, data: Any) -> Any:
        return _refuse_field(data, "driver_ref", "the driver is the account of the bearer token")


class RideRequestIn(_Body):
    """A ride asked through the API (an app), by a signed-in rider: the request carries the
    account's verified number (the rider is told by SMS what becomes of it)."""

    line_id: Slug
    stop_id: Slug
    destination_id: Slug
    seats: Annotated[int, Field(ge=1, le=4)] = 1
    client_ref: Annotated[
        str | None,
        Field(
            max_length=64,
            pattern=r"^[A-Za-z0-9_-]+$",
            description="the app's own id of the ask: a repeat answers with the same request "
            "(scoped to the signed-in account)",
        ),
    ] = None
    arriving_in_minutes: Annotated[
        int | None,
        Field(
            ge=1,
            le=30,
            description='"J\'arrive": the rider is on the way, at the stop within this many '
            "minutes (signs tell drivers; POST /requests/{id}/arrived once there)",
        ),
    ] = None

    @model_validator(mode="before")
    @classmethod
    def _no_phone(cls, data: Any) -> Any:
        return _refuse_field(data, "phone", "the request carries the account's verified number")


class CodeRequestIn(_Body):
    """Ask for a sign-in code by SMS."""

    phone: Phone
    role: AccountRole


class CodeSentOut(_Body):
    """What the service did with a code request (the same whether or not the number exists,
    has an account, or wrote STOP)."""

    detail: str
    expires_in_seconds: int


class TokenRequestIn(_Body):
    """Exchange the texted code for a bearer token."""

    phone: Phone
    code: Annotated[str, Field(pattern=r"^\d{6}$")]


class DriverTripIn(_Body):
    """A signed-in driver announces a trip: from a stop, towards a later one, leaving soon."""

    from_stop: Slug
    towards: Slug = Field(description="a later stop of the same direction")
    leaving_in_minutes: Annotated[int, Field(ge=0, le=60)] = 0


class DriverTripOut(_Body):
    """An announced trip ("Je passe")."""

    id: str
    line_id: str
    direction_id: str
    from_stop: str
    towards: str
    driver_ref: str
    declared_at: datetime
    leaves_at: datetime
    passes_until: datetime = Field(description="when it reaches `towards`; past after that")
    riders_told: int = Field(description="waiting riders texted that a driver is on the way")


class TokenOut(_Body):
    """A rider's or driver's bearer token (shown once)."""

    access_token: str
    token_type: str = "bearer"
    role: AccountRole
    account_id: str
    expires_at: datetime


class RideRequestOut(_Body):
    """A ride request as the API shows it."""

    id: str
    line_id: str
    stop_id: str
    destination_id: str
    seats: int
    channel: Channel
    state: RequestState
    cause: Cause
    code: str | None
    created_at: datetime
    deadline_at: datetime
    updated_at: datetime
    phone: str | None = Field(default=None, description="shown to operators only")
    driver_ref: str | None = None

    @classmethod
    def of(
        cls, request: RideRequest, with_code: bool = True, with_phone: bool = False
    ) -> RideRequestOut:
        """The public view of a request."""
        return cls(
            id=request.id,
            line_id=request.line_id,
            stop_id=request.stop_id,
            destination_id=request.destination_id,
            seats=request.seats,
            channel=request.source.channel,
            state=request.state,
            cause=request.cause,
            code=request.code if with_code else None,
            created_at=request.created_at,
            deadline_at=request.deadline_at,
            updated_at=request.updated_at,
            phone=request.phone if with_phone else None,
            driver_ref=request.driver_ref,
        )


class TransitionOut(_Body):
    """One step in a request's history."""

    at: datetime
    from_state: RequestState | None
    to_state: RequestState
    cause: Cause


class RideRequestDetail(_Body):
    """A request with its history."""

    request: RideRequestOut
    history: list[TransitionOut]


class OperatorMessageOut(_Body):
    """An operator message on a sign (`pages == []` blanks it)."""

    message_id: str
    pages: list[list[str]]
    priority: int
    posted_at: datetime
    expires_at: datetime
    shown: bool = Field(description="true when it is the message the sign shows now")


class SignOut(_Body):
    """A sign: what it was asked to show, what it says it shows, whether it is online."""

    id: str
    stop_id: str
    pages: list[list[str]]
    seq: int | None
    expires_at: datetime | None
    reported_pages: list[list[str]] | None
    online: bool | None
    reported_seq: int | None = Field(default=None, description="seq of the display it reported")
    reported_at: datetime | None = None
    distance_upstream_m: int = 0
    rows: int = 3
    columns: int = 18
    mismatch: bool = False
    operator_messages: list[OperatorMessageOut] = []


class WaitEstimateOut(_Body):
    """The wait to expect from a stop towards one destination at a local hour of a weekday."""

    stop_id: str
    destination_id: str
    weekday: int = Field(description="0 = Monday")
    hour: int = Field(description="local hour of the line, 0-23")
    median_minutes: float
    p90_minutes: float
    source: str = Field(
        description="history (stop × destination × hour × weekday), history_any_weekday, "
        "history_any_hour (widened when thin), or model (the covoiturabilité study)"
    )
    observations: int = Field(description="past waits the figure rests on (0 for the model)")


class LiveWaitEstimateOut(WaitEstimateOut):
    """The wait to expect now, and a driver announced to pass within it."""

    announced_driver_minutes: int | None = Field(
        default=None,
        description="a driver announced (Je passe) passes the stop towards the destination "
        "in this many minutes, within the expected wait (its median); null: none",
    )


class LiveLineOut(_Body):
    """A line's live state."""

    line_id: str
    waiting: list[RideRequestOut]
    signs: list[SignOut]
    alerts: list[str]
    wait_estimates: list[LiveWaitEstimateOut] = Field(
        default_factory=list, description="every boarding stop × destination, at this hour"
    )


class Problem(_Body):
    """An error answer."""

    detail: str


Responses = dict[int | str, dict[str, object]]
AUTH_ERRORS: Responses = {
    401: {"model": Problem, "description": "no token, or an unknown one"},
    403: {"model": Problem, "description": "the token lacks the needed role"},
}
NOT_FOUND: Responses = {404: {"model": Problem}}
CONFLICT: Responses = {409: {"model": Problem}}
UNPROCESSABLE: Responses = {422: {"model": Problem}}
UNAVAILABLE: Responses = {
    503: {"model": Problem, "description": "the change was not stored in time; see Retry-After"}
}
TOO_MANY: Responses = {
    429: {
        "model": Problem,
        "description": "past a sign-in, wrong-code or request budget; see Retry-After",
    }
}


class Readiness(_Body):
    """What /readyz checked."""

    broker: bool
    database: bool
    role: str | None = Field(
        default=None, description="with CARPOOL_CLUSTER only: owner or standby"
    )
    lines_owned: list[str] | None = Field(
        default=None, description="with CARPOOL_CLUSTER only: the lines this process dispatches"
    )


class TestPressOut(_Body):
    """The last button pressed on a terminal of a stop in commissioning (a test, not a ride)."""

    destination_id: str
    known: bool = Field(description="true when the button names a destination of this stop")
    pressed_at: datetime
    request_id: str | None = Field(description="the terminal's own id of the press")


class TerminalOut(_Body):
    """A stop's terminal: online or not, and what its screen says."""

    id: str
    stop_id: str
    online: bool | None
    screen_state: ScreenState | None
    screen_lines: list[str]
    commissioning: bool = False
    last_test_press: TestPressOut | None = None


class StopOut(_Body):
    """A stop of a direction, in travel order, with its devices and waiting riders."""

    id: str
    name: str
    code: str
    km: float
    lat: float
    lon: float
    direction_id: str
    terminal: TerminalOut | None
    signs: list[SignOut]
    waiting: int
    commissioning: bool = Field(
        default=False, description="in commissioning: riders are not served here yet"
    )


class DirectionOut(_Body):
    """A direction of a line: its stops in travel order."""

    id: str
    name: str
    stops: list[StopOut]


class AlertKindOut(StrEnum):
    """What an alert is about: the core's device alerts, and riders near their guarantee."""

    DEVICE_OFFLINE = AlertKind.DEVICE_OFFLINE.value
    SIGN_MISMATCH = AlertKind.SIGN_MISMATCH.value
    DEVICE_FLOODING = AlertKind.DEVICE_FLOODING.value
    CODE_GUESSING = AlertKind.CODE_GUESSING.value
    GUARANTEE_NEAR = "guarantee_near"


class AlertOut(_Body):
    """Something an operator should look at."""

    kind: AlertKindOut
    device_kind: DeviceKind | None
    device_id: str | None
    request_id: str | None = None
    message: str
    raised_at: datetime


class ClusterPlaceOut(_Body):
    """Which process dispatches a line, and what this one does for it (CARPOOL_CLUSTER only)."""

    node: str = Field(description="the process that answered (its MQTT client id)")
    role: str = Field(description="its role for the line: owner or standby")
    owner: str | None = Field(
        description="the process dispatching the line (holding its lock), when known"
    )


class LineSummaryOut(_Body):
    """A line in the list of lines."""

    id: str
    name: str
    open_now: bool
    waiting: int
    alerts: int
    commissioning: bool = False
    cluster: ClusterPlaceOut | None = Field(
        default=None, description="with CARPOOL_CLUSTER only: who dispatches the line"
    )


class LineOut(_Body):
    """A line's configuration and live state: everything the dashboard shows (also sent live)."""

    id: str
    name: str
    timezone: str
    now: datetime
    open_now: bool
    wait_guarantee_minutes: float | None
    has_fallback: bool
    commissioning: bool = Field(
        default=False, description="the whole line is in commissioning (no rider served)"
    )
    directions: list[DirectionOut]
    waiting: list[RideRequestOut]
    recent: list[RideRequestOut] = Field(description="requests finished lately, newest first")
    alerts: list[AlertOut]
    cluster: ClusterPlaceOut | None = Field(
        default=None, description="with CARPOOL_CLUSTER only: who dispatches the line"
    )


class RequestListOut(_Body):
    """Requests matching a filter, newest first."""

    items: list[RideRequestOut]
    count: int


class SignMessageIn(_Body):
    """An operator message: rows of text per page (`pages: []` blanks the sign)."""

    pages: Annotated[
        list[Annotated[list[Annotated[str, Field(max_length=60)]], Field(max_length=6)]],
        Field(max_length=6, examples=[[["ROUTE BARREE", "PRENEZ A16"]], []]),
    ]
    priority: Annotated[int, Field(ge=0, le=100)] = 50
    expires_in_minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 30


class SignMessagePosted(_Body):
    """An operator message as the sign will show it."""

    sign: SignOut
    message: OperatorMessageOut


class CancelIn(_Body):
    """Why an operator cancels (kept in the log)."""

    reason: Annotated[str, Field(max_length=200)] = ""


class PrincipalOut(_Body):
    """Who the token belongs to."""

    name: str
    role: Role | AccountRole
    account_id: str | None = Field(default=None, description="riders' and drivers' tokens")
    phone: str | None = Field(default=None, description="the account's verified number")
