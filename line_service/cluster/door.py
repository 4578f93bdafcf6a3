"""Pure: "any door" — where an HTTP request or a WebSocket that reached this process goes.

In a cluster each line has one owner process; every process serves every request. A request
about one line (which one: line_service/cluster/request_lines.py) is handled by that line's
owner: a process that does not own it hands it over (at the URL the owner recorded,
`cluster_node`) and passes the answer back. A request about no line in particular (sign-in, open
data, the dashboard's page) and a process's own health and metrics are served where they land.
A forwarded request carries `FORWARDED_BY`: a process that gets one for a line it does not own
(any more) refuses it with 503 + Retry-After — one hop at most, never a loop. When the owner is
not known, has no address, or does not answer, the client gets 503 + Retry-After naming the
owner when known: within a takeover (about a second), trying again reaches the new owner.

This module decides and shapes headers; `line_service/web/cluster_door.py` does the I/O.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

LOCAL_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})  # about this process itself
FORWARDED_BY = "x-carpool-forwarded-by"  # the standby's node id, on every forwarded request
FORWARDED_FOR = "x-forwarded-for"
RETRY_AFTER_SECONDS = 1  # a takeover takes about a second (docs/OPERATIONS.md)

# RFC 9110 §7.6.1: these describe one connection, never the message; plus what the forwarder
# sets itself (the body's length) and the mark, which only this process may write.
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "content-length",
    }
)
# The WebSocket handshake's own headers: the client library writes them for the second leg.
_HANDSHAKE = frozenset(
    {
        "host",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
        "sec-websocket-accept",
    }
)
# The server in front of the client adds its own.
_ANSWER_OWN = frozenset({"date", "server"})

Headers = list[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Serve:
    """Handle the request here."""


@dataclass(frozen=True, slots=True)
class Toward:
    """Hand the request to this owner (its address still to be read)."""

    owner: str


@dataclass(frozen=True, slots=True)
class Forward:
    """Hand the request to the owner at `url` (scheme, host and port, no path)."""

    owner: str
    url: str


@dataclass(frozen=True, slots=True)
class Refuse:
    """Answer 503 with Retry-After: nobody can take the request now."""

    detail: str
    retry_after: int = RETRY_AFTER_SECONDS


def route(
    path: str, line: str | None, here: bool, forwarded: bool, owner: str | None
) -> Serve | Toward | Refuse:
    """Where a request for `path` about `line` goes (`here`: this process owns that line;
    `owner`: the line's owner as last seen)."""
    if line is None or here or path in LOCAL_PATHS:
        return Serve()
    if forwarded:
        return Refuse(
            f"a process forwarded this request here, but this process does not dispatch line "
            f"{line!r} (any more): it is changing hands; try again shortly"
        )
    if owner is None:
        return Refuse(
            f"no process dispatches line {line!r} at the moment (CARPOOL_CLUSTER: it is being "
            "taken over); try again shortly"
        )
    return Toward(owner)


def destination(owner: str, url: str | None) -> Forward | Refuse:
    """The owner at its recorded address, or a refusal when it recorded none."""
    if not url:
        return Refuse(
            f"the line's owner, process {owner!r}, has not recorded its address yet "
            "(CARPOOL_ADVERTISE_URL); try again shortly"
        )
    return Forward(owner, url.rstrip("/"))


def unreachable(owner: str, url: str, reason: str) -> Refuse:
    """The owner did not answer at its address (down, taking over, too slow)."""
    return Refuse(
        f"the line's owner, process {owner!r} at {url}, did not answer ({reason}); "
        "try again shortly"
    )


def forward_headers(headers: Iterable[tuple[str, str]], peer: str | None, node: str) -> Headers:
    """The request's headers for the owner: hop-by-hop ones (and those `Connection` names)
    dropped, the client's address appended to `X-Forwarded-For` (hops already there are kept:
    the owner believes them only from CARPOOL_TRUSTED_PROXIES), `FORWARDED_BY` set to `node`."""
    given = [(name.lower(), value) for name, value in headers]
    named = {
        token.strip().lower()
        for name, value in given
        if name == "connection"
        for token in value.split(",")
    }
    kept = [
        (name, value)
        for name, value in given
        if name not in _HOP_BY_HOP
        and name not in named
        and name not in (FORWARDED_BY, FORWARDED_FOR)
    ]
    hops = [value.strip() for name, value in given if name == FORWARDED_FOR and value.strip()]
    if peer:
        hops.append(peer)
    if hops:
        kept.append((FORWARDED_FOR, ", ".join(hops)))
    kept.append((FORWARDED_BY, node))
    return kept


def socket_headers(headers: Iterable[tuple[str, str]], peer: str | None, node: str) -> Headers:
    """The same for a WebSocket's second leg, without the handshake's own headers."""
    return [
        (name, value)
        for name, value in forward_headers(headers, peer, node)
        if name not in _HANDSHAKE
    ]


def answer_headers(headers: Iterable[tuple[str, str]]) -> Headers:
    """The owner's answer headers for the client (Content-Type, Retry-After, Set-Cookie, …):
    hop-by-hop ones, the length (set again for the body passed on), Date and Server dropped."""
    return [
        (name, value)
        for name, value in ((name.lower(), value) for name, value in headers)
        if name not in _HOP_BY_HOP and name not in _ANSWER_OWN
    ]
