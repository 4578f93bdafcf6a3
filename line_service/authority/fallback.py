"""Adapter: the wait guarantee's fallback — a taxi called by webhook (JSON) or by SMS.

The engine calls `dispatch(request)` after the FALLBACK transition is committed; it must never
block: webhook calls go through a bounded queue drained by `run()`, with retries and backoff
(the request id is the `Idempotency-Key`, so a retried call is one taxi); SMS go to a
`TextSender` that queues them itself. A full queue or a call that keeps failing is logged as
`fallback.failed` (the operator must phone the taxi), never raised into the engine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from zoneinfo import ZoneInfo

import structlog

from dispatcher.model import Line, LineId, Network, StopId
from dispatcher.request_machine import RideRequest

if TYPE_CHECKING:  # imported where a request is made: not on the service's start-up path
    import httpx

log = structlog.get_logger(__name__)


class TextSender(Protocol):
    """Sends one text message; never blocks, never raises (the SMS channel implements it)."""

    def send(self, to: str, body: str) -> None: ...


class LoggingTextSender:
    """A sender for when no SMS provider is wired: logs what it would send (number masked)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, to: str, body: str) -> None:
        """Log the message instead of sending it."""
        self.sent.append((to, body))
        log.warning("fallback.sms_not_sent", to="…" + to[-2:], body=body)


def _stop_json(line: Line, stop_id: StopId) -> dict[str, Any]:
    stop = line.stop(stop_id)
    if stop is None:
        return {"id": stop_id}
    return {"id": stop.id, "name": stop.name, "code": stop.code, "lat": stop.lat, "lon": stop.lon}


def webhook_body(line: Line, request: RideRequest) -> dict[str, Any]:
    """The JSON a taxi company's webhook receives: who, where, where to, since when."""
    return {
        "v": 1,
        "event": "fallback.requested",
        "request_id": request.id,
        "line": {"id": line.id, "name": line.name},
        "pickup": _stop_json(line, request.stop_id),
        "destination": _stop_json(line, request.destination_id),
        "seats": request.seats,
        "rider_phone": request.phone,
        "code": request.code,
        "requested_at": request.created_at.isoformat().replace("+00:00", "Z"),
        "dispatched_at": request.updated_at.isoformat().replace("+00:00", "Z"),
    }


def sms_text(line: Line, request: RideRequest) -> str:
    """The French text a taxi company receives (short, GSM-7 friendly)."""
    pickup, destination = line.stop(request.stop_id), line.stop(request.destination_id)
    where = f"{pickup.name} ({pickup.code})" if pickup else request.stop_id
    to = destination.name if destination else request.destination_id
    local = request.updated_at.astimezone(ZoneInfo(line.timezone)).strftime("%H:%M")
    phone = f" Tel client {request.phone}." if request.phone else ""
    return (
        f"Taxi demande {line.name}: {request.seats} pers. a l'arret {where} vers {to}, "
        f"{local}. Code {request.code or '-'}.{phone}"
    )


@dataclass(frozen=True, slots=True)
class _Call:
    line: Line
    request: RideRequest


class WebhookFallback:
    """POSTs the fallback's JSON to one URL; queued, retried with backoff, never blocking."""

    def __init__(
        self,
        url: str,
        client: httpx.AsyncClient | None = None,
        queue_size: int = 100,
        max_attempts: int = 6,
        first_delay: float = 0.5,
        max_delay: float = 30.0,
    ) -> None:
        self.url = url
        self._client = client
        self._queue: asyncio.Queue[_Call] = asyncio.Queue(maxsize=queue_size)
        self._max_attempts = max_attempts
        self._first_delay = first_delay
        self._max_delay = max_delay
        self.delivered = 0
        self.failed = 0

    def dispatch(self, line: Line, request: RideRequest) -> None:
        """Queue the call; a full queue is logged as a failure for the operator."""
        try:
            self._queue.put_nowait(_Call(line, request))
        except asyncio.QueueFull:
            self.failed += 1
            log.error("fallback.failed", request_id=request.id, reason="queue full", url=self.url)

    async def run(self) -> None:
        """Deliver queued calls until cancelled."""
        async with _client_or(self._client) as client:
            while True:
                call = await self._queue.get()
                await self._deliver(client, call)

    async def _deliver(self, client: httpx.AsyncClient, call: _Call) -> None:
        body = webhook_body(call.line, call.request)
        headers = {"Idempotency-Key": call.request.id}
        delay = self._first_delay
        for attempt in range(1, self._max_attempts + 1):
            reason = await _post(client, self.url, body, headers)
            if reason is None:
                self.delivered += 1
                log.info("fallback.delivered", request_id=call.request.id, attempt=attempt)
                return
            if reason.startswith("rejected"):
                break
            log.warning("fallback.retry", request_id=call.request.id, reason=reason, delay=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, self._max_delay)
        self.failed += 1
        log.error("fallback.failed", request_id=call.request.id, reason=reason, url=self.url)


async def _post(
    client: httpx.AsyncClient, url: str, body: dict[str, Any], headers: Mapping[str, str]
) -> str | None:
    """None when delivered; else why not ("rejected …" is final, anything else is retried)."""
    import httpx

    try:
        answer = await client.post(url, json=body, headers=dict(headers))
    except httpx.HTTPError as exc:
        return f"transport: {type(exc).__name__}"
    if answer.is_success:
        return None
    if answer.status_code == 429 or answer.status_code >= 500:
        return f"HTTP {answer.status_code}"
    return f"rejected: HTTP {answer.status_code} {answer.text[:120]}"


class _client_or:  # noqa: N801 (used as a context manager)
    """The given client (left open), or a fresh one closed on exit."""

    def __init__(self, client: httpx.AsyncClient | None) -> None:
        self._given = client
        self._own: httpx.AsyncClient | None = None

    async def __aenter__(self) -> httpx.AsyncClient:
        if self._given is not None:
            return self._given
        import httpx

        self._own = httpx.AsyncClient(timeout=10.0)
        return self._own

    async def __aexit__(self, *_exc: object) -> None:
        if self._own is not None:
            await self._own.aclose()


class LineFallbacks:
    """The engine's FallbackDispatcher: routes each request to its line's configured fallback."""

    def __init__(
        self,
        network: Network,
        sender: TextSender,
        client: httpx.AsyncClient | None = None,
        first_delay: float = 0.5,
    ) -> None:
        self._network = network
        self._sender = sender
        self.webhooks: dict[LineId, WebhookFallback] = {}
        for line in network.lines:
            if line.fallback is not None and line.fallback.kind == "webhook":
                self.webhooks[line.id] = WebhookFallback(
                    line.fallback.address, client, first_delay=first_delay
                )

    def dispatch(self, request: RideRequest) -> None:
        """Call the line's taxi for this request (never blocks, never raises)."""
        line = self._network.line(request.line_id)
        contact = None if line is None else line.fallback
        log.warning(
            "fallback.dispatch",
            request_id=request.id,
            line=request.line_id,
            stop=request.stop_id,
            kind=None if contact is None else contact.kind,
        )
        if line is None or contact is None:
            log.error("fallback.failed", request_id=request.id, reason="no fallback configured")
        elif contact.kind == "webhook":
            self.webhooks[line.id].dispatch(line, request)
        else:
            try:
                self._sender.send(contact.address, sms_text(line, request))
            except Exception:
                log.exception("fallback.failed", request_id=request.id, reason="sms sender")

    async def run(self) -> None:
        """Run every webhook queue until cancelled."""
        if not self.webhooks:
            await asyncio.Event().wait()
        async with asyncio.TaskGroup() as group:
            for line_id, webhook in self.webhooks.items():
                group.create_task(webhook.run(), name=f"fallback-{line_id}")
