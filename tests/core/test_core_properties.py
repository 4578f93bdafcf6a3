"""The core as a Hypothesis state machine: riders, drivers, operators, devices and the clock act
in any order; after every step the signs must agree with a model the machine keeps by itself.

The model is deliberately naive: per stop, the ordered list of requests still waiting; per sign,
the operator messages posted. What a sign must show is derived from that model, never from
`displays`/`sign_pages`, and compared with the pages of the last `ShowOnSign` sent to it.
Timers (deadlines, message expiries, lease refreshes) are fired by the machine as the engine
does, from the `Arm*`/`Disarm*` effects, whenever the clock moves. A failure prints the
program of steps that reproduces it.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from dispatcher.effects import (
    ArmDeadline,
    ArmMessageExpiry,
    DisarmDeadline,
    Effect,
    Page,
    RejectEvent,
    SaveRequest,
    SaveSourceAlias,
    ShowOnSign,
    ShowOnTerminal,
    SignDisplay,
)
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
    RiderArrived,
    RideRequested,
    SignReported,
)
from dispatcher.model import DeviceKind, LineId, RequestId, SignId, StopId
from dispatcher.request_machine import RequestState, Source
from dispatcher.state import DispatcherState
from dispatcher.step import restore, step
from tests.core.core_kit import (
    LINE,
    OTHER_LINE,
    T0,
    TERMINAL_OF,
    api,
    ms,
    press,
    sms,
)
from tests.core.dispatcher_model import (
    ANNOUNCE_GRACE,
    ANNOUNCE_MINUTES,
    CODE_CANDIDATES,
    DESTINATIONS,
    LEASE_REFRESH,
    MAX_ANNOUNCE,
    MESSAGE_IDS,
    MESSAGE_PAGES,
    ON_SIGN,
    PARIS,
    PEAKS,
    PHONES,
    PRESS_STOPS,
    RETENTION,
    STOPS,
    Message,
    Rider,
    announced_on,
    check_wording,
    destinations_on,
    is_announced_page,
    networks,
)


class DispatcherMachine(RuleBasedStateMachine):
    """Drives `step` and keeps its own model of who waits where."""

    requests = Bundle("requests")
    codes = Bundle("codes")

    def __init__(self) -> None:
        super().__init__()
        self.ready = False
        self.which = "plain"
        self.network = networks()["plain"]
        self.state = DispatcherState(self.network)
        self.now = T0
        self.next_id = 0
        # The model.
        self.riders: dict[RequestId, Rider] = {}
        self.waiting: dict[StopId, list[RequestId]] = {}
        self.announced: dict[StopId, list[RequestId]] = {}  # riders on the way ("J'arrive")
        self.holders: dict[tuple[LineId, str], RequestId] = {}
        self.sources: dict[Source, RequestId] = {}
        self.messages: dict[SignId, dict[str, Message]] = {}
        # What the engine would keep: timers, the last display sent to each device, aliases.
        self.deadline_timers: dict[RequestId, datetime] = {}
        self.message_timers: dict[tuple[SignId, str], tuple[LineId, datetime]] = {}
        self.next_refresh_at = T0 + LEASE_REFRESH
        self.shown: dict[SignId, SignDisplay] = {}
        self.sign_seqs: dict[SignId, int] = {}
        self.screen_seqs: dict[str, int] = {}
        self.aliases: list[tuple[Source, RequestId]] = []
        # Network facts, read from its data.
        self.stop_line: dict[StopId, LineId] = {}
        self.downstream: dict[StopId, set[StopId]] = {}
        self.signs_of: dict[StopId, list[SignId]] = {}
        self.sign_line: dict[SignId, LineId] = {}

    # --- the network and the clock ----------------------------------------------------------

    @initialize(which=st.sampled_from(["plain", "fallback", "peak"]), start=st.integers(0, 600))
    def open_the_line(self, which: str, start: int) -> None:
        """The service starts (minutes after T0) and asserts every device once."""
        self.which = which
        self.network = networks()[which]
        self.state = DispatcherState(self.network)
        self.now = T0 + timedelta(minutes=start)
        self.next_refresh_at = self.now + LEASE_REFRESH
        for line in self.network.lines:
            for direction in line.directions:
                ids = [stop.id for stop in direction.stops]
                for index, stop in enumerate(direction.stops):
                    self.stop_line[stop.id] = line.id
                    self.downstream[stop.id] = set(ids[index + 1 :])
                    self.signs_of[stop.id] = [sign.id for sign in stop.signs]
                    for sign in stop.signs:
                        self.sign_line[sign.id] = line.id
        self.ready = True
        self.run(DevicesResyncRequested())

    def is_open(self, line_id: LineId) -> bool:
        if self.which != "peak" or line_id != LINE:
            return True
        local = self.now.astimezone(PARIS)
        clock = local.time().replace(tzinfo=None)
        return local.weekday() < 5 and any(start <= clock < end for start, end in PEAKS)

    def wait_limit(self, line: LineId) -> timedelta:
        """The wait guarantee where a fallback exists (calais-dunkerque only), else max_wait."""
        return timedelta(minutes=15 if self.which == "fallback" and line == LINE else 30)

    def advance_to(self, target: datetime) -> None:
        """Move the clock, firing every due timer in order, as the engine's scheduler does."""
        while True:
            due: list[tuple[datetime, int, Event]] = [
                (at, 0, DeadlineReached(rid))
                for rid, at in self.deadline_timers.items()
                if at <= target
            ]
            due += [
                (at, 1, OperatorMessageCleared(line, sign, message_id))
                for (sign, message_id), (line, at) in self.message_timers.items()
                if at <= target
            ]
            if self.next_refresh_at <= target:
                due.append((self.next_refresh_at, 2, LeaseRefreshDue()))
            if not due:
                break
            at, _, event = min(due, key=lambda item: (item[0], item[1]))
            self.now = max(self.now, at)
            match event:
                case DeadlineReached(request_id=rid):
                    del self.deadline_timers[rid]
                    self.deadline_fires(rid)
                case OperatorMessageCleared(sign_id=sign, message_id=message_id):
                    del self.message_timers[(sign, message_id)]
                    self.clear(event)
                case _:
                    self.next_refresh_at = self.now + LEASE_REFRESH
                    self.forget_finished()
                    self.run(event)
        self.now = max(self.now, target)

    @rule(seconds=st.sampled_from([0.001, 1, 29, 61, 300, 900, 1800]))
    def time_passes(self, seconds: float) -> None:
        self.advance_to(self.now + timedelta(seconds=seconds))

    # --- riders -------------------------------------------------------------------------------

    def new_id(self) -> str:
        self.next_id += 1
        return f"r{self.next_id}"

    @rule(
        target=requests,
        stop=st.sampled_from(PRESS_STOPS),
        destination=st.sampled_from(DESTINATIONS),
        code=CODE_CANDIDATES,
    )
    def rider_presses(self, stop: StopId, destination: StopId, code: str) -> object:
        """A rider presses a destination button on the stop's terminal."""
        rid = self.new_id()
        return self.ask(press(stop, destination, rid, code=code, press_id=f"press-{rid}"))

    @rule(
        target=requests,
        stop=st.sampled_from(STOPS),
        destination=st.sampled_from(DESTINATIONS),
        phone=st.sampled_from(PHONES),
        code=CODE_CANDIDATES,
    )
    def rider_texts(self, stop: StopId, destination: StopId, phone: str, code: str) -> object:
        rid = self.new_id()
        return self.ask(sms(stop, destination, rid, phone, code=code, sid=f"SM{rid}"))

    @rule(target=requests, stop=st.sampled_from(STOPS), destination=st.sampled_from(DESTINATIONS))
    def app_asks(self, stop: StopId, destination: StopId) -> object:
        return self.ask(api(stop, destination, self.new_id()))

    @rule(
        target=requests,
        stop=st.sampled_from(STOPS),
        destination=st.sampled_from(DESTINATIONS),
        phone=st.sampled_from(PHONES),
        minutes=st.sampled_from(ANNOUNCE_MINUTES),
        code=CODE_CANDIDATES,
    )
    def rider_announces(
        self, stop: StopId, destination: StopId, phone: str, minutes: int, code: str
    ) -> object:
        """A rider texts that they are coming ("CAL DUNKERQUE 10")."""
        rid = self.new_id()
        event = sms(stop, destination, rid, phone, code=code, sid=f"SM{rid}")
        return self.ask(replace(event, arriving_at=self.now + timedelta(minutes=minutes)))

    @rule(request=requests, wrong_line=st.booleans())
    def rider_says_here(self, request: RequestId, wrong_line: bool) -> None:
        """SMS ICI (or the app): an announced rider is at the stop."""
        rider = self.riders.get(request)
        line = LINE if rider is None else rider.event.line_id
        if wrong_line:
            line = OTHER_LINE if line == LINE else LINE
        event = RiderArrived(line, request)
        if rider is None or wrong_line or rider.state is not RequestState.ANNOUNCED:
            self.run_rejected(event)
            return
        self.arrive(rider)
        effects = self.run(event)
        assert SaveRequest(self.state.requests[request], RequestState.ANNOUNCED) in effects

    def arrive(self, rider: Rider) -> None:
        """The model of an arrival: WAITING from now, last at its stop, a fresh deadline."""
        stop = rider.event.stop_id
        self.announced[stop].remove(rider.request_id)
        self.waiting.setdefault(stop, []).append(rider.request_id)
        rider.state = RequestState.WAITING
        rider.asked_at = self.now
        rider.updated_at = self.now
        rider.deadline_at = self.now + self.wait_limit(rider.event.line_id)

    @rule(target=requests, request=requests, code=CODE_CANDIDATES)
    def the_same_source_asks_again(self, request: RequestId, code: str) -> object:
        """A terminal resends a press, Twilio retries a webhook: same source, fresh request id."""
        rider = self.riders.get(request)
        if rider is None:
            return multiple()  # forgotten: its source is free again, nothing to repeat
        source = rider.event.source
        again = RideRequested(
            request_id=RequestId(self.new_id()),
            line_id=rider.event.line_id,
            stop_id=rider.event.stop_id,
            destination_id=rider.event.destination_id,
            seats=1,
            source=source,
            code_candidate=code,
            terminal_id=rider.event.terminal_id,
            phone=rider.event.phone,
            arriving_at=rider.event.arriving_at,
        )
        return self.ask(again)

    def ask(self, event: RideRequested) -> object:
        """Predict what a ride request does, run it, compare; the new request id, if any."""
        known = self.sources.get(event.source)
        waiting_here = self.waiting.get(event.stop_id, [])
        coming_here = self.announced.get(event.stop_id, [])
        same = next(
            (
                self.riders[rid]
                for rid in [*waiting_here, *coming_here]
                if self.riders[rid].event.destination_id == event.destination_id
                and (
                    (
                        event.terminal_id is not None
                        and self.riders[rid].event.terminal_id == event.terminal_id
                    )
                    or (event.phone is not None and self.riders[rid].event.phone == event.phone)
                    # A press for a destination someone announced: that rider has come.
                    or (event.terminal_id is not None and rid in coming_here)
                )
            ),
            None,
        )
        arriving = same is not None and same.state is RequestState.ANNOUNCED
        if known is None and same is not None and arriving and event.arriving_at is None:
            self.arrive(same)
            if event.terminal_id is not None:
                same.event = replace(same.event, terminal_id=event.terminal_id)
            effects = self.run(event)
            arrivals = [e for e in effects if isinstance(e, SaveRequest)]
            assert [e.previous_state for e in arrivals] == [RequestState.ANNOUNCED]
            assert arrivals[0].request.id == same.request_id
            self.sources[event.source] = same.request_id
            same.sources.add(event.source)
            self.aliases.append((event.source, same.request_id))
            assert SaveSourceAlias(event.source, same.request_id) in effects
            return multiple()
        if known is not None or same is not None:
            before = len(self.state.requests)
            effects = self.run(event)
            assert not [e for e in effects if isinstance(e, SaveRequest)], "a second request"
            assert len(self.state.requests) == before
            if known is None and same is not None:
                assert SaveSourceAlias(event.source, same.request_id) in effects
                self.sources[event.source] = same.request_id
                same.sources.add(event.source)
                self.aliases.append((event.source, same.request_id))
            return multiple()
        phone_waits = event.phone is not None and any(
            self.riders[rid].event.phone == event.phone
            for rid in [*self.all_waiting(), *self.all_announced()]
        )
        accepted = (
            self.is_open(event.line_id)
            and event.destination_id in self.downstream[event.stop_id]
            and not phone_waits
            and len(waiting_here) + len(coming_here) < 6
            and (event.terminal_id is not None or self.remote_room(event.stop_id))
        )
        code = self.free_code(event.code_candidate) if accepted else None
        announcing = accepted and event.arriving_at is not None
        deadline = self.now + self.wait_limit(event.line_id) if accepted else self.now
        if announcing:
            assert event.arriving_at is not None
            deadline = min(event.arriving_at, self.now + MAX_ANNOUNCE) + ANNOUNCE_GRACE
        rider = Rider(
            request_id=event.request_id,
            event=event,
            state=(
                RequestState.ANNOUNCED
                if announcing
                else RequestState.WAITING
                if accepted
                else RequestState.REFUSED
            ),
            code=code,
            asked_at=self.now,
            deadline_at=deadline,
            updated_at=self.now,
            sources={event.source},
        )
        self.riders[rider.request_id] = rider
        self.sources[event.source] = rider.request_id
        if accepted:
            assert code is not None
            index = self.announced if announcing else self.waiting
            index.setdefault(event.stop_id, []).append(rider.request_id)
            self.holders[(event.line_id, code)] = rider.request_id
        effects = self.run(event)
        (saved,) = [e.request for e in effects if isinstance(e, SaveRequest)]
        assert (saved.id, saved.state, saved.code) == (rider.request_id, rider.state, code)
        if accepted:
            assert ArmDeadline(rider.request_id, rider.deadline_at) in effects
        return rider.request_id

    def remote_room(self, stop: StopId) -> bool:
        """An SMS or app ask finds room: the stop has no terminal, or fewer than 6 - 2 remote
        riders wait or are on their way there (the terminal keeps 2 places)."""
        if stop not in TERMINAL_OF:
            return True
        remote = [
            rid
            for rid in [*self.waiting.get(stop, []), *self.announced.get(stop, [])]
            if self.riders[rid].event.terminal_id is None
        ]
        return len(remote) < 6 - 2

    def free_code(self, candidate: str) -> str:
        """The candidate if no one on the network holds it, else the next free code upwards.

        Network-wide: a driver's SMS names a code and no line."""
        start = int(candidate) if candidate.isascii() and candidate.isdecimal() else 0
        for offset in range(10_000):
            code = f"{(start + offset) % 10_000:04d}"
            if all(held != code for _, held in self.holders):
                return code
        raise AssertionError("the test never runs out of codes")

    @rule(target=codes, request=requests)
    def rider_reads_their_code(self, request: RequestId) -> object:
        """The code a rider was handed (it may have been freed and handed to another since)."""
        rider = self.riders.get(request)
        if rider is None or rider.code is None:
            return multiple()
        return (rider.event.line_id, rider.code)

    @rule(
        request=requests,
        actor=st.sampled_from(Actor),
        departed=st.booleans(),
        by_source=st.booleans(),
        wrong_line=st.booleans(),
    )
    def rider_cancels(
        self, request: RequestId, actor: Actor, departed: bool, by_source: bool, wrong_line: bool
    ) -> None:
        rider = self.riders.get(request)
        line = LINE if rider is None else rider.event.line_id
        if wrong_line:
            line = OTHER_LINE if line == LINE else LINE
        if by_source and rider is not None:
            event = RideCancelled(line, actor, departed, source=rider.event.source)
        else:
            event = RideCancelled(line, actor, departed, request_id=request)
        if rider is None or wrong_line or not rider.live:
            self.run_rejected(event)
        else:
            outcome = RequestState.PICKED_UP if departed else RequestState.CANCELLED
            self.finish(rider, outcome)
            self.run(event)

    # --- drivers and operators ------------------------------------------------------------

    @rule(held=codes, wrong_line=st.booleans())
    def driver_validates(self, held: tuple[LineId, str], wrong_line: bool) -> None:
        line, code = held
        if wrong_line:
            line = OTHER_LINE if line == LINE else LINE
        event = CodeValidated(line, code, "driver-1")
        holder = self.holders.get((line, code))
        if holder is None:
            self.run_rejected(event)
            return
        self.finish(self.riders[holder], RequestState.PICKED_UP)
        self.run(event)

    @rule(request=requests)
    def operator_sends_the_fallback(self, request: RequestId) -> None:
        rider = self.riders.get(request)
        line = rider.event.line_id if rider else LINE
        event = FallbackRequested(line, request)
        if rider is None or rider.state is not RequestState.WAITING:
            self.run_rejected(event)
            return
        self.finish(rider, RequestState.FALLBACK)
        self.run(event)

    @precondition(lambda self: bool(self.deadline_timers))
    @rule(data=st.data())
    def a_deadline_comes(self, data: st.DataObject) -> None:
        """The clock runs to the deadline of a waiting request (firing whatever is due before)."""
        rid = data.draw(st.sampled_from(sorted(self.deadline_timers)), label="request")
        self.advance_to(self.deadline_timers[rid])

    @rule(request=requests)
    def a_stale_deadline_arrives(self, request: RequestId) -> None:
        """A deadline timer that lost the race with the request's end changes nothing."""
        rider = self.riders.get(request)
        if rider is not None and rider.live:
            return
        self.run_rejected(DeadlineReached(request))

    def deadline_fires(self, rid: RequestId) -> None:
        rider = self.riders[rid]
        assert rider.live, f"{rid}: deadline left armed once it ended"
        if rider.state is RequestState.ANNOUNCED:  # never came: lapsed, its signs go dark
            self.finish(rider, RequestState.EXPIRED)
            self.run(DeadlineReached(rid))
            return
        line = rider.event.line_id
        open_fallback = self.which == "fallback" and line == LINE and self.is_open(line)
        self.finish(rider, RequestState.FALLBACK if open_fallback else RequestState.EXPIRED)
        self.run(DeadlineReached(rid))

    @rule(
        stop=st.sampled_from(STOPS),
        message_id=st.sampled_from(MESSAGE_IDS),
        pages=st.sampled_from(MESSAGE_PAGES),
        priority=st.integers(0, 2),
        minutes=st.sampled_from([0, 1, 5, 45]),
        wrong_line=st.booleans(),
    )
    def operator_posts(
        self,
        stop: StopId,
        message_id: str,
        pages: tuple[Page, ...],
        priority: int,
        minutes: int,
        wrong_line: bool,
    ) -> None:
        if not self.signs_of[stop]:
            return
        sign_id = self.signs_of[stop][0]
        line = self.sign_line[sign_id]
        if wrong_line:
            line = OTHER_LINE if line == LINE else LINE
        self.advance_to(self.now + timedelta(milliseconds=1))  # "newest" is never a tie
        expires_at = self.now + timedelta(minutes=minutes)
        event = OperatorMessagePosted(line, sign_id, message_id, pages, priority, expires_at)
        if wrong_line or minutes == 0:
            self.run_rejected(event)
            return
        self.messages.setdefault(sign_id, {})[message_id] = Message(
            pages, priority, self.now, expires_at
        )
        effects = self.run(event)
        assert ArmMessageExpiry(line, sign_id, message_id, expires_at) in effects

    @rule(stop=st.sampled_from(STOPS), message_id=st.sampled_from(MESSAGE_IDS))
    def operator_clears(self, stop: StopId, message_id: str) -> None:
        for sign_id in self.signs_of[stop][:1]:
            self.clear(OperatorMessageCleared(self.sign_line[sign_id], sign_id, message_id))

    def clear(self, event: OperatorMessageCleared) -> None:
        if event.message_id not in self.messages.get(event.sign_id, {}):
            self.run_rejected(event)
            return
        del self.messages[event.sign_id][event.message_id]
        self.run(event)

    # --- devices and the service --------------------------------------------------------------

    @rule(stop=st.sampled_from(STOPS), online=st.booleans())
    def a_sign_goes_offline_or_online(self, stop: StopId, online: bool) -> None:
        for sign_id in self.signs_of[stop]:
            self.run(
                DeviceStatusReported(self.sign_line[sign_id], DeviceKind.SIGN, sign_id, online)
            )

    @rule(stop=st.sampled_from(STOPS), seq_shift=st.integers(-1, 1), as_asked=st.booleans())
    def a_sign_reports_what_it_shows(self, stop: StopId, seq_shift: int, as_asked: bool) -> None:
        for sign_id in self.signs_of[stop]:
            asked = self.shown[sign_id]
            pages = asked.pages if as_asked else (("GARBLED",),)
            line = self.sign_line[sign_id]
            self.run(SignReported(line, sign_id, asked.seq + seq_shift, pages))

    @rule()
    def the_broker_reconnects(self) -> None:
        self.run(DevicesResyncRequested())

    @rule(seconds=st.integers(1, 120))
    def the_service_restarts(self, seconds: int) -> None:
        """Down for a while; back with the stored requests and aliases, then devices resynced."""
        self.now += timedelta(seconds=seconds)
        stored = list(self.state.requests.values())
        aliases = [(source, rid) for source, rid in self.aliases if rid in self.state.requests]
        self.state, effects = restore(DispatcherState(self.network), stored, aliases)
        # Read back, riders of a stop are in the order they asked; riders of the same instant
        # in the order of their ids (nothing stored tells them apart).
        for index in (self.waiting, self.announced):
            for rids in index.values():
                rids.sort(key=lambda rid: (self.riders[rid].asked_at, rid))
        self.deadline_timers = {}
        self.message_timers = {}
        self.messages = {}  # operator messages live in memory only
        self.track(effects)
        for rider in self.riders.values():
            if rider.live:
                assert self.deadline_timers[rider.request_id] == rider.deadline_at
        self.next_refresh_at = self.now + LEASE_REFRESH
        self.run(DevicesResyncRequested())
        self.advance_to(self.now)  # deadlines that passed while down fire now

    # --- the model's bookkeeping ------------------------------------------------------------

    def all_waiting(self) -> list[RequestId]:
        return [rid for rids in self.waiting.values() for rid in rids]

    def all_announced(self) -> list[RequestId]:
        return [rid for rids in self.announced.values() for rid in rids]

    def finish(self, rider: Rider, outcome: RequestState) -> None:
        if rider.state is RequestState.WAITING:
            self.waiting[rider.event.stop_id].remove(rider.request_id)
        if rider.state is RequestState.ANNOUNCED:
            self.announced[rider.event.stop_id].remove(rider.request_id)
        rider.state = outcome
        rider.updated_at = self.now
        if not rider.holds_code and rider.code is not None:
            del self.holders[(rider.event.line_id, rider.code)]

    def forget_finished(self) -> None:
        for rider in list(self.riders.values()):
            if not rider.live and self.now - rider.updated_at > RETENTION:
                del self.riders[rider.request_id]
                for source in rider.sources:
                    del self.sources[source]
                if rider.holds_code and rider.code is not None:
                    del self.holders[(rider.event.line_id, rider.code)]

    # --- running the core ---------------------------------------------------------------------

    def run(self, event: Event) -> list[Effect]:
        before = self.state
        self.state, effects = step(self.state, event, self.now)
        rejected = [e for e in effects if isinstance(e, RejectEvent)]
        assert not rejected, f"{event} rejected: {rejected}"
        assert self.state is not before or not effects, "effects without a new state"
        self.track(effects)
        return effects

    def run_rejected(self, event: Event) -> None:
        """An event the model says cannot apply: one RejectEvent, the state untouched."""
        before = self.state
        self.state, effects = step(self.state, event, self.now)
        assert len(effects) == 1, effects
        assert isinstance(effects[0], RejectEvent), effects
        assert self.state is before

    def track(self, effects: list[Effect]) -> None:
        for effect in effects:
            match effect:
                case ArmDeadline(request_id=rid, at=at):
                    self.deadline_timers[rid] = at
                case DisarmDeadline(request_id=rid):
                    self.deadline_timers.pop(rid, None)
                case ArmMessageExpiry(line_id=line, sign_id=sign, message_id=mid, at=at):
                    self.message_timers[(sign, mid)] = (line, at)
                case ShowOnSign(sign_id=sign, display=display):
                    assert display.seq > self.sign_seqs.get(sign, -1), "seq must increase"
                    assert display.seq >= ms(self.now)
                    self.sign_seqs[sign] = display.seq
                    self.shown[sign] = display
                    self.check_lease(sign, display)
                case ShowOnTerminal(terminal_id=terminal, screen=screen):
                    assert screen.seq > self.screen_seqs.get(terminal, -1), "seq must increase"
                    self.screen_seqs[terminal] = screen.seq
                case _:
                    pass

    # --- what a sign must show, from the model ---------------------------------------------

    def stop_of(self, sign: SignId) -> StopId:
        return next(stop for stop, signs in self.signs_of.items() if sign in signs)

    def active_message(self, sign: SignId) -> Message | None:
        live = [m for m in self.messages.get(sign, {}).values() if m.expires_at > self.now]
        return max(live, key=lambda m: (m.priority, m.posted_at)) if live else None

    def expected_destinations(self, stop: StopId) -> list[str]:
        """Destination names a stop's signs must show, oldest request first, each once."""
        names: list[str] = []
        for rid in self.waiting.get(stop, []):
            name = ON_SIGN[self.riders[rid].event.destination_id]
            if name not in names:
                names.append(name)
        return names

    def first_asked(self, stop: StopId, name: str) -> datetime:
        """When the oldest rider waiting at `stop` for the place `name` asked."""
        return min(
            self.riders[rid].asked_at
            for rid in self.waiting.get(stop, [])
            if ON_SIGN[self.riders[rid].event.destination_id] == name
        )

    def check_lease(self, sign: SignId, display: SignDisplay) -> None:
        assert display.expires_at <= self.now + timedelta(seconds=90), "lease too long"
        message = self.active_message(sign)
        if message is not None:
            assert display.expires_at <= message.expires_at
            return
        stop = self.stop_of(sign)
        for rid in [*self.waiting.get(stop, []), *self.announced.get(stop, [])]:
            assert display.expires_at <= self.riders[rid].deadline_at, f"lease outlives {rid}"

    @precondition(lambda self: self.ready)
    @invariant()
    def every_sign_shows_who_waits_there(self) -> None:
        for stop, signs in self.signs_of.items():
            expected = self.expected_destinations(stop)
            for sign in signs:
                display = self.shown.get(sign)
                assert display is not None, f"{sign} was never told anything"
                check_wording(display.pages)
                message = self.active_message(sign)
                if message is not None:
                    assert display.pages == message.pages, f"{sign} hides the operator message"
                    continue
                shown = destinations_on(display.pages)
                # Oldest first; requests asked at the same instant have no order of their own
                # (a restart reads them back by time only).
                assert sorted(shown) == sorted(expected), f"{sign} shows {shown}, not {expected}"
                assert len(set(shown)) == len(shown), f"{sign} shows a destination twice"
                asked = [self.first_asked(stop, name) for name in shown]
                assert asked == sorted(asked), f"{sign} shows {shown}: not oldest first"
                self.check_announced(stop, sign, display.pages, expected)
                if display.pages:
                    assert self.now < display.expires_at, f"{sign}: lease lapsed while lit"

    def check_announced(
        self, stop: StopId, sign: SignId, pages: tuple[Page, ...], waiting_names: list[str]
    ) -> None:
        """Riders on the way: a page each after the waiting ones, while pages are left, for
        destinations nobody waits for, with minutes that can still come."""
        expected: list[str] = []
        for rid in self.announced.get(stop, []):
            name = ON_SIGN[self.riders[rid].event.destination_id]
            if name not in waiting_names and name not in expected:
                expected.append(name)
        shown = announced_on(pages)
        names = [name for name, _ in shown]
        room = 3 - sum(1 for page in pages if not is_announced_page(page))
        assert len(set(names)) == len(names), f"{sign} announces {names} twice"
        assert set(names) <= set(expected), f"{sign} announces {names}, not {expected}"
        assert len(names) == min(len(expected), room), f"{sign} announces {names} of {expected}"
        assert all(1 <= minutes <= 30 for _, minutes in shown), shown
        announced_pages = [page for page in pages if is_announced_page(page)]
        assert pages[len(pages) - len(announced_pages) :] == tuple(announced_pages), pages

    @precondition(lambda self: self.ready)
    @invariant()
    def codes_are_unique_among_holders(self) -> None:
        held = [rider.code for rider in self.riders.values() if rider.holds_code]
        assert len(held) == len(set(held)), "two riders hold one code"
        assert all(code is not None and len(code) == 4 and code.isdecimal() for code in held)
        assert dict(self.state.codes.items()) == self.holders

    @precondition(lambda self: self.ready)
    @invariant()
    def the_core_knows_the_same_riders(self) -> None:
        assert set(self.state.requests) == set(self.riders)
        for stop in self.signs_of:
            waiting = [request.id for request in self.state.waiting_at(stop)]
            assert waiting == self.waiting.get(stop, [])
            coming = [request.id for request in self.state.announced_at(stop)]
            assert sorted(coming) == sorted(self.announced.get(stop, []))
        for rid in [*self.all_waiting(), *self.all_announced()]:
            assert self.deadline_timers.get(rid) == self.riders[rid].deadline_at, "unarmed"


TestDispatcherMachine = DispatcherMachine.TestCase
TestDispatcherMachine.settings = settings(
    max_examples=200,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
