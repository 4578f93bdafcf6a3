"""The any-door's decisions (line_service/cluster/door.py): pure, no process, no network; and
the settings and warnings around them."""

from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError
from starlette.types import Receive, Scope, Send
from structlog.testing import capture_logs

from line_service.cluster.door import (
    FORWARDED_BY,
    Forward,
    Refuse,
    Serve,
    Toward,
    answer_headers,
    destination,
    forward_headers,
    route,
    socket_headers,
    unreachable,
)
from line_service.settings import Settings
from line_service.web.cluster_door import ClusterDoor, OwnerDoor

OWNER = "dispatcher-a"


LINE = "calais-dunkerque"


def test_a_line_s_owner_serves_its_requests_itself() -> None:
    assert route("/api/v1/lines/x/live", LINE, True, False, None) == Serve()
    assert route("/api/v1/lines/x/live", LINE, True, True, OWNER) == Serve()  # forwarded once


def test_health_metrics_and_requests_about_no_line_are_served_where_they_land() -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert route(path, LINE, False, False, OWNER) == Serve()
    for path in ("/", "/api/v1/auth/otp", "/docs", "/gtfs/feed.zip"):
        assert route(path, None, False, False, OWNER) == Serve()


def test_a_request_about_a_line_owned_elsewhere_goes_to_its_owner() -> None:
    for path in ("/api/v1/requests", "/sms/twilio", f"/api/v1/lines/{LINE}/live/ws"):
        assert route(path, LINE, False, False, OWNER) == Toward(OWNER)


def test_a_forwarded_request_is_never_forwarded_again() -> None:
    refused = route("/api/v1/requests", LINE, False, True, OWNER)
    assert isinstance(refused, Refuse)
    assert refused.retry_after == 1
    assert f"does not dispatch line {LINE!r}" in refused.detail


def test_without_an_owner_or_its_address_a_standby_refuses_and_says_why() -> None:
    unknown = route("/api/v1/requests", LINE, False, False, None)
    assert isinstance(unknown, Refuse)
    assert f"no process dispatches line {LINE!r}" in unknown.detail
    unrecorded = destination(OWNER, None)
    assert isinstance(unrecorded, Refuse)
    assert OWNER in unrecorded.detail
    assert destination(OWNER, "http://127.0.0.7:8000/") == Forward(OWNER, "http://127.0.0.7:8000")
    down = unreachable(OWNER, "http://127.0.0.7:8000", "ConnectError")
    assert OWNER in down.detail
    assert "ConnectError" in down.detail
    assert down.retry_after == 1


def test_forwarded_headers_keep_what_matters_and_append_the_client() -> None:
    given = [
        ("Host", "carpool.example"),
        ("Authorization", "Bearer t"),
        ("X-Twilio-Signature", "abc="),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("Content-Length", "12"),
        ("Connection", "keep-alive, X-Private"),
        ("X-Private", "hop"),
        ("Transfer-Encoding", "chunked"),
        ("X-Forwarded-For", "198.51.100.1"),
        ("X-Forwarded-For", "203.0.113.2"),
        (FORWARDED_BY, "spoofed"),
        ("Cookie", "a=b"),
    ]
    assert forward_headers(given, "203.0.113.9", "dispatcher-b") == [
        ("host", "carpool.example"),
        ("authorization", "Bearer t"),
        ("x-twilio-signature", "abc="),
        ("content-type", "application/x-www-form-urlencoded"),
        ("cookie", "a=b"),
        ("x-forwarded-for", "198.51.100.1, 203.0.113.2, 203.0.113.9"),
        (FORWARDED_BY, "dispatcher-b"),
    ]
    assert ("x-forwarded-for", "203.0.113.9") in forward_headers([], "203.0.113.9", "b")


def test_a_socket_second_leg_leaves_the_handshake_to_the_client_library() -> None:
    given = [
        ("Host", "h"),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "k"),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Protocol", "p"),
        ("Origin", "https://carpool.example"),
    ]
    assert socket_headers(given, None, "b") == [
        ("origin", "https://carpool.example"),
        (FORWARDED_BY, "b"),
    ]


def test_the_answer_keeps_its_headers_but_not_the_connections() -> None:
    given = [
        ("Content-Type", "application/json"),
        ("Retry-After", "3"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Content-Length", "7"),
        ("Transfer-Encoding", "chunked"),
        ("Date", "Tue, 01 Dec 2026 17:00:00 GMT"),
        ("Server", "uvicorn"),
    ]
    assert answer_headers(given) == [
        ("content-type", "application/json"),
        ("retry-after", "3"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2"),
    ]


def test_peers_reach_a_process_at_its_advertised_url_or_its_host_and_port() -> None:
    assert Settings(http_host="127.0.0.1", http_port=8001).peer_url == "http://127.0.0.1:8001"
    assert Settings(http_host="0.0.0.0", http_port=8002).peer_url == "http://127.0.0.1:8002"
    assert Settings(http_host="::", http_port=8003).peer_url == "http://[::1]:8003"
    advertised = Settings(advertise_url="https://node-b.example:8443/", http_port=8004)
    assert advertised.peer_url == "https://node-b.example:8443"
    with pytest.raises(ValidationError, match="CARPOOL_ADVERTISE_URL"):
        Settings(advertise_url="node-b:8000")


async def test_the_owner_warns_once_about_a_standby_whose_address_is_not_trusted() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    def door(proxies: str) -> ClusterDoor:
        owner = OwnerDoor(
            "dispatcher-a",
            owns=lambda _line: True,
            owner_of=lambda _line: "dispatcher-a",
            address_of=lambda _node: None,
            proxies=Settings(trusted_proxies=proxies).proxies,
        )
        return ClusterDoor(app, owner)

    forwarded = {FORWARDED_BY: "dispatcher-b"}
    for proxies, warned in (("", 1), ("198.51.100.7", 0)):
        transport = httpx.ASGITransport(door(proxies), client=("198.51.100.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://owner") as http:
            with capture_logs() as logs:
                for _ in range(3):
                    assert (await http.get("/api/v1/lines", headers=forwarded)).status_code == 204
                assert (await http.get("/api/v1/lines")).status_code == 204
        events = [entry for entry in logs if entry["event"] == "cluster.peer_not_trusted"]
        assert len(events) == warned, (proxies, logs)
