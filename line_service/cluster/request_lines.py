"""Pure: which line an HTTP request or a WebSocket concerns, for a cluster's door to hand it to
that line's owner. None: it concerns no single line (serve it where it landed).

Every route that changes or reads one line's live dispatch state, and how its line is found:

    /api/v1/lines/{line}/…  (any method; the live          the path: `{line}` if a line of the
      WebSocket /api/v1/lines/{line}/live/ws too)          network, else None (the local 404)
    GET /api/v1/requests?line_id={line}                     the query's `line_id` (else None)
    POST /api/v1/requests (rider app)                       the JSON body's `line_id` (the route
                                                            resolves the line by it alone)
    GET /api/v1/requests/{id}, POST …/{id}/cancel,          the stored request's line (lookup:
      …/{id}/fallback, …/{id}/arrived                       `line_of_request_id`)
    POST /sms/twilio (form: From, Body, MessageSid)         as the SMS channel would act:
      a ride asked ("CAL dunkerque", "J'ARRIVE …")          the asked stop's line (sms_gateway's
                                                            own parser)
      a driver's code ("4821", "CODE 4821")                 the first line (network order)
                                                            holding it (`lines_holding_code`)
      ANNULER, PARTI, ICI                                   the sender's live request's line
                                                            (lookup: `line_of_phone`, E.164)
      STOP, AIDE, NOM, MAJEUR, TRAJET, CGU, a stop with     None: they read no line's live state
      no (known) destination, unreadable text, no
      MessageSid, an invalid sender number
    POST /voice/twilio/destination?stop={stop}              the first line (network order) with
                                                            that stop, as the phone line looks
                                                            it up: the only step that places a
                                                            request, its stop in the URL
    everything else (other voice steps, the SMS status      None
      callback, accounts, trips, registry, open data,
      /api/v1/lines, health, metrics, the dashboard)

Cheap where it matters: `line_of_path` answers from the method, path and query alone (no body,
no database) for every route whose URL names its line, and says `Later` for the few that need
the body or a database read; `line_of_request` is then called in a worker thread (blocking: it
may call the lookup). `request_line` does both in one call. Hostile input never raises here:
garbage JSON or forms, wrong content types, huge numbers, unknown ids give None. A lookup's own
failure (the database down) is not hidden: it propagates, for the door to decide.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import parse_qsl

from dispatcher.model import LineId, Network, StopId
from sms_gateway import commands
from sms_gateway.phones import to_e164

API = "/api/v1/"
SMS_INBOUND_PATH = "/sms/twilio"  # line_service.sms.channel.INBOUND_PATH (not importable here)
VOICE_DESTINATION_PATH = "/voice/twilio/destination"  # line_service.voice.channel's
VOICE_QUERY_VALUE = 64  # line_service.voice.routes.MAX_QUERY_VALUE: the stop id as it reads it
REQUEST_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # what a request id can be (the column: 64)
REQUEST_ROUTES = frozenset({(), ("cancel",), ("fallback",), ("arrived",)})
FORM = "application/x-www-form-urlencoded"

RawHeaders = Iterable[tuple[bytes, bytes]]
"""ASGI's `scope["headers"]`."""


class RequestLines(Protocol):
    """The database reads the door may need (line_service/storage/request_lines.py)."""

    def line_of_request_id(self, request_id: str) -> LineId | None:
        """The line of this request, or None."""
        ...

    def lines_holding_code(self, code: str) -> list[LineId]:
        """The lines where a request holds this code now, in the network's order."""
        ...

    def line_of_phone(self, phone_e164: str) -> LineId | None:
        """The line of this number's live request (waiting or announced), or None."""
        ...


@dataclass(frozen=True, slots=True)
class Later:
    """The URL does not say: call `line_of_request` in a worker thread. `body`: whether it
    reads the body (else any, even b"", will do)."""

    body: bool


NEEDS_BODY = Later(body=True)
NEEDS_LOOKUP = Later(body=False)


def line_of_path(
    method: str, path: str, query_string: bytes | str, network: Network
) -> LineId | Later | None:
    """The line from the method, path (ASGI's, decoded) and query alone; `Later` when the
    body or the database is needed. A WebSocket's method is GET."""
    if path.startswith(API):
        rest = path[len(API) :].split("/")
        if rest[0] == "lines":
            return _known(network, rest[1]) if len(rest) > 1 else None
        if rest[0] != "requests":
            return None
        if len(rest) == 1:
            if method == "POST":
                return NEEDS_BODY
            return _known(network, _query(query_string).get("line_id")) if method == "GET" else None
        if REQUEST_ID.fullmatch(rest[1]) and tuple(rest[2:]) in REQUEST_ROUTES:
            return NEEDS_LOOKUP
        return None
    if method != "POST":
        return None
    if path == SMS_INBOUND_PATH:
        return NEEDS_BODY
    if path == VOICE_DESTINATION_PATH:
        return _line_with_stop(network, _query(query_string).get("stop", "")[:VOICE_QUERY_VALUE])
    return None


def line_of_request(
    method: str,
    path: str,
    query_string: bytes | str,
    headers: RawHeaders,
    body: bytes,
    network: Network,
    lookup: RequestLines,
) -> LineId | None:
    """The line this request concerns, or None (blocking: may call `lookup`)."""
    found = line_of_path(method, path, query_string, network)
    if not isinstance(found, Later):
        return found
    if path == SMS_INBOUND_PATH:
        form = _form(headers, body)
        return None if form is None else line_of_sms(form, network, lookup)
    rest = path[len(API) :].split("/")
    if len(rest) == 1:
        return _ride_line(headers, body, network)
    return _known(network, lookup.line_of_request_id(rest[1]))


async def request_line(
    method: str,
    path: str,
    query_string: bytes | str,
    headers: RawHeaders,
    body: bytes,
    network: Network,
    lookup: RequestLines,
) -> LineId | None:
    """The one call for the door's middleware: from the URL when it names the line, else
    `line_of_request` in a worker thread (the event loop never waits on the database)."""
    found = line_of_path(method, path, query_string, network)
    if not isinstance(found, Later):
        return found
    return await asyncio.to_thread(
        line_of_request, method, path, query_string, list(headers), body, network, lookup
    )


def line_of_sms(form: dict[str, str], network: Network, lookup: RequestLines) -> LineId | None:
    """The line an inbound SMS acts on, decided as `line_service.sms.channel` does: the
    sender's number first (an invalid one is answered from anywhere), then the parsed body."""
    if not (form.get("MessageSid") or form.get("SmsSid")):
        return None  # the route answers 400
    phone = to_e164(form.get("From", ""))
    if phone is None:
        return None
    command = commands.parse(form.get("Body", ""), network)
    match command:
        case commands.AskRide():
            return _known(network, command.line_id)
        case commands.DriverCode():
            found = (_known(network, held) for held in lookup.lines_holding_code(command.code))
            return next((line_id for line_id in found if line_id is not None), None)
        case commands.Cancel() | commands.Departed() | commands.Here():
            return _known(network, lookup.line_of_phone(phone))
        case _:
            return None


def _known(network: Network, line_id: object) -> LineId | None:
    """`line_id` when it names a line of the network, else None."""
    if not isinstance(line_id, str):
        return None
    line = network.line(LineId(line_id))
    return None if line is None else line.id


def _line_with_stop(network: Network, stop_id: str) -> LineId | None:
    """The first line having this stop id (ids are unique within a line only)."""
    having = (line.id for line in network.lines if line.stop(StopId(stop_id)) is not None)
    return next(having, None)


def _query(query_string: bytes | str) -> dict[str, str]:
    """The query's fields as Starlette reads them (the last of repeated names wins)."""
    text = query_string.decode("latin-1") if isinstance(query_string, bytes) else query_string
    return dict(parse_qsl(text, keep_blank_values=True))


def _content_type(headers: RawHeaders) -> str:
    """The media type (lower case, no parameters; "" when absent)."""
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.decode("latin-1").split(";", 1)[0].strip().lower()
    return ""


def _form(headers: RawHeaders, body: bytes) -> dict[str, str] | None:
    """A url-encoded form's fields as Starlette reads them, or None for another content type."""
    if _content_type(headers) != FORM:
        return None
    return dict(parse_qsl(body.decode("latin-1"), keep_blank_values=True))


def _ride_line(headers: RawHeaders, body: bytes, network: Network) -> LineId | None:
    """The line a rider app's JSON ask names. FastAPI reads a body as JSON when no content
    type is given or it is application/json or …+json; anything else is its 422."""
    media = _content_type(headers)
    json_media = media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
    if media and not json_media:
        return None
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # not JSON, not UTF-8, too deep, a 5,000-digit number
        return None
    return _known(network, data.get("line_id")) if isinstance(data, dict) else None
