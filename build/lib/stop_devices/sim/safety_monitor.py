"""Adapter: the "no phantom passenger" monitor — watches signs and terminals as a road user would.

Safety rule: a sign must not show a passenger ("COVOITURAGE …") at a stop where nobody waits
for longer than one lease (`sign_lease_seconds` of the line). A driver who stops for nobody
stops trusting the signs.

What the monitor knows, from the broker alone (it never asks the service):
- what each sign shows: the newest display by `seq`, lit until its `expires_at` (a sign blanks
  itself at the end of its lease, exactly as the devices do);
- who waits at each stop: a press seen on a terminal's `request` topic, or a `waiting` screen,
  makes a rider wait; a final screen (picked up, cancelled, expired, fallback, refused, closed)
  or the rider's own `cancel` ends the wait.
Riders who asked by SMS or API are not visible on terminal topics: feed them with `rider_waits`
/ `rider_left`, or do not use the monitor with them.

`SafetyLedger` is the bookkeeping (time passed in, thread-safe); `SafetyMonitor` feeds it from a
broker connection that survives broker restarts and checks it every `tick`.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import structlog
from pydantic import ValidationError

from dispatcher.model import DeviceKind, Network
from dispatcher.sign_arbiter import HEADING
from stop_devices import mqtt_link, topics
from stop_devices.mqtt_link import Backoff, BrokerAddress, Received
from stop_devices.schema import ScreenMessage, SignDisplayMessage, TerminalCancel, TerminalRequest

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
FINAL_STATES = frozenset({"picked_up", "cancelled", "expired", "fallback", "closed", "refused"})
WATCHED: tuple[str, ...] = (
    f"{topics.PREFIX}/+/signs/+/display",
    f"{topics.PREFIX}/+/terminals/+/screen",
    f"{topics.PREFIX}/+/terminals/+/request",
    f"{topics.PREFIX}/+/terminals/+/cancel",
)


QUICK_BACKOFF = Backoff(initial=0.05, cap=1.0)
"""A watcher reconnects fast: it must see the broker's return as soon as the signs do."""


def utc_now() -> datetime:
    """The wall clock, aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Violation:
    """A sign that showed a passenger to drivers while nobody waited at its stop."""

    sign_id: str
    stop_id: str
    since: datetime
    seen_for: timedelta
    pages: tuple[tuple[str, ...], ...]


@dataclass(frozen=True, slots=True)
class SafetyReport:
    """What the monitor saw."""

    violations: tuple[Violation, ...]
    longest_phantom: timedelta
    """Longest time a sign showed a passenger nobody was (within the rule or not)."""
    displays: dict[str, int]
    """Display messages received, per sign."""
    waiting: int
    """Riders waiting now, as far as the monitor knows."""

    @property
    def safe(self) -> bool:
        """True when no sign broke the rule."""
        return not self.violations


@dataclass
class _Sign:
    stop_id: str
    lease: timedelta
    seq: int | None = None
    pages: tuple[tuple[str, ...], ...] = ()
    expires_at: datetime | None = None
    phantom_since: datetime | None = None
    reported: bool = False


@dataclass
class SafetyLedger:
    """Signs and riders as seen on the wire; `check(now)` finds phantom passengers."""

    network: Network
    _signs: dict[str, _Sign] = field(default_factory=dict)
    _stop_of_terminal: dict[str, str] = field(default_factory=dict)
    _riders: dict[tuple[str, str], str] = field(default_factory=dict)
    """(terminal or channel, rider key) -> stop id, for every rider now waiting."""
    _violations: list[Violation] = field(default_factory=list)
    _displays: Counter[str] = field(default_factory=Counter)
    _longest: timedelta = timedelta(0)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        for line in self.network.lines:
            for stop in line.all_stops():
                for spec in stop.signs:
                    self._signs[spec.id] = _Sign(stop.id, line.tuning.sign_lease)
                if stop.terminal is not None:
                    self._stop_of_terminal[stop.terminal] = stop.id

    def observe(self, received: Received, now: datetime) -> None:
        """Take one message into account (anything malformed is ignored: not our concern)."""
        topic = topics.parse(received.topic)
        if topic is None:
            return
        try:
            with self._lock:
                self._apply(topic, received.payload, now)
        except (ValidationError, ValueError):
            return
        self.check(now)

    def _apply(self, topic: topics.DeviceTopic, payload: bytes, now: datetime) -> None:
        if topic.kind is DeviceKind.SIGN:
            sign = self._signs.get(topic.device_id)
            if sign is None or topic.channel is not topics.Channel.DISPLAY:
                return
            display = SignDisplayMessage.model_validate_json(payload)
            self._displays[topic.device_id] += 1
            if sign.seq is None or display.seq > sign.seq:
                sign.seq = display.seq
                sign.pages = tuple(tuple(page) for page in display.pages)
                sign.expires_at = display.expires_at
            return
        stop_id = self._stop_of_terminal.get(topic.device_id)
        if stop_id is None:
            return
        match topic.channel:
            case topics.Channel.REQUEST:
                press = TerminalRequest.model_validate_json(payload)
                self._riders.setdefault((topic.device_id, press.request_id), stop_id)
            case topics.Channel.CANCEL:
                cancel = TerminalCancel.model_validate_json(payload)
                self._riders.pop((topic.device_id, cancel.request_id), None)
            case topics.Channel.SCREEN:
                screen = ScreenMessage.model_validate_json(payload)
                if screen.request_id is None:
                    return
                key = (topic.device_id, screen.request_id)
                if screen.state == "waiting":
                    self._riders[key] = stop_id
                elif screen.state in FINAL_STATES:
                    self._riders.pop(key, None)
            case _:
                return

    def rider_waits(self, channel: str, rider: str, stop_id: str) -> None:
        """A rider the terminals cannot see (SMS, API) waits at `stop_id`."""
        with self._lock:
            self._riders[(channel, rider)] = stop_id

    def rider_left(self, channel: str, rider: str) -> None:
        """That rider no longer waits."""
        with self._lock:
            self._riders.pop((channel, rider), None)

    def check(self, now: datetime) -> None:
        """Start, extend or end each sign's phantom episode at `now`; record violations."""
        with self._lock:
            occupied = set(self._riders.values())
            for sign_id, sign in self._signs.items():
                shows_passenger = (
                    sign.expires_at is not None
                    and now < sign.expires_at
                    and any(page and page[0] == HEADING for page in sign.pages)
                )
                if not shows_passenger or sign.stop_id in occupied:
                    if sign.phantom_since is not None:
                        self._longest = max(self._longest, now - sign.phantom_since)
                    sign.phantom_since, sign.reported = None, False
                    continue
                if sign.phantom_since is None:
                    sign.phantom_since = now
                seen_for = now - sign.phantom_since
                self._longest = max(self._longest, seen_for)
                if seen_for > sign.lease and not sign.reported:
                    sign.reported = True
                    violation = Violation(
                        sign_id, sign.stop_id, sign.phantom_since, seen_for, sign.pages
                    )
                    self._violations.append(violation)
                    log.error(
                        "safety.phantom_passenger",
                        sign=sign_id,
                        stop=sign.stop_id,
                        since=sign.phantom_since.isoformat(),
                        pages=[list(page) for page in sign.pages],
                    )

    def report(self) -> SafetyReport:
        """Everything seen so far."""
        with self._lock:
            return SafetyReport(
                violations=tuple(self._violations),
                longest_phantom=self._longest,
                displays=dict(self._displays),
                waiting=len(self._riders),
            )


class SafetyMonitor:
    """Feeds a `SafetyLedger` from the broker; survives broker restarts; checks every `tick`."""

    def __init__(
        self,
        network: Network,
        address: BrokerAddress,
        *,
        client_id: str = "safety-monitor",
        tick: timedelta = timedelta(milliseconds=100),
        clock: Clock = utc_now,
        backoff: Backoff = QUICK_BACKOFF,
    ) -> None:
        self.ledger = SafetyLedger(network)
        self._address = address
        self._client_id = client_id
        self._tick = tick.total_seconds()
        self._clock = clock
        self._backoff = backoff
        self.connections = 0
        self.connected = asyncio.Event()

    async def run(self) -> None:
        """Watch until cancelled."""
        checker = asyncio.create_task(self._check_forever(), name="safety-check")
        attempt = 0
        try:
            while True:
                try:
                    async with mqtt_link.connect(self._address, self._client_id) as session:
                        await session.subscribe(*WATCHED)
                        attempt = 0
                        self.connections += 1
                        self.connected.set()
                        async for received in session.messages():
                            self.ledger.observe(received, self._clock())
                except mqtt_link.LinkError as exc:
                    log.info("safety.disconnected", error=str(exc)[:200])
                finally:
                    self.connected.clear()
                await asyncio.sleep(self._backoff.delay(attempt))
                attempt += 1
        finally:
            checker.cancel()

    async def _check_forever(self) -> None:
        while True:
            self.ledger.check(self._clock())
            await asyncio.sleep(self._tick)
