"""Adapter: the narrow dependencies of the routers, declared once.

Each reads one object the composition root put in the lifespan state (`request.state.<name>`,
keys named by `lifespan_state`); no router sees the whole runtime, and none imports another.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request
from fastapi.responses import JSONResponse

from dispatcher.model import Line, LineId, Network
from dispatcher.state import DispatcherState
from line_service.accounts.sign_in import SignIn
from line_service.authority.driver_journeys import DriverJourneys
from line_service.authority.gtfs_feed import GtfsFeed
from line_service.authority.rpc_outbox import RpcOutbox
from line_service.dispatch.intake import Intake, NotOwnerError, StorageTimeout
from line_service.driver_trips.announcements import DriverTrips
from line_service.estimates.estimator import WaitEstimator
from line_service.storage.store import Store
from line_service.web.operator_accounts import TokenAuthority
from line_service.web.views import Placement, nowhere
from sms_gateway.phones import to_e164

ReadinessCheck = Callable[[], Awaitable[dict[str, Any]]]
"""Whether the broker and the database are reachable now (and, in a cluster, which lines this
process owns)."""

STORAGE_RETRY_AFTER_SECONDS = 10
STORAGE_UNAVAILABLE = (
    "the database is not answering: the change was not stored in time and a new ride "
    "is refused (CARPOOL_STORAGE_REFUSE_SECONDS); try again shortly"
)


def lifespan_state(
    *,
    network: Network,
    current_state: Callable[[], DispatcherState],
    clock: Callable[[], datetime],
    intake: Intake,
    store: Store,
    readiness: ReadinessCheck,
    authority: TokenAuthority,
    estimates: WaitEstimator | None = None,
    public_url: str,
    sign_in: SignIn | None = None,
    driver_trips: DriverTrips | None = None,
) -> dict[str, object]:
    """The lifespan state these dependencies read (the composition root adds its own keys)."""
    if estimates is None:
        estimates = WaitEstimator(network, lambda _line, _since: [], clock, dict)
    return {
        "gtfs_feed": GtfsFeed(network, estimates, clock, public_url),
        "driver_journeys": DriverJourneys(network, estimates, public_url, clock),
        "network": network,
        "current_state": current_state,
        "clock": clock,
        "intake": intake,
        "store": store,
        "readiness": readiness,
        "authority": authority,
        "estimates": estimates,
        "sign_in": sign_in,
        "driver_trips": driver_trips,
    }


PeerAnswers = Callable[[str, list[tuple[str, str]], Iterable[str]], Awaitable[dict[str, Any]]]
"""A cluster: GET a path from other processes (by node), with the caller's headers."""


def _peers(request: Request) -> PeerAnswers | None:
    peers: PeerAnswers | None = getattr(request.state, "peers", None)
    return peers


def _placement(request: Request) -> Placement:
    placement: Placement = getattr(request.state, "placement", None) or nowhere
    return placement


def _network(request: Request) -> Network:
    network: Network = request.state.network
    return network


def _state(request: Request) -> DispatcherState:
    current: Callable[[], DispatcherState] = request.state.current_state
    return current()


def _now(request: Request) -> datetime:
    clock: Callable[[], datetime] = request.state.clock
    return clock()


def _intake(request: Request) -> Intake:
    intake: Intake = request.state.intake
    return intake


def _store(request: Request) -> Store:
    store: Store = request.state.store
    return store


def _readiness(request: Request) -> ReadinessCheck:
    readiness: ReadinessCheck = request.state.readiness
    return readiness


def _authority(request: Request) -> TokenAuthority:
    authority: TokenAuthority = request.state.authority
    return authority


def _estimates(request: Request) -> WaitEstimator | None:
    estimates: WaitEstimator | None = getattr(request.state, "estimates", None)
    return estimates


def _sign_in(request: Request) -> SignIn:
    sign_in: SignIn | None = getattr(request.state, "sign_in", None)
    if sign_in is None:
        raise HTTPException(503, "sign-in is not configured on this service")
    return sign_in


def _driver_trips(request: Request) -> DriverTrips:
    trips: DriverTrips | None = getattr(request.state, "driver_trips", None)
    if trips is None:
        raise HTTPException(503, "announced trips are not configured on this service")
    return trips


def _driver_trips_if_any(request: Request) -> DriverTrips | None:
    trips: DriverTrips | None = getattr(request.state, "driver_trips", None)
    return trips


def _gtfs_feed(request: Request) -> GtfsFeed:
    feed: GtfsFeed = request.state.gtfs_feed
    return feed


def _driver_journeys(request: Request) -> DriverJourneys:
    journeys: DriverJourneys = request.state.driver_journeys
    return journeys


LatestView = Callable[[], tuple[DispatcherState, datetime]]
"""The engine's state and the clock's now, read when called."""


def _latest(request: Request) -> LatestView:
    current: Callable[[], DispatcherState] = request.state.current_state
    clock: Callable[[], datetime] = request.state.clock
    return lambda: (current(), clock())


def _rpc_outbox(request: Request) -> RpcOutbox:
    outbox: RpcOutbox | None = getattr(request.state, "rpc_outbox", None)
    if outbox is None:
        raise HTTPException(503, "the registry outbox is not running")
    return outbox


RpcOutboxDep = Annotated[RpcOutbox, Depends(_rpc_outbox)]
NetworkDep = Annotated[Network, Depends(_network)]
PeersDep = Annotated[PeerAnswers | None, Depends(_peers)]
"""A cluster's other processes, asked for their part of a list (None: one process)."""
PlacementDep = Annotated[Placement, Depends(_placement)]
StateDep = Annotated[DispatcherState, Depends(_state)]
"""The engine's state when the request is handled (an immutable value)."""
NowDep = Annotated[datetime, Depends(_now)]
"""The service clock's now (aware UTC)."""
IntakeDep = Annotated[Intake, Depends(_intake)]
StoreDep = Annotated[Store, Depends(_store)]
ReadinessDep = Annotated[ReadinessCheck, Depends(_readiness)]
AuthorityDep = Annotated[TokenAuthority, Depends(_authority)]
GtfsFeedDep = Annotated[GtfsFeed, Depends(_gtfs_feed)]
DriverJourneysDep = Annotated[DriverJourneys, Depends(_driver_journeys)]
SignInDep = Annotated[SignIn, Depends(_sign_in)]
"""Riders' and drivers' sign-in: codes by SMS, account tokens."""
DriverTripsDep = Annotated[DriverTrips, Depends(_driver_trips)]
"""Trips drivers announce ("Je passe")."""
AnnouncedTripsDep = Annotated[DriverTrips | None, Depends(_driver_trips_if_any)]
"""The same, or None when the service runs without them (for routes that only read them)."""
EstimatesDep = Annotated[WaitEstimator | None, Depends(_estimates)]
"""Riders' expected waits (None when the service runs without them)."""
LatestStateDep = Annotated[LatestView, Depends(_latest)]
"""For the view once a change is applied (the intake says only whether it was): the sign an
operator message went to, as shown now."""


def line_of(network: Network, line_id: str) -> Line:
    """The line, or 404."""
    line = network.line(LineId(line_id))
    if line is None:
        raise HTTPException(404, f"unknown line {line_id!r}")
    return line


def phone_e164(raw: str) -> str:
    """A rider's number in E.164, or 422."""
    e164 = to_e164(raw)
    if e164 is None:
        raise HTTPException(422, "phone: not a valid phone number")
    return e164


NOT_OWNER_RETRY_AFTER_SECONDS = 1


async def not_owner(_request: Request, exc: Exception) -> JSONResponse:
    """A change sent to a cluster's standby process: 503, naming the owner when known."""
    assert isinstance(exc, NotOwnerError)
    return JSONResponse(
        {"detail": str(exc)},
        status_code=503,
        headers={"Retry-After": str(NOT_OWNER_RETRY_AFTER_SECONDS)},
    )


async def storage_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    """A change not stored within the intake's timeout: 503, try again shortly."""
    assert isinstance(exc, StorageTimeout)
    return JSONResponse(
        {"detail": STORAGE_UNAVAILABLE},
        status_code=503,
        headers={"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)},
    )
