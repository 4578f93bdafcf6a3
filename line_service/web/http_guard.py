"""Adapter: what every HTTP request passes before any route sees it, and every answer carries.

- The body is read here, counted as it streams in (and its Content-Length checked first), and
  refused with 413 past `max_body_bytes`: nothing larger is ever held or parsed.
- A JSON body (no content type, `application/json` or `+json`) is parsed strictly: `NaN`,
  `Infinity`, `-Infinity` and lone surrogates (text that has no UTF-8 form) are refused with
  422 and a short message; FastAPI then parses the same bytes again, now known to be clean.
- Every answer gets the security headers: a CSP without inline script (the dashboard's page
  loads its script and style from `/static`), no framing, no sniffing, no referrer. A route
  may send a stricter policy of its own — one that starts `default-src 'none'` and forbids
  framing (the attestation page: its one hashed stylesheet and nothing else); it is kept.
  Any other policy a route sets is replaced.
- A validation error (422) lists what is wrong, never the values sent (`input` dropped).

WebSockets pass through untouched (the live socket reads one small JSON message itself).
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_MAX_BODY_BYTES = 64 * 1024
MESSAGE_CHARS = 200  # a validation message is cut here (it may quote what was sent)

PAGE_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# FastAPI's /docs and /redoc pages load Swagger UI / ReDoc from a CDN with an inline script.
DOCS_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https:; "
    "worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS = ("/docs", "/redoc")

SECURITY_HEADERS = (
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
)


class BodyTooLargeError(Exception):
    """The body went past the limit while it streamed in."""


class HttpGuard:
    """ASGI middleware: body limit, strict JSON, security headers (see the module docstring)."""

    def __init__(self, app: ASGIApp, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_security_headers(scope, send)
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body_bytes):
            await _refuse(send, 413, self._too_large())
            return
        try:
            body = await _read_body(receive, self.max_body_bytes)
        except BodyTooLargeError:
            await _refuse(send, 413, self._too_large())
            return
        if body and _is_json(_header(scope, b"content-type")):
            problem = strict_json_problem(body)
            if problem is not None:
                await _refuse(send, 422, problem)
                return
        await self.app(scope, replay(body, receive), send)

    def _too_large(self) -> str:
        return f"request body larger than {self.max_body_bytes} bytes (CARPOOL_HTTP_MAX_BODY_BYTES)"


def strict_json_problem(body: bytes) -> str | None:
    """Why `body` is refused as JSON (NaN, infinities, lone surrogates), or None.

    Bodies that are not JSON at all are left to FastAPI, which answers 422 `json_invalid`.
    """
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except _ConstantRefusedError as exc:
        return f"body: {exc.args[0]} is not valid JSON (numbers must be finite)"
    except ValueError:  # not JSON (or not UTF-8): FastAPI says so
        return None
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return "body: a string holds a lone surrogate (\\ud800-\\udfff): not valid text"
    return None


class _ConstantRefusedError(ValueError):
    """NaN or an infinity in a JSON text."""


def _reject_constant(name: str) -> Any:
    raise _ConstantRefusedError(name)


async def _read_body(receive: Receive, limit: int) -> bytes:
    """The body, read whole up to `limit` bytes (raises BodyTooLargeError past it)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client left: let the app see it
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the body read already, then whatever comes next (the client's
    disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _with_security_headers(scope: Scope, send: Send) -> Send:
    path: str = scope.get("path", "")
    policy = DOCS_POLICY if path.startswith(DOCS_PATHS) else PAGE_POLICY

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            sent = message.get("headers", [])
            own_policy = _strict_policy_of(sent)
            headers = [(name, value) for name, value in sent if name.lower() not in _OWN_HEADERS]
            headers.append((b"content-security-policy", own_policy or policy.encode()))
            headers.extend(SECURITY_HEADERS)
            message = {**message, "headers": headers}
        await send(message)

    return send_with_headers


_OWN_HEADERS = {b"content-security-policy", *(name for name, _ in SECURITY_HEADERS)}


def _strict_policy_of(headers: list[tuple[bytes, bytes]]) -> bytes | None:
    """The route's own CSP when it denies everything by default and any framing, else None."""
    for name, value in headers:
        if name.lower() == b"content-security-policy":
            text = bytes(value).decode("latin-1")
            if text.startswith("default-src 'none';") and "frame-ancestors 'none'" in text:
                return bytes(value)
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1").strip()
    return None


def _is_json(content_type: str | None) -> bool:
    """Whether FastAPI would parse this body as JSON (it does with no content type too)."""
    if not content_type:
        return True
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


async def _refuse(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def validation_failed(_request: Request, exc: Exception) -> JSONResponse:
    """422 naming what is wrong and where, never echoing what was sent."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "type": str(error.get("type", "")),
            "loc": [str(part) for part in error.get("loc", ())],
            "msg": str(error.get("msg", ""))[:MESSAGE_CHARS],
        }
        for error in exc.errors()
    ]
    return JSONResponse({"detail": errors}, status_code=422)
