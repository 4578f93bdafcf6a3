"""Virtual signs, terminals and demo traffic against a real Mosquitto this module starts itself."""

from __future__ import annotations

import asyncio
import contextlib
import random
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from dispatcher.effects import (
    Page,
    ScreenState,
    ShowOnSign,
    ShowOnTerminal,
    SignDisplay,
    TerminalScreen,
)
from dispatcher.model import (
    Direction,
    DirectionId,
    Line,
    LineId,
    Network,
    SignId,
    SignSpec,
    Stop,
    StopId,
    TerminalId,
)
from dispatcher.request_machine import DeviceRequestId
from stop_devices import mqtt_link, topics, translate
from stop_devices.mqtt_link import Backoff, BrokerAddress, Received
from stop_devices.schema import SignStateMessage, StatusMessage, TerminalCancel, TerminalRequest
from stop_devices.sim.simulator import DemoTraffic, TrafficSettings, VirtualSign, VirtualTerminal
from tests.support.brokers import Mosquitto, free_port

DEADLINE = 10.0  # seconds any awaited condition may take before the test fails
FAST_BACKOFF = Backoff(initial=0.05, cap=0.3)
SIGN = SignId("pmv-a-1")
TERMINAL = TerminalId("t-a")
ON_SIGN: tuple[Page, ...] = (("COVOITURAGE", "DUNKERQUE"),)

# --------------------------------------------------------------------------- broker fixture


@pytest.fixture(scope="module")
def address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrokerAddress]:
    """A Mosquitto shared by this module's tests (each test uses its own line id)."""
    broker = Mosquitto(free_port(), tmp_path_factory.mktemp("mosquitto"))
    broker.start()
    yield BrokerAddress("127.0.0.1", broker.port)
    broker.stop()


@pytest.fixture
def line_id() -> LineId:
    """A line id no other test uses, so retained messages never leak between tests."""
    return LineId(f"line-{uuid.uuid4().hex[:10]}")


# --------------------------------------------------------------------------- helpers


class Recorder:
    """Every message a test's own subscription received, with a deadline wait."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self._change = asyncio.Event()

    def on(self, topic: str) -> list[Received]:
        """Messages received on one topic, in order."""
        return [message for message in self.messages if message.topic == topic]

    async def wait_for(self, predicate: Callable[[Recorder], bool]) -> None:
        """Return once `predicate(self)` holds; fail after the deadline."""
        async with asyncio.timeout(DEADLINE):
            while not predicate(self):
                await self._change.wait()

    async def pump(self, session: mqtt_link.Session) -> None:
        async for message in session.messages():
            self.messages.append(message)
            event, self._change = self._change, asyncio.Event()
            event.set()


@contextlib.asynccontextmanager
async def recording(address: BrokerAddress, *filters: str) -> AsyncIterator[Recorder]:
    """A subscription on its own session, recorded until the block ends."""
    async with mqtt_link.connect(address, f"rec-{uuid.uuid4().hex[:8]}") as session:
        await session.subscribe(*filters)
        recorder = Recorder()
        task = asyncio.create_task(recorder.pump(session))
        try:
            yield recorder
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


@contextlib.asynccontextmanager
async def running(device: VirtualSign | VirtualTerminal) -> AsyncIterator[None]:
    """The device runs (and is connected) for the duration of the block."""
    task = asyncio.create_task(device.run())
    connected = asyncio.ensure_future(device.wait_for(lambda d: d.connected, DEADLINE))
    try:
        await asyncio.wait((task, connected), return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            task.result()  # the device failed before it connected
        await connected
        yield
    finally:
        connected.cancel()
        task.cancel()
        await asyncio.gather(task, connected, return_exceptions=True)


async def publish(address: BrokerAddress, *messages: mqtt_link.Outgoing) -> None:
    """Publish as the dispatcher would, in order."""
    async with mqtt_link.connect(address) as session:
        for message in messages:
            await session.publish(message)


def display(
    line_id: LineId, seq: int, pages: tuple[Page, ...], lease: timedelta
) -> mqtt_link.Outgoing:
    effect = ShowOnSign(line_id, SIGN, SignDisplay(seq, pages, datetime.now(UTC) + lease))
    return translate.encode_sign(effect)


def screen(
    line_id: LineId, seq: int, state: ScreenState, request_id: str | None, code: str | None
) -> mqtt_link.Outgoing:
    shown = TerminalScreen(
        seq,
        state,
        DeviceRequestId(request_id) if request_id else None,
        code,
        ("Vers Dunkerque",),
        datetime.now(UTC) + timedelta(minutes=5),
    )
    return translate.encode_terminal(ShowOnTerminal(line_id, TERMINAL, shown))


async def retained(address: BrokerAddress, topic: str) -> Received:
    """The retained message a fresh subscriber receives on `topic`."""
    async with recording(address, topic) as recorder:
        await recorder.wait_for(lambda r: bool(r.messages))
        return recorder.messages[0]


def tiny_network(line_id: LineId) -> Network:
    boarding = Stop(
        id=StopId("stop-a"),
        name="Calais",
        code="CAL",
        lat=50.95,
        lon=1.86,
        km=0.0,
        terminal=TERMINAL,
        signs=(SignSpec(SIGN, 250),),
    )
    arrival = Stop(
        id=StopId("stop-b"),
        name="Dunkerque",
        code="DUN",
        lat=51.03,
        lon=2.37,
        km=40.0,
        terminal=None,
        signs=(),
    )
    direction = Direction(DirectionId("to-b"), "Dunkerque", (boarding, arrival))
    return Network((Line(line_id, "Test line", "Europe/Paris", (direction,)),))


# --------------------------------------------------------------------------- signs


async def test_sign_applies_a_display_and_reports_its_state(
    address: BrokerAddress, line_id: LineId
) -> None:
    sign = VirtualSign(address, line_id, SIGN, backoff=FAST_BACKOFF)
    state_topic = topics.sign(line_id, SIGN, topics.Suffix.STATE)
    async with recording(address, state_topic) as states, running(sign):
        await publish(address, display(line_id, 7, ON_SIGN, timedelta(minutes=2)))

        await sign.wait_for(lambda s: s.pages == ON_SIGN, DEADLINE)
        await states.wait_for(lambda r: bool(r.on(state_topic)))

    state = SignStateMessage.model_validate_json(states.on(state_topic)[-1].payload)
    assert (state.seq, state.pages) == (7, [list(page) for page in ON_SIGN])
    assert state.at is not None
    assert sign.seq == 7
    assert [pages for _, pages in sign.history] == [ON_SIGN]


async def test_sign_ignores_a_display_that_is_not_newer(
    address: BrokerAddress, line_id: LineId
) -> None:
    sign = VirtualSign(address, line_id, SIGN, backoff=FAST_BACKOFF)
    older: tuple[Page, ...] = (("COVOITURAGE", "CALAIS"),)
    same_seq: tuple[Page, ...] = (("COVOITURAGE", "GRAVELINES"),)
    newest: tuple[Page, ...] = (("COVOITURAGE", "BERGUES"),)
    lease = timedelta(minutes=2)
    async with running(sign):
        await publish(address, display(line_id, 5, ON_SIGN, lease))
        await sign.wait_for(lambda s: s.seq == 5, DEADLINE)

        # One publisher, one topic: the broker keeps the order, so 4 and 5 arrive before 6.
        await publish(
            address,
            display(line_id, 4, older, lease),
            display(line_id, 5, same_seq, lease),
            display(line_id, 6, newest, lease),
        )
        await sign.wait_for(lambda s: s.seq == 6, DEADLINE)

    assert [pages for _, pages in sign.history] == [ON_SIGN, newest]


async def test_sign_blanks_itself_when_its_lease_lapses(
    address: BrokerAddress, line_id: LineId
) -> None:
    sign = VirtualSign(address, line_id, SIGN, backoff=FAST_BACKOFF)
    state_topic = topics.sign(line_id, SIGN, topics.Suffix.STATE)
    async with recording(address, state_topic) as states, running(sign):
        message = display(line_id, 3, ON_SIGN, timedelta(milliseconds=500))
        await publish(address, message)
        await sign.wait_for(lambda s: s.lit, DEADLINE)

        await sign.wait_for(lambda s: not s.lit, DEADLINE)
        await states.wait_for(lambda r: len(r.on(state_topic)) >= 2)

    assert sign.lapsed
    assert sign.expires_at is not None
    blanked_at = sign.history[-1][0]
    assert blanked_at >= sign.expires_at - timedelta(milliseconds=50)  # timer, not early
    reports = [SignStateMessage.model_validate_json(m.payload) for m in states.on(state_topic)]
    assert [(r.seq, r.pages) for r in reports] == [(3, [list(ON_SIGN[0])]), (3, [])]


async def test_sign_is_online_retained_and_its_will_says_offline_when_killed(
    address: BrokerAddress, line_id: LineId
) -> None:
    # A process killed with SIGKILL closes its socket without DISCONNECT: an abrupt death.
    status_topic = topics.sign(line_id, SIGN, topics.Suffix.STATUS)
    program = (
        "import asyncio, sys\n"
        "from stop_devices.mqtt_link import BrokerAddress\n"
        "from stop_devices.sim.devices import VirtualSign\n"
        "address = BrokerAddress('127.0.0.1', int(sys.argv[1]))\n"
        "asyncio.run(VirtualSign(address, sys.argv[2], sys.argv[3]).run())\n"
    )
    device = await asyncio.create_subprocess_exec(
        *(sys.executable, "-c", program, str(address.port), line_id, SIGN),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with recording(address, status_topic) as statuses:
            await statuses.wait_for(lambda r: bool(r.messages))
            online = await retained(address, status_topic)

            device.kill()
            await statuses.wait_for(lambda r: len(r.messages) >= 2)
    finally:
        if device.returncode is None:
            device.kill()
        await device.wait()

    assert online.retain
    assert StatusMessage.model_validate_json(online.payload).online is True
    will = StatusMessage.model_validate_json(statuses.messages[-1].payload)
    assert will.online is False
    assert (await retained(address, status_topic)).payload == b'{"v":1,"online":false}'


async def test_sign_reconnects_and_resubscribes_after_the_broker_restarts(
    mosquitto: Mosquitto, line_id: LineId
) -> None:
    own = BrokerAddress("127.0.0.1", mosquitto.port)
    sign = VirtualSign(own, line_id, SIGN, backoff=FAST_BACKOFF)
    async with running(sign):
        await asyncio.to_thread(mosquitto.stop)
        await sign.wait_for(lambda s: not s.connected, DEADLINE)
        await asyncio.to_thread(mosquitto.start)

        await sign.wait_for(lambda s: s.connected and s.connections == 2, DEADLINE)
        status = await retained(own, topics.sign(line_id, SIGN, topics.Suffix.STATUS))
        await publish(own, display(line_id, 1, ON_SIGN, timedelta(minutes=1)))
        await sign.wait_for(lambda s: s.pages == ON_SIGN, DEADLINE)

    assert StatusMessage.model_validate_json(status.payload).online is True


# --------------------------------------------------------------------------- terminals


async def test_terminal_resends_its_request_until_a_screen_carries_its_id(
    address: BrokerAddress, line_id: LineId
) -> None:
    stop = tiny_network(line_id).lines[0].all_stops()[0]
    terminal = VirtualTerminal(
        address, line_id, TERMINAL, stop, resend_interval=timedelta(milliseconds=100)
    )
    request_topic = topics.terminal(line_id, TERMINAL, topics.Suffix.REQUEST)

    def sent(recorder: Recorder, request_id: str) -> list[TerminalRequest]:
        requests = [TerminalRequest.model_validate_json(m.payload) for m in recorder.messages]
        return [request for request in requests if request.request_id == request_id]

    async with recording(address, request_topic) as requests, running(terminal):
        first = terminal.press("stop-b")
        await requests.wait_for(lambda r: len(sent(r, first)) >= 3)
        assert first in terminal.unconfirmed

        await publish(address, screen(line_id, 1, ScreenState.WAITING, first, "4821"))
        await terminal.wait_for(lambda t: first not in t.unconfirmed, DEADLINE)

        # A later press re-sent twice proves time went by; the first one was not re-sent since.
        second = terminal.press("stop-b", seats=2)
        await requests.wait_for(lambda r: len(sent(r, second)) >= 3)

    order = [TerminalRequest.model_validate_json(m.payload).request_id for m in requests.messages]
    assert first not in order[order.index(second) :]
    assert len({request.model_dump_json() for request in sent(requests, first)}) == 1  # same
    assert sent(requests, second)[0].seats == 2
    assert terminal.codes[first] == "4821"
    assert terminal.outcomes[first] == "waiting"
    assert terminal.unconfirmed == {second}


async def test_terminal_ignores_an_older_screen_and_resends_a_cancel_until_settled(
    address: BrokerAddress, line_id: LineId
) -> None:
    stop = tiny_network(line_id).lines[0].all_stops()[0]
    terminal = VirtualTerminal(
        address, line_id, TERMINAL, stop, resend_interval=timedelta(milliseconds=100)
    )
    cancel_topic = topics.terminal(line_id, TERMINAL, topics.Suffix.CANCEL)
    async with recording(address, cancel_topic) as cancels, running(terminal):
        request_id = terminal.press("stop-b")
        await publish(
            address,
            screen(line_id, 5, ScreenState.WAITING, request_id, "1234"),
            screen(line_id, 4, ScreenState.EXPIRED, request_id, None),
        )
        await terminal.wait_for(lambda t: t.screen is not None and t.screen.seq == 5, DEADLINE)

        terminal.cancel(request_id, "departed")
        await cancels.wait_for(lambda r: len(r.messages) >= 2)
        await publish(address, screen(line_id, 6, ScreenState.PICKED_UP, request_id, None))
        await terminal.wait_for(lambda t: not t.pending_cancels, DEADLINE)

    cancel = TerminalCancel.model_validate_json(cancels.messages[0].payload)
    assert (cancel.request_id, cancel.reason) == (request_id, "departed")
    assert terminal.outcomes[request_id] == "picked_up"
    assert terminal.screen is not None
    assert terminal.screen.seq == 6


# --------------------------------------------------------------------------- demo traffic


async def test_demo_traffic_tells_a_ride_from_press_to_pickup(
    address: BrokerAddress, line_id: LineId
) -> None:
    """A stand-in dispatcher answers presses; the simulated driver validates the shown code."""
    request_topic = topics.terminal(line_id, TERMINAL, topics.Suffix.REQUEST)
    validated: list[tuple[str, str]] = []
    seq = 0

    async def dispatcher(session: mqtt_link.Session) -> None:
        nonlocal seq
        answered: set[str] = set()
        async for message in session.messages():
            press = TerminalRequest.model_validate_json(message.payload)
            if press.request_id in answered:
                continue
            answered.add(press.request_id)
            seq += 1
            await session.publish_all(
                [
                    screen(line_id, seq, ScreenState.WAITING, press.request_id, f"{seq:04d}"),
                    display(line_id, seq, ON_SIGN, timedelta(minutes=1)),
                ]
            )

    async def validate_code(line: LineId, code: str) -> bool:
        nonlocal seq
        validated.append((line, code))
        seq += 1
        await publish(address, display(line_id, seq, (), timedelta(minutes=1)))
        return True

    settings = TrafficSettings(
        speedup=60,
        passengers_per_hour=240,  # 4 riders a second of wall time
        ignore_hours=True,
        car_interval=timedelta(seconds=6),  # a car every 0.1 s
        stop_probability=1.0,
        patience_min=timedelta(hours=1),
        patience_max=timedelta(hours=1),
        departed_probability=0.0,
        max_waiting_per_stop=1,
        resend_interval=timedelta(milliseconds=200),
        backoff=FAST_BACKOFF,
    )
    traffic = DemoTraffic(
        tiny_network(line_id), address, validate_code, settings, rng=random.Random(4821)
    )
    with capture_logs() as logs:
        async with mqtt_link.connect(address) as service:
            await service.subscribe(request_topic)
            answering = asyncio.create_task(dispatcher(service))
            simulation = asyncio.create_task(traffic.run())
            try:
                await traffic.wait_for(lambda t: t.counts["picked_up"] >= 1, DEADLINE)
                sign = traffic.signs[0][2]
                await sign.wait_for(lambda s: any(not pages for _, pages in s.history), DEADLINE)
            finally:
                simulation.cancel()
                answering.cancel()
                await asyncio.gather(simulation, answering, return_exceptions=True)

    assert validated[0] == (line_id, "0001")
    events = [entry["event"] for entry in logs]
    for step in ("sim.press", "sim.sign_lit", "sim.driver_stopped", "sim.pickup", "sim.sign_dark"):
        assert step in events
    assert events.index("sim.press") < events.index("sim.sign_lit") < events.index("sim.pickup")
