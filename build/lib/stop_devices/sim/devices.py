"""Adapter: virtual roadside devices — a variable-message sign and a stop terminal — over MQTT v1.

Each device behaves like the real one the contract describes: its own connection, rebuilt with
capped, jittered backoff; a retained `online` status on connect and a last will that says
`offline`; displays and screens whose `seq` is not newer than the last applied are ignored; a
sign blanks itself when its lease (`expires_at`) lapses, on an asyncio timer that keeps running
while the broker is away. A terminal owns end-to-end delivery of its presses: it re-sends a
request until a screen carrying its `request_id` arrives (the service shows it once stored).

What a device shows is plain attributes; `wait_for(predicate, timeout)` lets callers wait for a
condition with a deadline instead of sleeping.
"""

from __future__ import annotations

import abc
import asyncio
import secrets
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal, Self

import structlog

from dispatcher.model import Stop
from stop_devices import mqtt_link, topics
from stop_devices.mqtt_link import Backoff, BrokerAddress, Outgoing, Received, Session
from stop_devices.schema import (
    MAX_PAYLOAD_BYTES,
    ScreenMessage,
    SignDisplayMessage,
    SignStateMessage,
    StatusMessage,
    TerminalCancel,
    TerminalRequest,
)

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
Page = tuple[str, ...]
Pages = tuple[Page, ...]
CancelReason = Literal["cancelled", "departed"]

FINAL_SCREEN_STATES = frozenset(
    {"picked_up", "cancelled", "expired", "fallback", "closed", "refused"}
)
"""Screen states that end a request (no further screen is expected for its request_id)."""

_REMEMBERED_REQUESTS = 1000
DEFAULT_BACKOFF = Backoff()


def utc_now() -> datetime:
    """The wall clock, aware UTC."""
    return datetime.now(UTC)


def fresh_request_id() -> str:
    """A terminal-side request id: 16 characters of [A-Za-z0-9_-], unguessable, never reused."""
    return secrets.token_urlsafe(12)


def _seconds(timeout: float | timedelta | None) -> float | None:
    return timeout.total_seconds() if isinstance(timeout, timedelta) else timeout


def _status(online: bool) -> bytes:
    return StatusMessage(v=1, online=online).model_dump_json().encode()


class _VirtualDevice(abc.ABC):
    """The connection loop the virtual devices share: birth, will, subscriptions, outbox."""

    def __init__(
        self,
        address: BrokerAddress,
        client_id: str,
        status_topic: str,
        subscription: str,
        backoff: Backoff,
        clock: Clock,
    ) -> None:
        self.address = address
        self.client_id = client_id
        self.connected = False
        self.connections = 0
        self.dropped = 0
        self._status_topic = status_topic
        self._subscription = subscription
        self._backoff = backoff
        self._clock = clock
        self._outbox: dict[str, Outgoing] = {}
        self._wake = asyncio.Event()
        self._change = asyncio.Event()

    async def run(self) -> None:
        """Stay connected until cancelled, reconnecting with backoff."""
        will = Outgoing(self._status_topic, _status(False), retain=True)
        attempt = 0
        while True:
            try:
                async with mqtt_link.connect(self.address, self.client_id, will=will) as session:
                    attempt = 0
                    await self._serve(session)
            except mqtt_link.LinkError as exc:
                log.info("sim.device_disconnected", client_id=self.client_id, error=str(exc)[:200])
            finally:
                if self.connected:
                    self.connected = False
                    self._changed()
            await asyncio.sleep(self._backoff.delay(attempt))
            attempt += 1

    async def wait_for(
        self,
        predicate: Callable[[Self], bool],
        timeout: float | timedelta | None = None,  # noqa: ASYNC109 - a deadline is the point
    ) -> None:
        """Return once `predicate(self)` holds; raise TimeoutError after `timeout` (None: never)."""
        async with asyncio.timeout(_seconds(timeout)):
            while not predicate(self):
                await self._change.wait()

    @abc.abstractmethod
    def _handle(self, received: Received) -> None:
        """Apply one message from the device's subscription (may raise ValueError)."""

    @abc.abstractmethod
    def _on_connected(self) -> None:
        """Queue again whatever the device must (re)assert after a new connection."""

    def _enqueue(self, key: str, message: Outgoing) -> None:
        """Queue a message to publish; a newer one with the same key replaces it."""
        self._outbox.pop(key, None)
        self._outbox[key] = message
        self._wake.set()

    def _changed(self) -> None:
        event, self._change = self._change, asyncio.Event()
        event.set()

    async def _serve(self, session: Session) -> None:
        await session.publish(Outgoing(self._status_topic, _status(True), retain=True))
        await session.subscribe(self._subscription)
        self.connected = True
        self.connections += 1
        log.debug("sim.device_connected", client_id=self.client_id)
        self._on_connected()
        self._changed()
        receive = asyncio.create_task(self._receive(session), name=f"{self.client_id}-receive")
        pump = asyncio.create_task(self._pump(session), name=f"{self.client_id}-pump")
        try:
            done, _ = await asyncio.wait((receive, pump), return_when=asyncio.FIRST_COMPLETED)
        finally:
            receive.cancel()
            pump.cancel()
            await asyncio.gather(receive, pump, return_exceptions=True)
        for task in done:
            task.result()  # a transport error ends the session (and becomes a LinkError)

    async def _receive(self, session: Session) -> None:
        async for received in session.messages():
            if len(received.payload) > MAX_PAYLOAD_BYTES:
                self._drop(received, f"{len(received.payload)} bytes")
                continue
            try:
                self._handle(received)
            except ValueError as exc:  # bad JSON or schema: log, count, drop
                self._drop(received, str(exc)[:200])
            except Exception:
                log.exception("sim.handler_failed", client_id=self.client_id)

    def _drop(self, received: Received, why: str) -> None:
        self.dropped += 1
        log.warning(
            "sim.message_dropped",
            client_id=self.client_id,
            topic=received.topic,
            payload=received.payload[:200],
            error=why,
        )

    async def _pump(self, session: Session) -> None:
        while True:
            while not self._outbox:
                self._wake.clear()
                await self._wake.wait()
            batch, self._outbox = self._outbox, {}
            try:
                await session.publish_all(batch.values())
            except BaseException:
                for key, message in batch.items():
                    self._outbox.setdefault(key, message)
                raise


class VirtualSign(_VirtualDevice):
    """A variable-message sign: shows the newest display until its lease lapses."""

    def __init__(
        self,
        address: BrokerAddress,
        line_id: str,
        sign_id: str,
        *,
        client_id: str | None = None,
        on_change: Callable[[VirtualSign], None] | None = None,
        backoff: Backoff = DEFAULT_BACKOFF,
        clock: Clock = utc_now,
        history_limit: int = 1000,
    ) -> None:
        super().__init__(
            address,
            client_id or f"sim-sign-{line_id}-{sign_id}",
            topics.sign(line_id, sign_id, topics.Channel.STATUS),
            topics.sign(line_id, sign_id, topics.Channel.DISPLAY),
            backoff,
            clock,
        )
        self.line_id = line_id
        self.sign_id = sign_id
        self.pages: Pages = ()
        self.seq: int | None = None
        self.expires_at: datetime | None = None
        self.lapsed = False
        self.history: deque[tuple[datetime, Pages]] = deque(maxlen=history_limit)
        self._state_topic = topics.sign(line_id, sign_id, topics.Channel.STATE)
        self._on_change = on_change
        self._lease: asyncio.TimerHandle | None = None

    @property
    def lit(self) -> bool:
        """True while the sign shows something."""
        return bool(self.pages)

    async def run(self) -> None:
        """Stay connected until cancelled; the lease timer dies with the sign."""
        try:
            await super().run()
        finally:
            self._cancel_lease()

    def _handle(self, received: Received) -> None:
        display = SignDisplayMessage.model_validate_json(received.payload)
        if self.seq is not None and display.seq <= self.seq:
            log.debug("sim.display_stale", sign=self.sign_id, seq=display.seq, applied=self.seq)
            return
        self.seq = display.seq
        self.expires_at = display.expires_at
        self._cancel_lease()
        pages: Pages = tuple(tuple(page) for page in display.pages)
        remaining = (display.expires_at - self._clock()).total_seconds()
        if pages and remaining > 0:
            self._lease = asyncio.get_running_loop().call_later(remaining, self._lapse)
        else:
            pages = ()  # a display already past its lease shows nothing
        self._show(pages, lapsed=False)

    def _on_connected(self) -> None:
        if self.seq is not None:
            self._enqueue("state", self._state_message())

    def _lapse(self) -> None:
        self._lease = None
        log.debug("sim.lease_lapsed", sign=self.sign_id, seq=self.seq)
        self._show((), lapsed=True)

    def _show(self, pages: Pages, lapsed: bool) -> None:
        shown_changed = pages != self.pages
        self.pages = pages
        self.lapsed = lapsed
        if shown_changed:
            self.history.append((self._clock(), pages))
        self._enqueue("state", self._state_message())
        self._changed()
        if shown_changed and self._on_change is not None:
            try:
                self._on_change(self)
            except Exception:
                log.exception("sim.on_change_failed", sign=self.sign_id)

    def _state_message(self) -> Outgoing:
        state = SignStateMessage(
            v=1,
            seq=self.seq or 0,
            pages=[list(page) for page in self.pages],
            at=self._clock(),
        )
        return Outgoing(self._state_topic, state.model_dump_json().encode(), retain=False)

    def _cancel_lease(self) -> None:
        if self._lease is not None:
            self._lease.cancel()
            self._lease = None


class VirtualTerminal(_VirtualDevice):
    """A stop terminal: destination buttons, a screen, and reliable delivery of its presses."""

    def __init__(
        self,
        address: BrokerAddress,
        line_id: str,
        terminal_id: str,
        stop: Stop,
        *,
        client_id: str | None = None,
        resend_interval: timedelta = timedelta(seconds=3),
        cancel_attempts: int = 5,
        new_request_id: Callable[[], str] = fresh_request_id,
        backoff: Backoff = DEFAULT_BACKOFF,
        clock: Clock = utc_now,
    ) -> None:
        super().__init__(
            address,
            client_id or f"sim-terminal-{line_id}-{terminal_id}",
            topics.terminal(line_id, terminal_id, topics.Channel.STATUS),
            topics.terminal(line_id, terminal_id, topics.Channel.SCREEN),
            backoff,
            clock,
        )
        self.line_id = line_id
        self.terminal_id = terminal_id
        self.stop = stop
        self.screen: ScreenMessage | None = None
        self.codes: dict[str, str] = {}
        """The code each request was shown with (latest requests only)."""
        self.outcomes: dict[str, str] = {}
        """The last screen state shown for each request (latest requests only)."""
        self._request_topic = topics.terminal(line_id, terminal_id, topics.Channel.REQUEST)
        self._cancel_topic = topics.terminal(line_id, terminal_id, topics.Channel.CANCEL)
        self._resend_interval = resend_interval.total_seconds()
        self._cancel_attempts = cancel_attempts
        self._new_request_id = new_request_id
        self._unconfirmed: dict[str, tuple[Outgoing, asyncio.TimerHandle]] = {}
        self._cancels: dict[str, tuple[Outgoing, asyncio.TimerHandle]] = {}

    @property
    def unconfirmed(self) -> frozenset[str]:
        """Request ids still re-sent: no screen has carried them yet."""
        return frozenset(self._unconfirmed)

    @property
    def pending_cancels(self) -> frozenset[str]:
        """Request ids whose cancel is still re-sent: no final screen has carried them yet."""
        return frozenset(self._cancels)

    async def run(self) -> None:
        """Stay connected until cancelled; re-send timers die with the terminal."""
        try:
            await super().run()
        finally:
            for _, timer in (*self._unconfirmed.values(), *self._cancels.values()):
                timer.cancel()

    def press(self, destination: str, seats: int = 1) -> str:
        """A rider pressed `destination`: send the request (and keep re-sending); its id."""
        request_id = self._new_request_id()
        body = TerminalRequest(
            v=1,
            request_id=request_id,
            destination=destination,
            seats=seats,
            pressed_at=self._clock(),
        )
        message = Outgoing(self._request_topic, body.model_dump_json().encode(), retain=False)
        self._send_request(request_id, message)
        self._changed()
        return request_id

    def cancel(self, request_id: str, reason: CancelReason = "cancelled") -> None:
        """The rider gave up (or left with a driver): send the cancel, re-sent a few times."""
        self._confirm(request_id)
        body = TerminalCancel(v=1, request_id=request_id, reason=reason)
        message = Outgoing(self._cancel_topic, body.model_dump_json().encode(), retain=False)
        self._send_cancel(request_id, message, self._cancel_attempts)
        self._changed()

    def _send_request(self, request_id: str, message: Outgoing) -> None:
        self._enqueue(f"request/{request_id}", message)
        timer = asyncio.get_running_loop().call_later(
            self._resend_interval, self._send_request, request_id, message
        )
        self._unconfirmed[request_id] = (message, timer)

    def _send_cancel(self, request_id: str, message: Outgoing, attempts_left: int) -> None:
        self._cancels.pop(request_id, None)
        if attempts_left <= 0:
            self._changed()
            return
        self._enqueue(f"cancel/{request_id}", message)
        timer = asyncio.get_running_loop().call_later(
            self._resend_interval, self._send_cancel, request_id, message, attempts_left - 1
        )
        self._cancels[request_id] = (message, timer)

    def _confirm(self, request_id: str) -> None:
        pending = self._unconfirmed.pop(request_id, None)
        if pending is not None:
            pending[1].cancel()
            self._outbox.pop(f"request/{request_id}", None)

    def _settle_cancel(self, request_id: str) -> None:
        pending = self._cancels.pop(request_id, None)
        if pending is not None:
            pending[1].cancel()

    def _on_connected(self) -> None:
        for request_id, (message, _) in self._unconfirmed.items():
            self._enqueue(f"request/{request_id}", message)
        for request_id, (message, _) in self._cancels.items():
            self._enqueue(f"cancel/{request_id}", message)

    def _handle(self, received: Received) -> None:
        screen = ScreenMessage.model_validate_json(received.payload)
        if self.screen is not None and screen.seq <= self.screen.seq:
            log.debug("sim.screen_stale", terminal=self.terminal_id, seq=screen.seq)
            return
        self.screen = screen
        request_id = screen.request_id
        if request_id is not None:
            self._confirm(request_id)
            if screen.code is not None:
                _remember(self.codes, request_id, screen.code)
            _remember(self.outcomes, request_id, screen.state)
            if screen.state != "waiting":
                self._settle_cancel(request_id)
        self._changed()


def _remember(table: dict[str, str], key: str, value: str) -> None:
    table.pop(key, None)
    table[key] = value
    while len(table) > _REMEMBERED_REQUESTS:
        del table[next(iter(table))]
