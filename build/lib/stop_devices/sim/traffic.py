"""Adapter: simulated riders and drivers on a network of virtual devices (demo mode, benchmarks).

Riders arrive at boarding stops as a Poisson process (faster during the line's service windows,
its peaks), press a downstream destination on the stop's terminal and wait. Drivers pass each lit
sign now and then; some stop, read the waiting rider's code off the terminal screen and validate
it through the injected `validate_code`. Some riders give up and cancel; a few leave with someone
and report "departed". Durations are real-world ones divided by `speedup`. Every step is logged
(`sim.press`, `sim.sign_lit`, `sim.pickup`, `sim.sign_dark`, ...) so the demo log tells the story.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import structlog

from dispatcher.model import Line, LineId, Network, Stop
from dispatcher.service_calendar import is_open
from stop_devices.mqtt_link import Backoff, BrokerAddress
from stop_devices.sim.devices import (
    FINAL_SCREEN_STATES,
    CancelReason,
    Clock,
    VirtualSign,
    VirtualTerminal,
    utc_now,
)

log = structlog.get_logger(__name__)

ValidateCode = Callable[[LineId, str], Awaitable[bool]]
"""Validates a rider's code for a driver (the demo calls the service's HTTP API)."""


@dataclass(frozen=True, slots=True)
class TrafficSettings:
    """How the simulated people behave, in real-world durations compressed by `speedup`."""

    speedup: float = 15.0
    passengers_per_hour: float = 12.0
    """Network-wide arrivals outside peaks (12/h at 15x: one rider every ~20 s)."""
    peak_factor: float = 2.0
    """Arrival rate multiplier inside the line's service windows."""
    ignore_hours: bool = False
    """Press even when the line is closed (demo mode: alive at any hour)."""
    car_interval: timedelta = timedelta(minutes=1)
    """Mean time between two cars passing a lit sign."""
    stop_probability: float = 0.25
    patience_min: timedelta = timedelta(minutes=6)
    patience_max: timedelta = timedelta(minutes=20)
    departed_probability: float = 0.05
    """Share of riders who leave with someone else and report "departed"."""
    max_waiting_per_stop: int = 6
    resend_interval: timedelta = timedelta(seconds=3)
    """Terminal re-send period (a device setting: real time, not compressed)."""
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if self.speedup <= 0 or self.passengers_per_hour <= 0 or self.peak_factor < 1:
            raise ValueError("speedup and passengers_per_hour must be > 0, peak_factor >= 1")
        if not 0 <= self.stop_probability <= 1 or not 0 <= self.departed_probability <= 1:
            raise ValueError("probabilities must lie in [0, 1]")
        if self.car_interval <= timedelta(0) or not (
            timedelta(0) <= self.patience_min <= self.patience_max
        ):
            raise ValueError("car_interval must be > 0 and 0 <= patience_min <= patience_max")

    def wall(self, duration: timedelta) -> float:
        """Seconds of wall-clock time a real-world `duration` takes in the simulation."""
        return duration.total_seconds() / self.speedup


@dataclass(frozen=True, slots=True)
class _Boarding:
    """A stop where riders can press: it has a terminal and somewhere to go."""

    line: Line
    stop: Stop
    terminal: VirtualTerminal
    destinations: tuple[Stop, ...]


@dataclass(slots=True)
class _Rider:
    request_id: str
    boarding: _Boarding
    destination: Stop
    arrived_at: float
    claimed: bool = False
    picked: asyncio.Event = field(default_factory=asyncio.Event)


class DemoTraffic:
    """Virtual devices for every terminal and sign of `network`, and people who use them."""

    def __init__(
        self,
        network: Network,
        address: BrokerAddress,
        validate_code: ValidateCode,
        settings: TrafficSettings = TrafficSettings(),
        *,
        rng: random.Random,
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.counts: Counter[str] = Counter()
        """What happened so far: pressed, picked_up, cancelled, departed, expired, ..."""
        self.terminals: list[VirtualTerminal] = []
        self.signs: list[tuple[Line, Stop, VirtualSign]] = []
        self._validate_code = validate_code
        self._rng = rng
        self._clock = clock
        self._boarding: list[_Boarding] = []
        self._waiting: dict[tuple[LineId, str], list[_Rider]] = {}
        self._change = asyncio.Event()
        for line in network.lines:
            for stop in line.all_stops():
                self._add_stop(address, line, stop)

    def _add_stop(self, address: BrokerAddress, line: Line, stop: Stop) -> None:
        self._waiting[(line.id, stop.id)] = []
        for spec in stop.signs:
            sign = VirtualSign(
                address,
                line.id,
                spec.id,
                on_change=self._sign_changed,
                backoff=self.settings.backoff,
                clock=self._clock,
            )
            self.signs.append((line, stop, sign))
        if stop.terminal is None:
            return
        terminal = VirtualTerminal(
            address,
            line.id,
            stop.terminal,
            stop,
            resend_interval=self.settings.resend_interval,
            backoff=self.settings.backoff,
            clock=self._clock,
        )
        self.terminals.append(terminal)
        destinations = line.destinations_from(stop.id)
        if destinations:
            self._boarding.append(_Boarding(line, stop, terminal, destinations))

    async def run(self) -> None:
        """Run every device, the arrivals and the drivers until cancelled."""
        log.info(
            "sim.started",
            terminals=len(self.terminals),
            signs=len(self.signs),
            boarding_stops=len(self._boarding),
            speedup=self.settings.speedup,
        )
        async with asyncio.TaskGroup() as group:
            for terminal in self.terminals:
                group.create_task(terminal.run(), name=f"sim-{terminal.terminal_id}")
            for line, stop, sign in self.signs:
                group.create_task(sign.run(), name=f"sim-{sign.sign_id}")
                group.create_task(
                    self._drive_past(line, stop, sign), name=f"sim-cars-{sign.sign_id}"
                )
            group.create_task(self._arrivals(group), name="sim-arrivals")

    async def wait_connected(self) -> None:
        """Return once every virtual device is connected (wrap in `asyncio.timeout`)."""
        for device in (*self.terminals, *(sign for _, _, sign in self.signs)):
            await device.wait_for(lambda d: d.connected)

    async def wait_for(
        self,
        predicate: Callable[[DemoTraffic], bool],
        timeout: float | timedelta | None = None,  # noqa: ASYNC109 - a deadline is the point
    ) -> None:
        """Return once `predicate(self)` holds (checked whenever `counts` change)."""
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        async with asyncio.timeout(seconds):
            while not predicate(self):
                await self._change.wait()

    def _count(self, what: str) -> None:
        self.counts[what] += 1
        event, self._change = self._change, asyncio.Event()
        event.set()

    def _rate_factor(self, line: Line) -> float:
        """Arrival rate of `line` relative to the off-peak rate (0 while closed)."""
        if line.service_hours is None:
            return 1.0
        if is_open(line, self._clock()):
            return self.settings.peak_factor
        return 1.0 if self.settings.ignore_hours else 0.0

    async def _arrivals(self, group: asyncio.TaskGroup) -> None:
        if not self._boarding:
            log.warning("sim.no_boarding_stop")
            return
        top_rate = self.settings.passengers_per_hour * self.settings.peak_factor / 3600
        wall_rate = top_rate * self.settings.speedup
        while True:
            await asyncio.sleep(self._rng.expovariate(wall_rate))
            boarding = self._rng.choice(self._boarding)
            # Thinning: draw at the peak rate, keep each arrival with the line's relative rate.
            if self._rng.random() * self.settings.peak_factor >= self._rate_factor(boarding.line):
                continue
            waiting = self._waiting[(boarding.line.id, boarding.stop.id)]
            if len(waiting) >= self.settings.max_waiting_per_stop:
                log.debug("sim.stop_crowded", stop=boarding.stop.id, waiting=len(waiting))
                continue
            group.create_task(self._rider(boarding, waiting), name="sim-rider")

    async def _rider(self, boarding: _Boarding, waiting: list[_Rider]) -> None:
        destination = self._rng.choice(boarding.destinations)
        loop = asyncio.get_running_loop()
        request_id = boarding.terminal.press(destination.id)
        rider = _Rider(request_id, boarding, destination, loop.time())
        waiting.append(rider)
        self._count("pressed")
        log.info(
            "sim.press",
            line=boarding.line.id,
            stop=boarding.stop.id,
            terminal=boarding.terminal.terminal_id,
            destination=destination.id,
            request_id=request_id,
        )
        try:
            await self._wait_and_leave(rider, loop.time())
        except Exception:
            log.exception("sim.rider_failed", request_id=request_id)
        finally:
            waiting.remove(rider)

    async def _wait_and_leave(self, rider: _Rider, now: float) -> None:
        settings = self.settings
        terminal = rider.boarding.terminal
        request_id = rider.request_id
        patience = self._rng.uniform(
            settings.wall(settings.patience_min), settings.wall(settings.patience_max)
        )
        departs = self._rng.random() < settings.departed_probability
        leave_at = now + (self._rng.uniform(0, patience) if departs else patience)
        if await self._until(rider, lambda t: request_id in t.outcomes, leave_at):
            state = terminal.outcomes.get(request_id)
            if state == "waiting":
                code = terminal.codes.get(request_id)
                log.info("sim.waiting", request_id=request_id, code=code)
            elif state in ("refused", "closed"):
                lines = terminal.screen.lines if terminal.screen else []
                self._count(state)
                log.info(f"sim.{state}", request_id=request_id, screen=lines)
                return
        if await self._until(
            rider, lambda t: t.outcomes.get(request_id) in FINAL_SCREEN_STATES, leave_at
        ):
            if not rider.picked.is_set():
                state = terminal.outcomes.get(request_id, "?")
                self._count(state)
                log.info(f"sim.{state}", request_id=request_id)  # expired, fallback, ...
            return
        reason: CancelReason = "departed" if departs else "cancelled"
        terminal.cancel(request_id, reason)
        self._count(reason)
        event = "sim.departed" if departs else "sim.give_up"
        log.info(
            event,
            request_id=request_id,
            waited_s=round(asyncio.get_running_loop().time() - rider.arrived_at, 1),
        )

    async def _until(
        self, rider: _Rider, predicate: Callable[[VirtualTerminal], bool], deadline: float
    ) -> bool:
        """True once the rider is picked up or `predicate` holds; False at `deadline`."""
        terminal = rider.boarding.terminal
        if rider.picked.is_set() or predicate(terminal):
            return True
        remaining = deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            return False
        watch = asyncio.ensure_future(terminal.wait_for(predicate))
        picked = asyncio.ensure_future(rider.picked.wait())
        try:
            done, _ = await asyncio.wait(
                (watch, picked), timeout=remaining, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            watch.cancel()
            picked.cancel()
            await asyncio.gather(watch, picked, return_exceptions=True)
        return bool(done)

    async def _drive_past(self, line: Line, stop: Stop, sign: VirtualSign) -> None:
        mean_gap = self.settings.wall(self.settings.car_interval)
        while True:
            await sign.wait_for(lambda s: s.lit)
            await asyncio.sleep(self._rng.expovariate(1 / mean_gap))
            if not sign.lit:
                continue
            if self._rng.random() >= self.settings.stop_probability:
                log.debug("sim.car_passed", sign=sign.sign_id)
                continue
            await self._driver_stops(line, stop, sign)

    async def _driver_stops(self, line: Line, stop: Stop, sign: VirtualSign) -> None:
        rider = next(
            (
                rider
                for rider in self._waiting[(line.id, stop.id)]
                if not rider.claimed and rider.request_id in rider.boarding.terminal.codes
            ),
            None,
        )
        if rider is None:
            log.info("sim.driver_stopped_for_nobody", line=line.id, stop=stop.id, sign=sign.sign_id)
            return
        rider.claimed = True
        code = rider.boarding.terminal.codes[rider.request_id]
        log.info(
            "sim.driver_stopped",
            line=line.id,
            stop=stop.id,
            sign=sign.sign_id,
            request_id=rider.request_id,
            code=code,
        )
        try:
            accepted = await self._validate_code(line.id, code)
        except Exception as exc:
            rider.claimed = False
            self._count("validate_failed")
            log.warning("sim.validate_failed", request_id=rider.request_id, error=str(exc)[:200])
            return
        if not accepted:
            rider.claimed = False
            self._count("code_rejected")
            log.warning("sim.code_rejected", request_id=rider.request_id, code=code)
            return
        rider.picked.set()
        self._count("picked_up")
        waited = asyncio.get_running_loop().time() - rider.arrived_at
        log.info(
            "sim.pickup",
            line=line.id,
            stop=stop.id,
            destination=rider.destination.id,
            request_id=rider.request_id,
            waited_s=round(waited, 1),
            simulated_wait_min=round(waited * self.settings.speedup / 60, 1),
        )

    def _sign_changed(self, sign: VirtualSign) -> None:
        if sign.lit:
            shown = [" / ".join(page) for page in sign.pages]
            log.info("sim.sign_lit", line=sign.line_id, sign=sign.sign_id, pages=shown)
        else:
            log.info(
                "sim.sign_dark", line=sign.line_id, sign=sign.sign_id, lease_lapsed=sign.lapsed
            )
