"""Adapter: REST routes on lines — configuration and live state, stops, signs, terminals."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import structlog
from fastapi import APIRouter, HTTPException, Request, status
from pydantic import ValidationError

from dispatcher.effects import RejectionReason
from dispatcher.events import OperatorMessageCleared, OperatorMessagePosted
from dispatcher.model import Direction, Line, SignId, SignSpec, Stop
from dispatcher.state import DispatcherState
from line_service.cluster.door import FORWARDED_BY
from line_service.dispatch.intake import Rejected, outcome_of
from line_service.web.auth import Operator, SignedIn, Viewer
from line_service.web.deps import (
    IntakeDep,
    LatestStateDep,
    NetworkDep,
    NowDep,
    PeersDep,
    PlacementDep,
    StateDep,
    line_of,
)
from line_service.web.models import (
    AUTH_ERRORS,
    CONFLICT,
    NOT_FOUND,
    UNAVAILABLE,
    UNPROCESSABLE,
    AlertOut,
    LineOut,
    LineSummaryOut,
    PrincipalOut,
    SignMessageIn,
    SignMessagePosted,
    SignOut,
    StopOut,
    TerminalOut,
)
from line_service.web.operator_accounts import Role
from line_service.web.views import alerts_out, line_out, line_summary, sign_out, stop_out

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v1", tags=["lines"])


def _stops(line: Line) -> list[tuple[Direction, Stop]]:
    return [(direction, stop) for direction in line.directions for stop in direction.stops]


def _sign(line: Line, sign_id: str) -> tuple[Stop, SignSpec]:
    found = line.sign(sign_id)
    if found is None:
        raise HTTPException(404, f"unknown sign {sign_id!r} on {line.id}")
    return found


@router.get("/me", responses=AUTH_ERRORS, response_model_exclude_none=True)
async def whoami(caller: SignedIn) -> PrincipalOut:
    """Who the token belongs to, and its role (a rider's or driver's: its account and number)."""
    account = caller.account
    return PrincipalOut(
        name=caller.name,
        role=caller.role,
        account_id=account and account.id,
        phone=account and account.phone,
    )


@router.get("/lines", responses=AUTH_ERRORS)
async def list_lines(
    request: Request,
    network: NetworkDep,
    state: StateDep,
    now: NowDep,
    placement: PlacementDep,
    peers: PeersDep,
    _caller: Viewer,
) -> list[LineSummaryOut]:
    """Every line of the network (in a cluster, with the process dispatching each: a line
    dispatched by another process is as that process tells it)."""
    summaries = [line_summary(line, state, now, placement(line.id)) for line in network.lines]
    if peers is None or FORWARDED_BY in request.headers:  # a peer asks for this process's part
        return summaries
    elsewhere = {
        s.id: s.cluster.owner
        for s in summaries
        if s.cluster is not None and s.cluster.role != "owner" and s.cluster.owner is not None
    }
    if not elsewhere:
        return summaries
    asked = [(k, v) for k, v in request.headers.items() if k.lower() == "authorization"]
    answers = await peers(request.url.path, asked, set(elsewhere.values()))
    theirs: dict[str, LineSummaryOut] = {}
    for node, answer in answers.items():
        for item in answer if isinstance(answer, list) else []:
            told = _summary(item)
            if told is not None and elsewhere.get(told.id) == node:
                theirs[told.id] = told.model_copy(update={"cluster": placement(told.id)})
    return [theirs.get(summary.id, summary) for summary in summaries]


def _summary(item: object) -> LineSummaryOut | None:
    try:
        return LineSummaryOut.model_validate(item)
    except ValidationError:
        return None


@router.get("/lines/{line_id}", responses=AUTH_ERRORS | NOT_FOUND)
async def get_line(
    line_id: str,
    network: NetworkDep,
    state: StateDep,
    now: NowDep,
    placement: PlacementDep,
    caller: Viewer,
) -> LineOut:
    """A line's configuration and live state (the dashboard's whole picture; in a cluster,
    the process dispatching it)."""
    line = line_of(network, line_id)
    return line_out(line, state, now, caller.allows(Role.OPERATOR), placement(line.id))


@router.get("/lines/{line_id}/stops", responses=AUTH_ERRORS | NOT_FOUND)
async def list_stops(
    line_id: str, network: NetworkDep, state: StateDep, now: NowDep, _caller: Viewer
) -> list[StopOut]:
    """Stops of every direction, in travel order."""
    line = line_of(network, line_id)
    return [stop_out(state, line, direction, stop, now) for direction, stop in _stops(line)]


@router.get("/lines/{line_id}/stops/{stop_id}", responses=AUTH_ERRORS | NOT_FOUND)
async def get_stop(
    line_id: str, stop_id: str, network: NetworkDep, state: StateDep, now: NowDep, _caller: Viewer
) -> StopOut:
    """One stop with its terminal and signs."""
    line = line_of(network, line_id)
    for direction, stop in _stops(line):
        if stop.id == stop_id:
            return stop_out(state, line, direction, stop, now)
    raise HTTPException(404, f"unknown stop {stop_id!r} on {line_id}")


@router.get("/lines/{line_id}/signs", responses=AUTH_ERRORS | NOT_FOUND)
async def list_signs(
    line_id: str, network: NetworkDep, state: StateDep, now: NowDep, _caller: Viewer
) -> list[SignOut]:
    """Every sign: what it was asked to show, what it reported, online, operator messages."""
    line = line_of(network, line_id)
    return [sign_out(state, stop, spec, now) for _d, stop in _stops(line) for spec in stop.signs]


@router.get("/lines/{line_id}/signs/{sign_id}", responses=AUTH_ERRORS | NOT_FOUND)
async def get_sign(
    line_id: str, sign_id: str, network: NetworkDep, state: StateDep, now: NowDep, _caller: Viewer
) -> SignOut:
    """One sign."""
    stop, spec = _sign(line_of(network, line_id), sign_id)
    return sign_out(state, stop, spec, now)


def _terminals(line: Line, state: DispatcherState, now: datetime) -> list[TerminalOut]:
    found = (
        stop_out(state, line, direction, stop, now).terminal for direction, stop in _stops(line)
    )
    return [terminal for terminal in found if terminal is not None]


@router.get("/lines/{line_id}/terminals", responses=AUTH_ERRORS | NOT_FOUND)
async def list_terminals(
    line_id: str, network: NetworkDep, state: StateDep, now: NowDep, _caller: Viewer
) -> list[TerminalOut]:
    """Every terminal: online, and what its screen says."""
    return _terminals(line_of(network, line_id), state, now)


@router.get("/lines/{line_id}/terminals/{terminal_id}", responses=AUTH_ERRORS | NOT_FOUND)
async def get_terminal(
    line_id: str,
    terminal_id: str,
    network: NetworkDep,
    state: StateDep,
    now: NowDep,
    _caller: Viewer,
) -> TerminalOut:
    """One terminal."""
    for terminal in _terminals(line_of(network, line_id), state, now):
        if terminal.id == terminal_id:
            return terminal
    raise HTTPException(404, f"unknown terminal {terminal_id!r} on {line_id}")


@router.get("/lines/{line_id}/alerts", responses=AUTH_ERRORS | NOT_FOUND)
async def list_alerts(
    line_id: str, network: NetworkDep, state: StateDep, now: NowDep, _caller: Viewer
) -> list[AlertOut]:
    """Devices offline, signs showing something else than asked, riders near their guarantee."""
    return alerts_out(line_of(network, line_id), state, now)


@router.post(
    "/lines/{line_id}/signs/{sign_id}/messages",
    status_code=status.HTTP_201_CREATED,
    responses=AUTH_ERRORS | NOT_FOUND | UNPROCESSABLE | UNAVAILABLE,
)
async def post_sign_message(
    line_id: str,
    sign_id: str,
    body: SignMessageIn,
    network: NetworkDep,
    now: NowDep,
    intake: IntakeDep,
    latest: LatestStateDep,
    caller: Operator,
) -> SignMessagePosted:
    """Put an operator message on a sign (`pages: []` blanks it) until it expires or is cleared.

    While active it wins over riders' destinations; between operator messages the highest
    priority wins, then the newest. Text is fitted to the sign (upper case, no accents).
    """
    line = line_of(network, line_id)
    stop, spec = _sign(line, sign_id)
    message_id = f"op-{uuid.uuid4().hex[:12]}"
    expires_at = now + timedelta(minutes=body.expires_in_minutes)
    pages = tuple(tuple(row for row in page) for page in body.pages)
    event = OperatorMessagePosted(
        line.id, SignId(sign_id), message_id, pages, body.priority, expires_at
    )
    outcome = outcome_of(await intake.submit(event))
    if isinstance(outcome, Rejected):
        raise HTTPException(422, f"message refused: {outcome.detail}")
    log.info("operator.sign_message", operator=caller.name, sign=sign_id, blank=not pages)
    state, shown_at = latest()
    shown = sign_out(state, stop, spec, shown_at)
    message = next((m for m in shown.operator_messages if m.message_id == message_id), None)
    if message is None:
        raise HTTPException(409, "the message expired before it could be shown")
    return SignMessagePosted(sign=shown, message=message)


@router.delete(
    "/lines/{line_id}/signs/{sign_id}/messages/{message_id}",
    responses=AUTH_ERRORS | NOT_FOUND | CONFLICT | UNAVAILABLE,
)
async def clear_sign_message(
    line_id: str,
    sign_id: str,
    message_id: str,
    network: NetworkDep,
    intake: IntakeDep,
    latest: LatestStateDep,
    caller: Operator,
) -> SignOut:
    """Withdraw an operator message: the sign goes back to riders' destinations (or blank)."""
    line = line_of(network, line_id)
    stop, spec = _sign(line, sign_id)
    event = OperatorMessageCleared(line.id, SignId(sign_id), message_id)
    outcome = outcome_of(await intake.submit(event))
    if isinstance(outcome, Rejected):
        if outcome.reason is RejectionReason.UNKNOWN_MESSAGE:
            raise HTTPException(404, f"no active message {message_id!r} on sign {sign_id}")
        raise HTTPException(409, outcome.detail)
    log.info("operator.sign_message_cleared", operator=caller.name, sign=sign_id)
    state, shown_at = latest()
    return sign_out(state, stop, spec, shown_at)
