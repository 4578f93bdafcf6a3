"""A cluster's door must know which line a request concerns, to hand it to that line's owner:
from the URL when it names the line (no database read), else from the body or the database —
and never fail on what a client sends."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.model import (
    Direction,
    DirectionId,
    Line,
    LineId,
    Network,
    SignId,
    Stop,
    StopId,
    TerminalId,
)
from dispatcher.request_machine import Cause, RequestState, RideRequest
from line_service.cluster.request_lines import (
    NEEDS_BODY,
    NEEDS_LOOKUP,
    SMS_INBOUND_PATH,
    VOICE_DESTINATION_PATH,
    VOICE_QUERY_VALUE,
    Later,
    RequestLines,
    line_of_path,
    line_of_request,
    request_line,
)
from line_service.network.lines_file import load_network
from line_service.storage.request_lines import RequestLineLookup
from line_service.storage.store import Store
from tests.support.requests import ride_request
from tests.support.service import REPO

NOW = datetime(2026, 11, 23, 6, 45, tzinfo=UTC)
SHIPPED = load_network(REPO / "config" / "lines.yaml")
A = SHIPPED.lines[0]
RIDER = "+33612345601"
DRIVER = "+33698765432"
FORM = [(b"content-type", b"application/x-www-form-urlencoded")]
JSON = [(b"content-type", b"application/json")]


def _twin(line: Line, prefix: str) -> Line:
    """The line again under other ids and stop codes ("MRK" -> "BMRK"), same stop names."""

    def stop(s: Stop) -> Stop:
        return replace(
            s,
            id=StopId(prefix + s.id),
            code="B" + s.code,
            terminal=None if s.terminal is None else TerminalId(prefix + s.terminal),
            signs=tuple(replace(sign, id=SignId(prefix + sign.id)) for sign in s.signs),
        )

    directions = tuple(
        replace(d, id=DirectionId(prefix + d.id), stops=tuple(stop(s) for s in d.stops))
        for d in line.directions
    )
    return replace(
        line, id=LineId(prefix + line.id), name=line.name + " (bis)", directions=directions
    )


B = _twin(A, "b-")
NETWORK = Network((A, B))


@dataclass
class FakeLines:
    """The lookup, from dicts; remembers every read."""

    requests: dict[str, LineId] = field(default_factory=dict)
    codes: dict[str, list[LineId]] = field(default_factory=dict)
    phones: dict[str, LineId] = field(default_factory=dict)
    reads: list[str] = field(default_factory=list)

    def line_of_request_id(self, request_id: str) -> LineId | None:
        self.reads.append(f"request {request_id}")
        return self.requests.get(request_id)

    def lines_holding_code(self, code: str) -> list[LineId]:
        self.reads.append(f"code {code}")
        return self.codes.get(code, [])

    def line_of_phone(self, phone_e164: str) -> LineId | None:
        self.reads.append(f"phone {phone_e164}")
        return self.phones.get(phone_e164)


def sms(body: str, sender: str = RIDER, sid: str = "SM0001") -> bytes:
    return urlencode(
        {"MessageSid": sid, "From": sender, "Body": body, "To": "+33700000000"}
    ).encode()


def ask(
    method: str,
    path: str,
    lookup: RequestLines,
    *,
    query: str = "",
    headers: list[tuple[bytes, bytes]] | None = None,
    body: bytes = b"",
) -> LineId | None:
    return line_of_request(method, path, query.encode(), headers or [], body, NETWORK, lookup)


# --- the URL names the line -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/lines/{line}"),
        ("GET", "/api/v1/lines/{line}/live"),
        ("GET", "/api/v1/lines/{line}/live/ws"),  # the dashboard's WebSocket
        ("POST", "/api/v1/lines/{line}/validations"),
        ("POST", "/api/v1/lines/{line}/signs/pmv-marck-est-1/messages"),
        ("DELETE", "/api/v1/lines/{line}/signs/pmv-marck-est-1/messages/op-1"),
        ("POST", "/api/v1/lines/{line}/driver-trips"),
        ("GET", "/api/v1/lines/{line}/stops/marck-est/wait-estimates"),
        ("GET", "/api/v1/lines/{line}/alerts"),
    ],
)
@pytest.mark.parametrize("line", [A, B], ids=["A", "B"])
def test_a_url_naming_a_line_goes_to_that_line_without_a_database_read(
    method: str, path: str, line: Line
) -> None:
    lookup = FakeLines()
    url = path.format(line=line.id)
    assert line_of_path(method, url, b"", NETWORK) == line.id
    assert ask(method, url, lookup, body=b"\xff garbage") == line.id
    assert lookup.reads == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/lines/no-such-line",
        "/api/v1/lines/no-such-line/live/ws",
        "/api/v1/lines/",
        "/api/v1/lines",  # every line: served anywhere
        "/api/v1/lines/calais-dunkerque\x00",
        "/api/v1/lines/" + "x" * 10_000,
    ],
)
def test_an_unknown_line_in_the_url_is_served_where_it_landed(path: str) -> None:
    assert ask("GET", path, FakeLines()) is None


def test_the_list_of_requests_filtered_by_a_line_goes_to_that_line() -> None:
    lookup = FakeLines()
    assert ask("GET", "/api/v1/requests", lookup, query=f"line_id={B.id}&limit=5") == B.id
    assert ask("GET", "/api/v1/requests", lookup, query="limit=5") is None
    assert ask("GET", "/api/v1/requests", lookup, query="line_id=nope") is None
    assert lookup.reads == []


# --- the rider app's ask: its JSON body names the line -----------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        JSON,
        [],  # FastAPI reads a body without content type as JSON
        [(b"Content-Type", b"application/json; charset=utf-8")],
        [(b"content-type", b"application/vnd.carpool+json")],
    ],
)
def test_a_rider_app_ask_goes_to_the_line_its_body_names(
    headers: list[tuple[bytes, bytes]],
) -> None:
    body = json.dumps({"line_id": B.id, "stop_id": "b-marck-est", "destination_id": "x"})
    lookup = FakeLines()
    assert line_of_path("POST", "/api/v1/requests", b"", NETWORK) == NEEDS_BODY
    assert ask("POST", "/api/v1/requests", lookup, headers=headers, body=body.encode()) == B.id
    assert lookup.reads == []


@pytest.mark.parametrize(
    ("headers", "body"),
    [
        (JSON, b""),
        (JSON, b"{"),
        (JSON, b"\xff\xfe\x00garbage"),
        (JSON, b'["calais-dunkerque"]'),
        (JSON, b'{"line_id": 12}'),
        (JSON, b'{"line_id": ["calais-dunkerque"]}'),
        (JSON, b'{"line_id": null}'),
        (JSON, b'{"line_id": "no-such-line"}'),
        (JSON, b'{"stop_id": "marck-est"}'),
        (JSON, b'{"line_id": 1' + b"0" * 5000 + b"}"),  # past Python's digits limit
        (JSON, b"[" * 100_000),  # deeper than the parser recurses
        ([(b"content-type", b"text/plain")], b'{"line_id": "calais-dunkerque"}'),  # FastAPI: 422
        (FORM, b"line_id=calais-dunkerque"),
    ],
)
def test_an_unreadable_or_unknown_ask_is_served_where_it_landed(
    headers: list[tuple[bytes, bytes]], body: bytes
) -> None:
    assert ask("POST", "/api/v1/requests", FakeLines(), headers=headers, body=body) is None


# --- routes naming a request: its stored line ---------------------------------------------------


@pytest.mark.parametrize(
    ("method", "tail"),
    [("GET", ""), ("POST", "/cancel"), ("POST", "/fallback"), ("POST", "/arrived")],
)
def test_a_route_naming_a_request_goes_to_the_request_line(method: str, tail: str) -> None:
    lookup = FakeLines(requests={"3f2a9c": B.id, "gone": LineId("removed-line")})
    assert line_of_path(method, f"/api/v1/requests/3f2a9c{tail}", b"", NETWORK) == NEEDS_LOOKUP
    assert ask(method, f"/api/v1/requests/3f2a9c{tail}", lookup) == B.id
    assert ask(method, f"/api/v1/requests/unknown{tail}", lookup) is None
    assert ask(method, f"/api/v1/requests/gone{tail}", lookup) is None  # a line no longer served


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/requests/3f2a\x00/cancel",
        "/api/v1/requests/" + "a" * 65 + "/cancel",
        "/api/v1/requests/3f2a9c/cancel/",  # redirected by the app: then asked again
        "/api/v1/requests/3f2a9c/delete",
        "/api/v1/requests//cancel",
        "/api/v1/requests/é/cancel",
    ],
)
def test_a_request_route_with_a_hostile_id_reads_nothing(path: str) -> None:
    lookup = FakeLines(requests={"3f2a9c": B.id})
    assert ask("POST", path, lookup) is None
    assert lookup.reads == []


# --- the phone line: only the destination step places a request, its stop in the URL ----------


def test_the_phone_line_destination_step_goes_to_the_line_of_its_stop() -> None:
    assert line_of_path("POST", VOICE_DESTINATION_PATH, b"stop=b-marck-est&try=1", NETWORK) == B.id
    assert line_of_path("POST", VOICE_DESTINATION_PATH, b"try=2&stop=marck-est", NETWORK) == A.id
    assert line_of_path("POST", VOICE_DESTINATION_PATH, b"stop=nowhere", NETWORK) is None
    assert line_of_path("POST", VOICE_DESTINATION_PATH, b"", NETWORK) is None
    # The route keeps the first 64 characters of a query value, and looks that stop up.
    long_id = "s" * VOICE_QUERY_VALUE
    far = replace(A, id=LineId("far"), directions=(_direction_with(StopId(long_id)),))
    network = Network((A, far))
    query = f"stop={long_id}tail".encode()
    assert line_of_path("POST", VOICE_DESTINATION_PATH, query, network) == LineId("far")


def _direction_with(stop_id: StopId) -> Direction:
    direction = A.directions[0]
    return replace(direction, stops=(replace(direction.stops[0], id=stop_id), *direction.stops[1:]))


def test_a_stop_id_of_two_lines_goes_to_the_first_as_the_phone_line_picks_it() -> None:
    same_ids = replace(A, id=LineId("twin"))
    network = Network((same_ids, A))
    assert line_of_path("POST", VOICE_DESTINATION_PATH, b"stop=marck-est", network) == "twin"


@pytest.mark.parametrize(
    "path", ["/voice/twilio", "/voice/twilio/stop", "/voice/twilio/which-stop"]
)
def test_the_other_phone_line_steps_are_served_where_they_land(path: str) -> None:
    form = urlencode({"CallSid": "CA1", "From": RIDER, "Digits": "225"}).encode()
    assert ask("POST", path, FakeLines(), query="try=1&keys=225", headers=FORM, body=form) is None


# --- SMS: as the channel would act ---------------------------------------------------------------


def test_an_sms_asking_a_ride_goes_to_the_asked_stop_line() -> None:
    lookup = FakeLines()
    assert ask("POST", SMS_INBOUND_PATH, lookup, headers=FORM, body=sms("MRK dunkerque")) == A.id
    assert ask("POST", SMS_INBOUND_PATH, lookup, headers=FORM, body=sms("bmrk dunk")) == B.id
    coming = sms("J'arrive BMRK Dunkerque 10")
    assert ask("POST", SMS_INBOUND_PATH, lookup, headers=FORM, body=coming) == B.id
    assert lookup.reads == []


@pytest.mark.parametrize(
    "body",
    [
        "STOP",
        "stop sms",
        "AIDE",
        "",
        "NOM Dupont",
        "MAJEUR OUI",
        "TRAJET 4821",
        "CGU",
        "XYZ abc",
        "BMRK",
        "BMRK nowhere-at-all",
        "bonjour",
    ],
)
def test_an_sms_about_no_line_is_served_where_it_landed(body: str) -> None:
    lookup = FakeLines(codes={"4821": [B.id]}, phones={RIDER: B.id})
    assert ask("POST", SMS_INBOUND_PATH, lookup, headers=FORM, body=sms(body)) is None
    assert lookup.reads == []


def test_an_sms_from_an_invalid_number_or_without_its_sid_is_served_where_it_landed() -> None:
    lookup = FakeLines(phones={RIDER: B.id})
    no_sid = urlencode({"From": RIDER, "Body": "BMRK dunkerque"}).encode()
    assert ask("POST", SMS_INBOUND_PATH, lookup, headers=FORM, body=no_sid) is None
    bad = sms("ANNULER", sender="not a number")
    assert ask("POST", SMS_INBOUND_PATH, lookup, headers=FORM, body=bad) is None
    plain = [(b"content-type", b"text/plain")]
    assert ask("POST", SMS_INBOUND_PATH, lookup, headers=plain, body=sms("BMRK dunk")) is None
    assert ask("POST", "/sms/twilio/status", lookup, headers=FORM, body=sms("x")) is None
    assert lookup.reads == []


# --- SMS and request routes on a real database (SQLite and PostgreSQL) ---------------------------


def _save(store: Store, *requests: RideRequest) -> None:
    store.save([(request, None) for request in requests])


def _lookup(store: Store, network: Network = NETWORK) -> RequestLineLookup:
    return RequestLineLookup(store.engine, network, lambda: NOW + timedelta(minutes=1))


FALLBACK = (RequestState.FALLBACK, Cause.GUARANTEE_REACHED)


def ended(request: RideRequest, state: RequestState, cause: Cause) -> RideRequest:
    """The request in another state (a taxi called, cancelled…)."""
    return replace(request, state=state, cause=cause)


def on_b(request_id: str, at: datetime = NOW, **fields: Any) -> RideRequest:
    """A request on line B (at B's Marck, for B's Dunkerque)."""
    return ride_request(
        request_id, at, line=B.id, stop="b-marck-est", destination="b-dunkerque-est", **fields
    )


def test_a_driver_code_goes_to_the_line_whose_rider_holds_it(store: Store) -> None:
    lookup = _lookup(store)
    _save(
        store,
        on_b("on-b", code="4821", phone=RIDER),
        # A taxi call of two hours ago on A: its row keeps the code, the engine forgot it.
        ended(ride_request("old-taxi-a", NOW - timedelta(hours=2), code="4821"), *FALLBACK),
        # A taxi call of ten minutes ago on B: a late driver may still send its code.
        ended(on_b("taxi-b", NOW - timedelta(minutes=10), code="7777"), *FALLBACK),
        ride_request("done-a", NOW, state=RequestState.PICKED_UP, cause=Cause.CODE_VALIDATED,
                     code="1111"),
    )  # fmt: skip
    for text in ("4821", "code 4821", "7777"):
        assert ask("POST", SMS_INBOUND_PATH, lookup, headers=FORM, body=sms(text, DRIVER)) == B.id
    for text in ("1111", "9999"):
        assert ask("POST", SMS_INBOUND_PATH, lookup, headers=FORM, body=sms(text, DRIVER)) is None
    assert lookup.lines_holding_code("4821") == [B.id]


def test_a_taxi_call_holds_its_code_as_long_as_its_line_keeps_it(store: Store) -> None:
    hurried = replace(B, tuning=replace(B.tuning, max_wait=timedelta(minutes=10)))
    lookup = _lookup(store, Network((A, hurried)))  # B forgets a taxi call after 20 minutes
    _save(
        store,
        ended(ride_request("taxi-a", NOW - timedelta(minutes=30), code="4821"), *FALLBACK),
        ended(on_b("taxi-b", NOW - timedelta(minutes=30), code="7777"), *FALLBACK),
    )
    assert lookup.lines_holding_code("4821") == [A.id]
    assert lookup.lines_holding_code("7777") == []


def test_a_code_held_on_two_lines_goes_to_the_first_of_the_network(store: Store) -> None:
    _save(store, on_b("on-b", code="5555"), ride_request("on-a", NOW, code="5555"))
    assert _lookup(store).lines_holding_code("5555") == [A.id, B.id]
    lookup = _lookup(store, Network((B, A)))
    assert lookup.lines_holding_code("5555") == [B.id, A.id]
    assert ask("POST", SMS_INBOUND_PATH, lookup, headers=FORM, body=sms("5555", DRIVER)) == B.id


@pytest.mark.parametrize("text", ["ANNULER", "annule", "PARTI"])
def test_a_rider_cancel_goes_to_the_line_of_their_waiting_request(store: Store, text: str) -> None:
    lookup = _lookup(store)
    cancelled = (RequestState.CANCELLED, Cause.RIDER_CANCELLED)
    _save(
        store,
        ended(ride_request("old-a", NOW - timedelta(hours=2), phone=RIDER), *cancelled),
        on_b("on-b", phone=RIDER),
        ride_request("other-a", NOW, phone="+33612345699", code="1234"),
    )
    assert ask("POST", SMS_INBOUND_PATH, lookup, headers=FORM, body=sms(text)) == B.id
    nobody = sms(text, sender="+33612345698")
    assert ask("POST", SMS_INBOUND_PATH, lookup, headers=FORM, body=nobody) is None


def test_a_rider_here_goes_to_the_line_they_announced_themselves_on(store: Store) -> None:
    lookup = _lookup(store)
    announced = (RequestState.ANNOUNCED, Cause.RIDER_ANNOUNCED)
    _save(store, ended(on_b("coming-b", phone=RIDER), *announced))
    # The sender's number as Twilio writes it, or as a French rider would: E.164 either way.
    assert ask("POST", SMS_INBOUND_PATH, lookup, headers=FORM, body=sms("ICI")) == B.id
    local = sms("ici", sender="06 12 34 56 01")
    assert ask("POST", SMS_INBOUND_PATH, lookup, headers=FORM, body=local) == B.id


def test_the_lookup_finds_the_newest_live_request_of_a_number(store: Store) -> None:
    lookup = _lookup(store)
    _save(
        store,
        ride_request("z-first-a", NOW, phone=RIDER),  # ids in the other order than asks
        on_b("a-then-b", phone=RIDER, created_at=NOW + timedelta(minutes=1)),
        ended(ride_request("taxi-a", NOW + timedelta(minutes=2), phone=RIDER), *FALLBACK),
    )
    assert lookup.line_of_phone(RIDER) == B.id  # a taxi call is no longer the rider's to cancel
    assert lookup.line_of_phone(DRIVER) is None


def test_a_route_naming_a_stored_request_goes_to_its_line(store: Store) -> None:
    lookup = _lookup(store)
    expired = (RequestState.EXPIRED, Cause.DEADLINE_REACHED)
    _save(store, on_b("9b1f0c"), ended(ride_request("done", NOW), *expired))
    assert ask("POST", "/api/v1/requests/9b1f0c/cancel", lookup) == B.id
    assert ask("GET", "/api/v1/requests/done", lookup) == A.id  # its history: on its line
    assert ask("POST", "/api/v1/requests/unknown/arrived", lookup) is None


async def test_the_door_gets_the_line_in_one_call(store: Store) -> None:
    lookup = _lookup(store)
    _save(store, on_b("on-b", phone=RIDER))
    ws = await request_line("GET", f"/api/v1/lines/{A.id}/live/ws", b"", [], b"", NETWORK, lookup)
    assert ws == A.id
    form = sms("ANNULER")
    assert await request_line("POST", SMS_INBOUND_PATH, b"", FORM, form, NETWORK, lookup) == B.id


# --- every route of the service is classified ---------------------------------------------------

# Routes whose URL does not name a line and that read no line's live state.
NO_LINE = {
    ("GET", "/healthz"), ("GET", "/readyz"), ("GET", "/metrics"),
    ("POST", "/api/v1/auth/otp"), ("POST", "/api/v1/auth/token"), ("DELETE", "/api/v1/auth/token"),
    ("GET", "/api/v1/me"), ("GET", "/api/v1/me/attestation"), ("GET", "/api/v1/lines"),
    ("GET", "/api/v1/trips"), ("POST", "/api/v1/trips/{trip_id}/review"),
    ("GET", "/api/v1/rpc/journeys"), ("GET", "/api/v1/rpc/counts"),
    ("POST", "/api/v1/rpc/journeys/{journey_id}/cancel"),
    ("GET", "/gtfs.zip"), ("GET", "/standard-covoiturage/driver_journeys"),
    ("GET", "/standard-covoiturage/status"),
    ("POST", "/sms/twilio/status"),
    ("POST", "/voice/twilio"), ("POST", "/voice/twilio/stop"), ("POST", "/voice/twilio/which-stop"),
    ("GET", "/api/v1/requests"),  # without ?line_id=: every line
}  # fmt: skip
NEEDS_MORE = {
    ("POST", "/api/v1/requests"): NEEDS_BODY,
    ("POST", "/sms/twilio"): NEEDS_BODY,
}


def test_every_route_of_the_service_is_classified(tmp_path: Path) -> None:
    from line_service.app import create_app
    from line_service.settings import Settings
    from line_service.sms.channel import INBOUND_PATH, STATUS_PATH
    from line_service.voice import routes
    from line_service.voice.channel import DESTINATION_PATH

    assert (SMS_INBOUND_PATH, VOICE_DESTINATION_PATH) == (INBOUND_PATH, DESTINATION_PATH)
    assert VOICE_QUERY_VALUE == routes.MAX_QUERY_VALUE
    assert ("POST", STATUS_PATH) in NO_LINE
    settings_ = Settings(
        lines_file=REPO / "config" / "lines.yaml",
        database_url=f"sqlite:///{tmp_path}/carpool.sqlite3",
        mqtt_url="mqtt://127.0.0.1:1",
    )
    paths = create_app(settings_).openapi()["paths"]
    seen: set[tuple[str, str]] = set()
    for template, operations in paths.items():
        for method in (name.upper() for name in operations):
            seen.add((method, template))
            url = template.replace("{line_id}", A.id).replace("{request_id}", "3f2a9c")
            found = line_of_path(method, url, b"", SHIPPED)
            if "{line_id}" in template:
                expected: LineId | Later | None = A.id
            elif "{request_id}" in template:
                expected = NEEDS_LOOKUP
            elif template == VOICE_DESTINATION_PATH:
                expected = None  # no ?stop= (the step's URL carries it: tested above)
            elif (method, template) in NEEDS_MORE:
                expected = NEEDS_MORE[(method, template)]
            else:
                assert (method, template) in NO_LINE, f"{method} {template}: which line?"
                expected = None
            assert found == expected, f"{method} {template}"
    assert seen >= NO_LINE, "a route listed here no longer exists"


# --- nothing a client sends makes it fail --------------------------------------------------------

ROUTES = ["/api/v1/requests", SMS_INBOUND_PATH, "/api/v1/requests/3f2a9c/cancel", "/api/v1/lines"]
CONTENT_TYPES = st.sampled_from(
    [None, "application/json", "application/x-www-form-urlencoded", "text/plain", "", "\xff;;"]
)
LINES = {None, A.id, B.id}
FUZZ_LOOKUP = FakeLines(requests={"3f2a9c": B.id}, codes={"4821": [B.id]}, phones={RIDER: A.id})


def _headers(content_type: str | None) -> list[tuple[bytes, bytes]]:
    return [] if content_type is None else [(b"content-type", content_type.encode("latin-1"))]


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "DELETE"]),
    path=st.sampled_from(ROUTES),
    content_type=CONTENT_TYPES,
    body=st.binary(max_size=2000),
)
def test_random_bytes_never_fail(
    method: str, path: str, content_type: str | None, body: bytes
) -> None:
    assert ask(method, path, FUZZ_LOOKUP, headers=_headers(content_type), body=body) in LINES


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["line_id", "stop_id", "x"]) | st.text(max_size=5), children
        )
    ),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(data=JSON_VALUES, line_id=st.sampled_from([A.id, B.id, "nope", ""]) | st.text(max_size=70))
def test_random_json_asks_never_fail(data: object, line_id: str) -> None:
    for value in (data, {"line_id": line_id, "extra": data}):
        body = json.dumps(value).encode()
        found = ask("POST", "/api/v1/requests", FUZZ_LOOKUP, headers=JSON, body=body)
        assert found in LINES
        if value == {"line_id": line_id, "extra": data}:
            assert found == (line_id if line_id in (A.id, B.id) else None)


@settings(max_examples=300, deadline=None)
@given(
    fields=st.dictionaries(
        st.sampled_from(["MessageSid", "SmsSid", "From", "Body", "To"]) | st.text(max_size=8),
        st.text(max_size=200),
    ),
    body=st.text(max_size=200)
    | st.sampled_from(["4821", "ANNULER", "ICI", "BMRK dunk", "MRK 4821", "STOP"]),
    sender=st.sampled_from([RIDER, DRIVER, "", "+1", "0612345601"]) | st.text(max_size=20),
)
def test_random_sms_never_fail(fields: dict[str, str], body: str, sender: str) -> None:
    form = urlencode({**fields, "MessageSid": "SM1", "From": sender, "Body": body}).encode()
    for raw in (form, urlencode(fields).encode()):
        assert ask("POST", SMS_INBOUND_PATH, FUZZ_LOOKUP, headers=FORM, body=raw) in LINES


@settings(max_examples=300, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT"]),
    path=st.sampled_from(
        ["/api/v1/", "/api/v1/lines/", "/api/v1/requests/", "/voice/twilio/", "/"]
    ).flatmap(lambda prefix: st.text(max_size=80).map(lambda rest: prefix + rest)),
    query=st.binary(max_size=200),
)
def test_random_urls_never_fail(method: str, path: str, query: bytes) -> None:
    found = line_of_path(method, path, query, NETWORK)
    assert found in LINES or isinstance(found, Later)
    assert line_of_request(method, path, query, [], b"", NETWORK, FUZZ_LOOKUP) in LINES


def test_the_codes_held_on_other_processes_lines_are_the_ones_a_process_must_not_give(
    store: Store,
) -> None:
    _save(
        store,
        on_b("on-b", code="4821"),
        ended(on_b("taxi-b", NOW - timedelta(minutes=10), code="7777"), *FALLBACK),
        ended(on_b("old-taxi-b", NOW - timedelta(hours=3), code="3333"), *FALLBACK),
        ride_request("on-a", NOW, code="5555"),
        ride_request("done-a", NOW, state=RequestState.PICKED_UP, cause=Cause.CODE_VALIDATED,
                     code="1111"),
    )  # fmt: skip
    lookup = _lookup(store)
    assert lookup.codes_held_elsewhere([A.id]) == {"4821", "7777"}  # B's, held now
    assert lookup.codes_held_elsewhere([B.id]) == {"5555"}
    assert lookup.codes_held_elsewhere([A.id, B.id]) == frozenset()
