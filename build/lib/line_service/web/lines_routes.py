"""Adapter: REST routes on lines — configuration and live state, stops, signs, terminals."""

from __future__ import annotations

import uuid
from datetime import timedelta

import structlog
from fastapi import APIRouter, HTTPException, status

from dispatcher.effects import RejectionReason
from dispatcher.events import OperatorMessageCleared, OperatorMessagePosted
from dispatcher.model import Direction, Line, LineId, SignId, SignSpec, Stop
from line_service.runtime import Runtime
from line_service.web.auth import Operator, Viewer
from line_service.web.models import (
    AlertOut,
    LineOut,
    LineSummaryOut,
    PrincipalOut,
    Problem,
    SignMessageIn,
    SignMessagePosted,
    SignOut,
    StopOut,
    TerminalOut,
)
from line_service.web.operator_accounts import Role
from line_service.web.public_routes import RuntimeDep, rejection, submit
from line_service.web.requests_routes import AUTH_ERRORS, CONFLICT, NOT_FOUND
from line_service.web.views import alerts_out, line_out, line_summary, sign_out, stop_out

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v1", tags=["lines"])
UNPROCESSABLE: dict[int | str, dict[str, object]] = {422: {"model": Problem}}


def _line(runtime: Runtime, line_id: str) -> Line:
    line = runtime.network.line(LineId(line_id))
    if line is None:
        raise HTTPException(404, f"unknown line {line_id!r}")
    return line


def _stops(line: Line) -> list[tuple[Direction, Stop]]:
    return [(direction, stop) for direction in line.directions for stop in direction.stops]


def _sign(line: Line, sign_id: str) -> tuple[Stop, SignSpec]:
    for _direction, stop in _stops(line):
        for spec in stop.signs:
            if spec.id == sign_id:
                return stop, spec
    raise HTTPException(404, f"unknown sign {sign_id!r} on {line.id}")


@router.get("/me", responses=AUTH_ERRORS)
async def whoami(caller: Viewer) -> PrincipalOut:
    """Who the token belongs to, and its role."""
    return PrincipalOut(name=caller.name, role=caller.role.value)


@router.get("/lines", responses=AUTH_ERRORS)
async def list_lines(runtime: RuntimeDep, _caller: Viewer) -> list[LineSummaryOut]:
    """Every line served here."""
    now = runtime.clock()
    return [line_summary(line, runtime.engine.state, now) for line in runtime.network.lines]


@router.get("/lines/{line_id}", responses=AUTH_ERRORS | NOT_FOUND)
async def get_line(line_id: str, runtime: RuntimeDep, caller: Viewer) -> LineOut:
    """A line's configuration and live state (the dashboard's whole picture)."""
    line = _line(runtime, line_id)
    with_phone = caller.role.allows(Role.OPERATOR)
    return line_out(line, runtime.engine.state, runtime.clock(), with_phone)


@router.get("/lines/{line_id}/stops", responses=AUTH_ERRORS | NOT_FOUND)
async def list_stops(line_id: str, runtime: RuntimeDep, _caller: Viewer) -> list[StopOut]:
    """Stops of every direction, in travel order."""
    line = _line(runtime, line_id)
    now, state = runtime.clock(), runtime.engine.state
    return [stop_out(state, direction, stop, now) for direction, stop in _stops(line)]


@router.get("/lines/{line_id}/stops/{stop_id}", responses=AUTH_ERRORS | NOT_FOUND)
async def get_stop(line_id: str, stop_id: str, runtime: RuntimeDep, _caller: Viewer) -> StopOut:
    """One stop with its terminal and signs."""
    line = _line(runtime, line_id)
    for direction, stop in _stops(line):
        if stop.id == stop_id:
            return stop_out(runtime.engine.state, direction, stop, runtime.clock())
    raise HTTPException(404, f"unknown stop {stop_id!r} on {line_id}")


@router.get("/lines/{line_id}/signs", responses=AUTH_ERRORS | NOT_FOUND)
async def list_signs(line_id: str, runtime: RuntimeDep, _caller: Viewer) -> list[SignOut]:
    """Every sign: what it was asked to show, what it reported, online, operator messages."""
    line = _line(runtime, line_id)
    now, state = runtime.clock(), runtime.engine.state
    return [sign_out(state, stop, spec, now) for _d, stop in _stops(line) for spec in stop.signs]


@router.get("/lines/{line_id}/signs/{sign_id}", responses=AUTH_ERRORS | NOT_FOUND)
async def get_sign(line_id: str, sign_id: str, runtime: RuntimeDep, _caller: Viewer) -> SignOut:
    """One sign."""
    stop, spec = _sign(_line(runtime, line_id), sign_id)
    return sign_out(runtime.engine.state, stop, spec, runtime.clock())


@router.get("/lines/{line_id}/terminals", responses=AUTH_ERRORS | NOT_FOUND)
async def list_terminals(line_id: str, runtime: RuntimeDep, _caller: Viewer) -> list[TerminalOut]:
    """Every terminal: online, and what its screen says."""
    line = _line(runtime, line_id)
    state = runtime.engine.state
    found = (stop_out(state, d, stop, runtime.clock()).terminal for d, stop in _stops(line))
    return [terminal for terminal in found if terminal is not None]


@router.get("/lines/{line_id}/terminals/{terminal_id}", responses=AUTH_ERRORS | NOT_FOUND)
async def get_terminal(
    line_id: str, terminal_id: str, runtime: RuntimeDep, caller: Viewer
) -> TerminalOut:
    """One terminal."""
    for terminal in await list_terminals(line_id, runtime, caller):
        if terminal.id == terminal_id:
            return terminal
    raise HTTPException(404, f"unknown terminal {terminal_id!r} on {line_id}")


@router.get("/lines/{line_id}/alerts", responses=AUTH_ERRORS | NOT_FOUND)
async def list_alerts(line_id: str, runtime: RuntimeDep, _caller: Viewer) -> list[AlertOut]:
    """Devices offline, signs showing something else than asked, riders near their guarantee."""
    return alerts_out(_line(runtime, line_id), runtime.engine.state, runtime.clock())


@router.post(
    "/lines/{line_id}/signs/{sign_id}/messages",
    status_code=status.HTTP_201_CREATED,
    responses=AUTH_ERRORS | NOT_FOUND | UNPROCESSABLE,
)
async def post_sign_message(
    line_id: str, sign_id: str, body: SignMessageIn, runtime: RuntimeDep, caller: Operator
) -> SignMessagePosted:
    """Put an operator message on a sign (`pages: []` blanks it) until it expires or is cleared.

    While active it wins over riders' destinations; between operator messages the highest
    priority wins, then the newest. Text is fitted to the sign (upper case, no accents).
    """
    line = _line(runtime, line_id)
    stop, spec = _sign(line, sign_id)
    message_id = f"op-{uuid.uuid4().hex[:12]}"
    expires_at = runtime.clock() + timedelta(minutes=body.expires_in_minutes)
    pages = tuple(tuple(row for row in page) for page in body.pages)
    event = OperatorMessagePosted(
        line.id, SignId(sign_id), message_id, pages, body.priority, expires_at
    )
    rejected = rejection(await submit(runtime, event))
    if rejected is not None:
        raise HTTPException(422, f"message refused: {rejected.detail}")
    log.info("operator.sign_message", operator=caller.name, sign=sign_id, blank=not pages)
    shown = sign_out(runtime.engine.state, stop, spec, runtime.clock())
    message = next((m for m in shown.operator_messages if m.message_id == message_id), None)
    if message is None:
        raise HTTPException(409, "the message expired before it could be shown")
    return SignMessagePosted(sign=shown, message=message)


@router.delete(
    "/lines/{line_id}/signs/{sign_id}/messages/{message_id}",
    responses=AUTH_ERRORS | NOT_FOUND | CONFLICT,
)
async def clear_sign_message(
    line_id: str, sign_id: str, message_id: str, runtime: RuntimeDep, caller: Operator
) -> SignOut:
    """Withdraw an operator message: the sign goes back to riders' destinations (or blank)."""
    line = _line(runtime, line_id)
    stop, spec = _sign(line, sign_id)
    event = OperatorMessageCleared(line.id, SignId(sign_id), message_id)
    rejected = rejection(await submit(runtime, event))
    if rejected is not None:
        if rejected.reason is RejectionReason.UNKNOWN_MESSAGE:
            raise HTTPException(404, f"no active message {message_id!r} on sign {sign_id}")
        raise HTTPException(409, rejected.detail)
    log.info("operator.sign_message_cleared", operator=caller.name, sign=sign_id)
    return sign_out(runtime.engine.state, stop, spec, runtime.clock())
