"""Shell: live line state pushed to dashboards over WebSocket, never slowing the engine.

The engine listener only sets a flag (O(1), never blocks). One pump task wakes on that flag,
waits `min_interval` so bursts coalesce, builds each line's snapshot once and offers it to every
client. A client holds at most one pending snapshot: a newer one replaces it (a slow client
misses intermediate states, never the latest), and a client whose socket does not take a
message within `send_timeout` is disconnected. Without changes a snapshot still goes out every
`heartbeat` (wait times and guarantee countdowns move with the clock).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import structlog
from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect

from dispatcher.effects import Effect
from dispatcher.events import Event
from dispatcher.model import LineId, Network
from dispatcher.state import DispatcherState
from line_service.web.auth import authenticate, bearer_token
from line_service.web.operator_accounts import Principal, Role, TokenAuthority
from line_service.web.views import Placement, line_out, nowhere

log = structlog.get_logger(__name__)

AUTH_TIMEOUT_SECONDS = 10.0
CLOSE_UNAUTHORIZED = 4401
CLOSE_NOT_FOUND = 4404
CLOSE_TOO_SLOW = 4408


@dataclass(eq=False)
class LiveClient:
    """One connected dashboard: a one-slot mailbox of the newest snapshot."""

    line_id: LineId
    with_phone: bool
    slot: asyncio.Queue[str] = field(default_factory=lambda: asyncio.Queue(maxsize=1))
    coalesced: int = 0

    def offer(self, payload: str) -> None:
        """Keep only the newest payload (never blocks)."""
        if self.slot.full():
            self.slot.get_nowait()
            self.coalesced += 1
        self.slot.put_nowait(payload)


class LiveHub:
    """Fans the line state out to connected dashboards."""

    def __init__(
        self,
        network: Network,
        current_state: Callable[[], DispatcherState],
        clock: Callable[[], datetime],
        min_interval: float = 0.1,
        heartbeat: float = 5.0,
        send_timeout: float = 10.0,
        placement: Placement = nowhere,
    ) -> None:
        self.network = network
        self._placement = placement
        self._current_state = current_state
        self._clock = clock
        self._changed = asyncio.Event()
        self._clients: set[LiveClient] = set()
        self.min_interval = min_interval
        self.heartbeat = heartbeat
        self.send_timeout = send_timeout
        self.pushed = 0  # broadcasts (one per coalesced change or heartbeat with clients)
        self.dropped_clients = 0  # clients disconnected for not taking a snapshot in time

    @property
    def clients(self) -> int:
        """How many dashboards are connected."""
        return len(self._clients)

    def on_step(
        self, _event: Event | None, _effects: list[Effect], _state: DispatcherState
    ) -> None:
        """Engine listener: note that something changed (O(1), non-blocking)."""
        self._changed.set()

    def snapshot(self, line_id: LineId, with_phone: bool) -> str:
        """The JSON message carrying a line's whole state now."""
        line = self.network.line(line_id)
        assert line is not None
        view = line_out(
            line, self._current_state(), self._clock(), with_phone, self._placement(line_id)
        )
        return '{"type":"line","line":' + view.model_dump_json() + "}"

    def broadcast(self) -> None:
        """Offer every client its line's current snapshot (built once per line and role)."""
        built: dict[tuple[LineId, bool], str] = {}
        for client in list(self._clients):
            key = (client.line_id, client.with_phone)
            if key not in built:
                built[key] = self.snapshot(*key)
            client.offer(built[key])
        self.pushed += 1

    async def run(self) -> None:
        """The pump: wake on changes (or the heartbeat), coalesce, broadcast."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self.heartbeat)
            self._changed.clear()
            if self._clients:
                try:
                    self.broadcast()
                except Exception:
                    log.exception("live.broadcast_failed")
            await asyncio.sleep(self.min_interval)  # rate limit, not synchronisation

    async def serve(self, websocket: WebSocket, client: LiveClient) -> None:
        """Send snapshots to one socket until it closes or falls too far behind."""
        self._clients.add(client)
        try:
            client.offer(self.snapshot(client.line_id, client.with_phone))
            tasks = {
                asyncio.create_task(_drain(websocket), name="live-reader"),
                asyncio.create_task(self._write(websocket, client), name="live-writer"),
            }
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._clients.discard(client)

    async def _write(self, websocket: WebSocket, client: LiveClient) -> None:
        while True:
            payload = await client.slot.get()
            try:
                await asyncio.wait_for(websocket.send_text(payload), self.send_timeout)
            except TimeoutError:
                self.dropped_clients += 1
                log.warning("live.client_too_slow", line=client.line_id)
                with contextlib.suppress(Exception):
                    await websocket.close(CLOSE_TOO_SLOW, "too slow")
                return
            except (WebSocketDisconnect, RuntimeError):
                return


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, to notice when it goes away."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()


async def _principal(websocket: WebSocket, authority: TokenAuthority) -> Principal:
    token = bearer_token(websocket.headers.get("authorization"))
    if token is None:
        # Browsers cannot set headers on a WebSocket: the first message carries the token.
        first = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_SECONDS)
        try:
            token = str(json.loads(first)["token"])
        except (ValueError, KeyError, TypeError):
            token = None
    principal = await authenticate(authority, token)
    if not principal.allows(Role.VIEWER):
        raise HTTPException(401, "the live line is for staff tokens (viewer and above)")
    return principal


live_router = APIRouter()


@live_router.websocket("/api/v1/lines/{line_id}/live/ws")
async def live_socket(websocket: WebSocket, line_id: str) -> None:
    """Live line state: send `{"token": "…"}` first; then receive `{"type":"line",…}` snapshots."""
    hub: LiveHub = websocket.state.hub
    authority: TokenAuthority = websocket.state.authority
    await websocket.accept()
    try:
        principal = await _principal(websocket, authority)
    except (HTTPException, TimeoutError, WebSocketDisconnect) as exc:
        detail = exc.detail if isinstance(exc, HTTPException) else "send {'token': …} first"
        with contextlib.suppress(Exception):
            await websocket.send_json({"type": "error", "status": 401, "detail": detail})
            await websocket.close(CLOSE_UNAUTHORIZED, "unauthorized")
        return
    line = hub.network.line(LineId(line_id))
    if line is None:
        await websocket.send_json(
            {"type": "error", "status": 404, "detail": f"unknown line {line_id!r}"}
        )
        await websocket.close(CLOSE_NOT_FOUND, "unknown line")
        return
    await websocket.send_json(
        {"type": "hello", "name": principal.name, "role": principal.role.value}
    )
    client = LiveClient(line.id, principal.allows(Role.OPERATOR))
    await hub.serve(websocket, client)
