"""Adapter: a cluster's any-door — a process passes HTTP requests and the dashboard's live
WebSocket about a line it does not dispatch to that line's owner, and their answers back (the
decisions are pure: line_service/cluster/door.py; which line a request is about:
line_service/cluster/request_lines.py, which may need the body — read here, then replayed to
the app when the request is served here).

HTTP: the body (already bounded by HttpGuard, which sits outside this middleware) is read whole
and sent with the method, path, query and the headers that matter (Authorization,
X-Twilio-Signature, cookies, content type…) by one shared httpx client; the answer's status,
headers and body come back as they are. Every process shares CARPOOL_PUBLIC_URL, so the owner
checks a Twilio signature exactly as if Twilio had called it.

WebSocket: the process opens a second socket to the owner (the `websockets` client that comes
with uvicorn[standard]), accepts the client's with the subprotocol the owner chose, then copies
messages both ways until one side closes, and passes the close code on.

A failure to reach the owner answers 503 + Retry-After (a socket: accepted, then closed with
1013 "try again later" and the reason).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
from collections.abc import Awaitable, Callable, Iterable
from ipaddress import IPv4Network, IPv6Network

import httpx
import structlog
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.exc import SQLAlchemyError
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, WebSocketException

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
from line_service.web.http_guard import replay

log = structlog.get_logger(__name__)

CONNECT_SECONDS = 2.0  # the owner's address does not take a connection: it is down
ANSWER_SECONDS = 15.0  # above the intake's storage timeout (CARPOOL_STORAGE_REFUSE_SECONDS)
PEER_SECONDS = 2.0  # a peer's own part of a list (the lines it dispatches), at most
SOCKET_MAX_BYTES = 16 * 1024 * 1024  # uvicorn's own limit for a WebSocket message
CLOSE_TRY_AGAIN = 1013
_SENDABLE_CLOSE = frozenset({1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013})
REASON_BYTES = 120  # a close frame's reason holds 123 bytes
NO_BODY = frozenset({204, 304})  # answers that carry no Content-Length
WARNED_PEERS = 64  # untrusted standby addresses named in the log at most


Locate = Callable[[Scope, bytes | None], Awaitable[str | None]]
"""The line a request is about (None: no line in particular), from its scope and, when
`wants_body` says so, its body."""


def _nothing_located(_scope: Scope, _body: bytes | None) -> Awaitable[str | None]:
    async def none() -> str | None:
        return None

    return none()


class OwnerDoor:
    """What a process needs to pass requests to a line's owner: which line a request is
    about, which lines it owns, each line's owner (from the locks), the owners' recorded
    addresses, and one HTTP client."""

    def __init__(
        self,
        node: str,
        owns: Callable[[str], bool],
        owner_of: Callable[[str], str | None],
        address_of: Callable[[str], str | None],
        proxies: tuple[IPv4Network | IPv6Network, ...] = (),
        locate: Locate = _nothing_located,
        wants_body: Callable[[Scope], bool] = lambda _scope: False,
        look_again: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """`look_again` reads the lines' owners afresh (a line moved since this process last
        looked): asked before refusing a request whose line has no known owner."""
        self.node = node
        self._proxies = proxies
        self._untrusted_peers: set[str] = set()
        self._owns = owns
        self._owner_of = owner_of
        self.locate = locate
        self.wants_body = wants_body
        self.look_again = look_again
        self._address_of = address_of  # blocking: reads the database
        self._addresses: dict[str, str] = {}
        self._client: httpx.AsyncClient | None = None
        self.forwarded = 0  # requests and sockets handed to the owner
        self.refused = 0  # answered 503 here for want of an owner

    def route(self, scope: Scope, line: str | None) -> Serve | Forward | Refuse | Toward:
        """Serve here, forward, or refuse a request about `line`; Toward when the owner's
        address is still to be read."""
        forwarded = any(name.lower() == FORWARDED_BY.encode() for name, _ in scope["headers"])
        here = line is not None and self._owns(line)
        owner = self._owner_of(line) if line is not None and not here else None
        decision = route(scope["path"], line, here, forwarded, owner)
        if forwarded and isinstance(decision, Serve):
            self._check_peer(_peer(scope))
        if isinstance(decision, Serve | Refuse):
            return decision
        url = self._addresses.get(decision.owner)
        return Forward(decision.owner, url) if url else decision

    async def resolve(self, owner: str) -> Forward | Refuse:
        """The owner's address, read from the database (kept until a forward to it fails)."""
        try:
            url = await asyncio.to_thread(self._address_of, owner)
        except (SQLAlchemyError, OSError) as exc:  # the client is told, the process goes on
            log.warning("cluster.address_unread", owner=owner, error=str(exc)[:200])
            url = None
        found = destination(owner, url)
        if isinstance(found, Forward):
            self._addresses[owner] = found.url
        return found

    def _check_peer(self, peer: str | None) -> None:
        """Say once per peer when a standby's forwards come from an address that is not in
        CARPOOL_TRUSTED_PROXIES: its X-Forwarded-For is then ignored, and every client behind
        it shares its per-address limits."""
        if peer is None or peer in self._untrusted_peers:
            return
        if len(self._untrusted_peers) >= WARNED_PEERS:  # anyone may send the mark: bounded
            return
        try:
            address = ipaddress.ip_address(peer)
        except ValueError:
            return
        if any(address.version == net.version and address in net for net in self._proxies):
            return
        self._untrusted_peers.add(peer)
        log.warning("cluster.peer_not_trusted", peer=peer, setting="CARPOOL_TRUSTED_PROXIES")

    def failed(self, target: Forward, exc: Exception) -> Refuse:
        """The owner did not answer at its address: read it again next time, count and log the
        refusal, and say why to the client."""
        self._addresses.pop(target.owner, None)
        self.refused += 1
        reason = type(exc).__name__
        log.warning("cluster.forward_failed", owner=target.owner, url=target.url, error=reason)
        return unreachable(target.owner, target.url, reason)

    async def ask_peers(
        self, path: str, headers: list[tuple[str, str]], nodes: Iterable[str]
    ) -> dict[str, object]:
        """GET `path` from each of these nodes (marked as forwarded: each answers for itself);
        their JSON answers by node. A node that cannot be reached or says no is left out (and
        its address read again next time)."""

        async def one(node: str) -> tuple[str, object] | None:
            found = await self.resolve(node)
            if isinstance(found, Refuse):
                return None
            try:
                answer = await self.client().get(
                    found.url + path,
                    headers=[*headers, (FORWARDED_BY, self.node)],
                    timeout=PEER_SECONDS,
                )
            except httpx.HTTPError as exc:
                self._addresses.pop(node, None)
                log.warning("cluster.peer_unanswered", owner=node, error=type(exc).__name__)
                return None
            if answer.status_code != 200:
                return None
            try:
                return node, answer.json()
            except ValueError:
                return None

        answers = await asyncio.gather(*(one(node) for node in set(nodes) if node != self.node))
        return dict(answer for answer in answers if answer is not None)

    def client(self) -> httpx.AsyncClient:
        """The HTTP client of forwards (made on first use: in the server's event loop)."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=httpx.Timeout(ANSWER_SECONDS, connect=CONNECT_SECONDS),
                trust_env=False,  # never through an environment proxy
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        """Close the HTTP client's connections."""
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class DoorCounts(Collector):
    """`carpool_door_forwarded_total` and `carpool_door_refused_total`, read at scrape time."""

    def __init__(self, door: OwnerDoor) -> None:
        self._door = door

    def collect(self) -> Iterable[Metric]:
        yield CounterMetricFamily(
            "carpool_door_forwarded",
            "Requests and live sockets this process passed to their line's owner (CARPOOL_CLUSTER)",
            value=self._door.forwarded,
        )
        yield CounterMetricFamily(
            "carpool_door_refused",
            "Requests answered 503 here for want of an owner to pass them to (CARPOOL_CLUSTER)",
            value=self._door.refused,
        )


class ClusterDoor:
    """ASGI middleware: the any-door (see the module docstring)."""

    def __init__(self, app: ASGIApp, door: OwnerDoor) -> None:
        self.app = app
        self.door = door

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        body: bytes | None = None
        if scope["type"] == "http" and self.door.wants_body(scope):
            body = await _body(receive)
            receive = replay(body, receive)
        line = await self.door.locate(scope, body)
        decision = self.door.route(scope, line)
        if isinstance(decision, Refuse) and self.door.look_again is not None:
            await self.door.look_again()  # the line may have moved since the last look
            decision = self.door.route(scope, line)
        if isinstance(decision, Toward):
            decision = await self.door.resolve(decision.owner)
        if isinstance(decision, Serve):
            await self.app(scope, receive, send)
        elif scope["type"] == "http":
            if isinstance(decision, Refuse):
                self.door.refused += 1
                await _refuse_http(send, decision)
            else:
                await _forward_http(self.door, decision, scope, receive, send)
        elif isinstance(decision, Refuse):
            self.door.refused += 1
            await _refuse_socket(receive, send, decision)
        else:
            await _forward_socket(self.door, decision, scope, receive, send)


def _peer(scope: Scope) -> str | None:
    client = scope.get("client")
    return str(client[0]) if client else None


def _headers(scope: Scope) -> list[tuple[str, str]]:
    return [(bytes(k).decode("latin-1"), bytes(v).decode("latin-1")) for k, v in scope["headers"]]


def _target(base: str, scope: Scope) -> str:
    path = bytes(scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
    query = bytes(scope.get("query_string", b"")).decode("latin-1")
    return base + path + (f"?{query}" if query else "")


async def _body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _forward_http(
    door: OwnerDoor, target: Forward, scope: Scope, receive: Receive, send: Send
) -> None:
    body = await _body(receive)
    headers = forward_headers(_headers(scope), _peer(scope), door.node)
    if not any(name == "accept-encoding" for name, _ in headers):
        headers.append(("accept-encoding", "identity"))  # the body passes on as it comes
    client = door.client()
    try:
        request = client.build_request(
            scope["method"], _target(target.url, scope), headers=headers, content=body
        )
        response = await client.send(request, stream=True)
        try:
            content = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        await _refuse_http(send, door.failed(target, exc))
        return
    door.forwarded += 1
    answer = [
        (name.encode("latin-1"), value.encode("latin-1"))
        for name, value in answer_headers(response.headers.multi_items())
    ]
    length = response.headers.get("content-length") if scope["method"] == "HEAD" else None
    if length is None and response.status_code not in NO_BODY:
        length = str(len(content))
    if length is not None:
        answer.append((b"content-length", length.encode("latin-1")))
    await send({"type": "http.response.start", "status": response.status_code, "headers": answer})
    await send({"type": "http.response.body", "body": content})


async def _refuse_http(send: Send, refusal: Refuse) -> None:
    body = json.dumps({"detail": refusal.detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(refusal.retry_after).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _reason(text: str) -> str:
    return text.encode()[:REASON_BYTES].decode(errors="ignore")


async def _refuse_socket(receive: Receive, send: Send, refusal: Refuse) -> None:
    """Accept, then close with 1013 and why: a browser sees the reason (a refused handshake
    would only say 403)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await _refuse_socket_accepted(send, refusal)


def _socket_url(base: str, scope: Scope) -> str:
    url = _target(base, scope)
    return "ws" + url.removeprefix("http") if url.startswith("http") else url


async def _forward_socket(
    door: OwnerDoor, target: Forward, scope: Scope, receive: Receive, send: Send
) -> None:
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    headers = socket_headers(_headers(scope), _peer(scope), door.node)
    subprotocols = list(scope.get("subprotocols") or [])
    try:
        upstream = await connect(
            _socket_url(target.url, scope),
            additional_headers=headers,
            subprotocols=subprotocols or None,
            open_timeout=CONNECT_SECONDS,
            max_size=SOCKET_MAX_BYTES,
            proxy=None,
            user_agent_header=None,  # the client's own passes on
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status < 500:  # the owner would not take it (an unknown path): neither do we
            await send({"type": "websocket.close", "code": 1008})
            return
        await _refuse_socket_accepted(send, unreachable(target.owner, target.url, str(status)))
        return
    except (OSError, TimeoutError, WebSocketException) as exc:
        await _refuse_socket_accepted(send, door.failed(target, exc))
        return
    door.forwarded += 1
    await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
    async with upstream:
        await _pump(upstream, receive, send)


async def _refuse_socket_accepted(send: Send, refusal: Refuse) -> None:
    reason = _reason(refusal.detail)
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": CLOSE_TRY_AGAIN, "reason": reason})


def _sendable(code: int) -> bool:
    """A close code one may put in a close frame (RFC 6455 §7.4: the defined ones, or 3000–4999)."""
    return code in _SENDABLE_CLOSE or 3000 <= code < 5000


async def _pump(upstream: ClientConnection, receive: Receive, send: Send) -> None:
    """Copy messages both ways until one side ends; the other is then closed."""
    tasks = {
        asyncio.create_task(_client_to_owner(upstream, receive), name="door-upstream"),
        asyncio.create_task(_owner_to_client(upstream, send), name="door-downstream"),
    }
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _client_to_owner(upstream: ClientConnection, receive: Receive) -> None:
    while True:
        message: Message = await receive()
        if message["type"] == "websocket.disconnect":
            code = int(message.get("code") or 1000)
            await upstream.close(code if _sendable(code) else 1000)
            return
        if message["type"] != "websocket.receive":
            continue
        text, data = message.get("text"), message.get("bytes")
        with contextlib.suppress(ConnectionClosed):
            if text is not None:
                await upstream.send(str(text))
            elif data is not None:
                await upstream.send(bytes(data))


async def _owner_to_client(upstream: ClientConnection, send: Send) -> None:
    try:
        async for data in upstream:
            if isinstance(data, str):
                await send({"type": "websocket.send", "text": data})
            else:
                await send({"type": "websocket.send", "bytes": data})
    except ConnectionClosed:
        pass
    code = upstream.close_code or CLOSE_TRY_AGAIN
    if not _sendable(code):
        code = CLOSE_TRY_AGAIN  # the owner went away without a close frame (killed)
    with contextlib.suppress(OSError, RuntimeError):
        await send({"type": "websocket.close", "code": code, "reason": upstream.close_reason or ""})
