"""Random event sequences: `step` never raises and keeps the core's invariants after every event."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatcher import sign_arbiter
from dispatcher.effects import Effect, RejectEvent, ShowOnSign, ShowOnTerminal
from dispatcher.events import (
    Actor,
    CodeValidated,
    DeadlineReached,
    DevicesResyncRequested,
    DeviceStatusReported,
    Event,
    FallbackRequested,
    LeaseRefreshDue,
    OperatorMessageCleared,
    OperatorMessagePosted,
    RideCancelled,
    SignReported,
)
from dispatcher.model import DeviceKind, LineId, Network, RequestId, SignId, StopId
from dispatcher.request_machine import RequestState
from dispatcher.state import CODE_HOLDING_STATES
from tests.core.core_kit import (
    LINE,
    LINE_OF,
    OTHER_LINE,
    T0,
    TERMINAL_OF,
    Core,
    api,
    ms,
    only,
    press,
    sms,
    terminal_source,
)

PRESS_IDS = [f"p{n}" for n in range(4)]
PHONES = [f"+3360000000{n}" for n in range(3)]
SIDS = [f"SM{n}" for n in range(4)]
CODES = st.one_of(st.from_regex(r"\A[0-9]{4}\Z"), st.sampled_from(["0000", "9999"]), st.text())
OPERATIONS = [
    "press",
    "sms",
    "api",
    "cancel",
    "code",
    "deadline",
    "refresh",
    "resync",
    "report",
    "status",
    "restart",
    "post",
    "clear",
    "fallback_now",
]
MESSAGE_IDS = ["m0", "m1"]


class Run:
    """One random run: the dispatcher, its clock, and what it sent so far."""

    def __init__(self, network: Network) -> None:
        self.core = Core(network)
        self.now = T0
        self.next_id = 0
        self.sign_seqs: dict[SignId, int] = {}
        self.screen_seqs: dict[str, int] = {}
        self.stops = [stop for line in network.lines for stop in line.all_stops()]
        self.signs = [sign.id for stop in self.stops for sign in stop.signs]
        self.devices = list(network.devices())

    def new_id(self) -> str:
        self.next_id += 1
        return f"r{self.next_id}"

    def draw_event(self, data: st.DataObject) -> Event | None:
        """An event for the current state (None: a restart was done instead)."""
        operation = data.draw(st.sampled_from(OPERATIONS))
        state = self.core.state
        stop_ids = [stop.id for stop in self.stops]
        known_ids = list(state.requests) or [RequestId("ghost")]
        match operation:
            case "press":
                stop = data.draw(st.sampled_from(sorted(TERMINAL_OF)))
                destination = data.draw(st.sampled_from([*stop_ids, StopId("nowhere")]))
                press_id = data.draw(st.sampled_from(PRESS_IDS))
                code = data.draw(CODES)
                return press(stop, destination, self.new_id(), code=code, press_id=press_id)
            case "sms" | "api":
                stop = data.draw(st.sampled_from(stop_ids))
                destination = data.draw(st.sampled_from(stop_ids))
                code = data.draw(CODES)
                if operation == "api":
                    return api(stop, destination, self.new_id(), code=code)
                phone = data.draw(st.sampled_from(PHONES))
                sid = data.draw(st.sampled_from(SIDS))
                return sms(stop, destination, self.new_id(), phone, code=code, sid=sid)
            case "cancel":
                line = data.draw(st.sampled_from([LINE, OTHER_LINE]))
                actor = data.draw(st.sampled_from(Actor))
                departed = data.draw(st.booleans())
                if data.draw(st.booleans()):
                    rid = data.draw(st.sampled_from(known_ids))
                    return RideCancelled(line, actor, departed, request_id=rid)
                terminal = data.draw(st.sampled_from(sorted(TERMINAL_OF.values())))
                source = terminal_source(terminal, data.draw(st.sampled_from(PRESS_IDS)))
                return RideCancelled(line, actor, departed, source=source)
            case "code":
                held = [code for (_, code) in state.codes] or ["0000"]
                code = data.draw(st.one_of(st.sampled_from(held), CODES))
                line = data.draw(st.sampled_from([LINE, OTHER_LINE]))
                return CodeValidated(line, code, "driver")
            case "deadline":
                rid = data.draw(st.sampled_from(known_ids))
                request = state.requests.get(rid)
                if request is not None and data.draw(st.booleans()):
                    self.now = max(self.now, request.deadline_at)
                return DeadlineReached(rid)
            case "refresh":
                return LeaseRefreshDue()
            case "resync":
                return DevicesResyncRequested()
            case "report":
                sign = data.draw(st.sampled_from([*self.signs, SignId("pmv-nowhere")]))
                desired = state.signs.get(sign)
                seq = (desired.seq if desired else 0) + data.draw(st.integers(-2, 2))
                pages = desired.pages if desired and data.draw(st.booleans()) else ()
                line = data.draw(st.sampled_from([LINE, OTHER_LINE]))
                return SignReported(line, sign, seq, pages)
            case "status":
                kind, device = data.draw(st.sampled_from(self.devices))
                line = data.draw(st.sampled_from([LINE, OTHER_LINE]))
                return DeviceStatusReported(line, kind, device, data.draw(st.booleans()))
            case "post":
                sign = data.draw(st.sampled_from([*self.signs, SignId("pmv-nowhere")]))
                rows = data.draw(st.lists(st.text(max_size=30), max_size=4))
                pages = (tuple(rows),) if rows else ()
                minutes = data.draw(st.integers(-1, 120))
                return OperatorMessagePosted(
                    data.draw(st.sampled_from([LINE, OTHER_LINE])),
                    sign,
                    data.draw(st.sampled_from(MESSAGE_IDS)),
                    pages,
                    data.draw(st.integers(0, 3)),
                    self.now + timedelta(minutes=minutes),
                )
            case "clear":
                sign = data.draw(st.sampled_from([*self.signs, SignId("pmv-nowhere")]))
                line = data.draw(st.sampled_from([LINE, OTHER_LINE]))
                return OperatorMessageCleared(line, sign, data.draw(st.sampled_from(MESSAGE_IDS)))
            case "fallback_now":
                line = data.draw(st.sampled_from([LINE, OTHER_LINE]))
                return FallbackRequested(line, data.draw(st.sampled_from(known_ids)))
            case _:
                # A real restart takes far longer than the few ms of seqs issued meanwhile.
                self.now += timedelta(seconds=data.draw(st.integers(1, 3600)))
                effects = self.core.restart(list(state.requests.values()), self.now)
                self.check_effects(effects)
                return None

    def check_effects(self, effects: list[Effect]) -> None:
        floor = ms(self.now)
        for effect in only(effects, ShowOnSign):
            assert effect.display.seq > self.sign_seqs.get(effect.sign_id, -1)
            assert effect.display.seq >= floor
            self.sign_seqs[effect.sign_id] = effect.display.seq
            self.check_display(effect)
        for shown in only(effects, ShowOnTerminal):
            assert shown.screen.seq > self.screen_seqs.get(shown.terminal_id, -1)
            assert shown.screen.seq >= floor
            self.screen_seqs[shown.terminal_id] = shown.screen.seq

    def check_display(self, effect: ShowOnSign) -> None:
        network = self.core.state.network
        place = network.device(DeviceKind.SIGN, effect.sign_id)
        assert place is not None
        assert place.line_id == effect.line_id
        line = network.line(place.line_id)
        stop = line.stop(place.stop_id) if line else None
        assert line is not None
        assert stop is not None
        (spec,) = [sign for sign in stop.signs if sign.id == effect.sign_id]
        pages = effect.display.pages
        assert len(pages) <= line.tuning.max_pages
        for page in pages:
            assert 1 <= len(page) <= min(spec.geometry.rows, sign_arbiter.MAX_UNITS_PER_PAGE)
            assert sum(len(row.split()) for row in page) <= sign_arbiter.MAX_WORDS_PER_PAGE
            assert all(len(row) <= spec.geometry.columns for row in page)
            assert all(row == row.upper() and row.isascii() for row in page)
        assert effect.display.expires_at <= self.now + line.tuning.sign_lease
        message = self.core.state.operator_message(effect.sign_id, self.now)
        if message is not None:
            assert effect.display.pages == message.pages
            assert effect.display.expires_at <= message.expires_at
        elif pages:
            for request in self.core.state.waiting_at(stop.id):
                assert effect.display.expires_at <= request.deadline_at

    def check_state(self) -> None:
        state = self.core.state
        network = state.network
        holders: Counter[tuple[LineId, str]] = Counter()
        for request in state.requests.values():
            if request.state in CODE_HOLDING_STATES:
                assert request.code is not None
                assert len(request.code) == 4
                assert request.code.isdecimal()
                holders[(request.line_id, request.code)] += 1
                assert state.codes[(request.line_id, request.code)] == request.id
            if request.is_waiting:
                # Every waiting request's deadline was armed, and is still armed.
                assert self.core.armed.get(request.id) == request.deadline_at
                assert request.id in state.waiting_by_stop[request.stop_id]
        assert all(count == 1 for count in holders.values()), "codes unique among holders"
        assert len(state.codes) == len(holders)
        for line in network.lines:
            for stop in line.all_stops():
                waiting = state.waiting_at(stop.id)
                assert all(request.state is RequestState.WAITING for request in waiting)
                assert [r.created_at for r in waiting] == sorted(r.created_at for r in waiting)
                assert len(waiting) <= line.tuning.max_waiting_per_stop
                trips: list[tuple[str, StopId]] = [
                    (r.terminal_id, r.destination_id) for r in waiting if r.terminal_id
                ]
                trips += [(r.phone, r.destination_id) for r in waiting if r.phone]
                assert len(trips) == len(set(trips)), "no phantom passenger"
                names = []
                for request in waiting:
                    destination = line.stop(request.destination_id)
                    assert destination is not None
                    assert destination in line.destinations_from(stop.id)
                    names.append(destination.name)
                for spec in stop.signs:
                    shown = state.signs.get(spec.id)
                    if spec.id in state.operator_messages:
                        # An operator message (active, or expired until its timer clears it)
                        # owns the sign; check_display checks what it shows.
                        continue
                    if waiting:
                        assert shown is not None
                        expected = sign_arbiter.compose_pages(
                            names, spec.geometry, line.tuning.max_pages
                        )
                        assert shown.pages == expected
                    else:
                        assert shown is None or shown.pages == ()

    def step(self, data: st.DataObject) -> None:
        self.now += timedelta(milliseconds=data.draw(st.sampled_from([0, 0, 1, 500, 61_000])))
        if data.draw(st.integers(0, 9)) == 0:
            self.now += timedelta(minutes=data.draw(st.integers(1, 90)))
        before = self.core.state
        event = self.draw_event(data)
        if event is None:
            self.check_state()
            return
        effects = self.core.run(event, self.now)
        rejections = only(effects, RejectEvent)
        if rejections:
            assert effects == rejections
            assert len(rejections) == 1
            assert self.core.state is before
        self.check_effects(effects)
        self.check_state()


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data(), which=st.sampled_from(["plain", "fallback", "peak"]))
def test_any_sequence_of_events_keeps_the_invariants(
    data: st.DataObject,
    which: str,
    network: Network,
    fallback_network: Network,
    peak_network: Network,
) -> None:
    chosen = {"plain": network, "fallback": fallback_network, "peak": peak_network}[which]
    run = Run(chosen)
    start_offset = data.draw(st.integers(0, 7 * 24 * 60), label="start minutes")
    run.now = T0 + timedelta(minutes=start_offset)
    for _ in range(data.draw(st.integers(1, 60), label="events")):
        run.step(data)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_a_busy_stop_keeps_the_invariants(data: st.DataObject, network: Network) -> None:
    """Many riders at one stop: the cap, oldest-first pages and codes under pressure."""
    run = Run(network)
    stop = StopId("calais-est")
    destinations = [StopId("marck"), StopId("gravelines"), StopId("dunkerque-centre")]
    for _ in range(data.draw(st.integers(1, 40))):
        run.now += timedelta(seconds=data.draw(st.integers(0, 120)))
        choice = data.draw(st.integers(0, 4))
        event: Event
        if choice <= 2:
            destination = data.draw(st.sampled_from(destinations))
            event = api(stop, destination, run.new_id(), code=data.draw(CODES))
        elif choice == 3 and run.core.state.waiting_at(stop):
            request = data.draw(st.sampled_from(run.core.state.waiting_at(stop)))
            event = RideCancelled(LINE_OF.get(stop, LINE), Actor.RIDER, request_id=request.id)
        else:
            event = LeaseRefreshDue()
        run.check_effects(run.core.run(event, run.now))
        run.check_state()
    assert isinstance(run.now, datetime)
