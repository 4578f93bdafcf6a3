"""Lines changing hands in a cluster: LinesAdopted and LinesDropped (dispatcher/line_handover).

Two "processes" are two `Core`s on one clock: `boulogne_owner` drives boulogne-calais, `survivor`
drives calais-dunkerque and adopts boulogne-calais when its owner dies (its requests read back
from the database: here the dead owner's state, which stored every change).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import rule

from dispatcher.effects import (
    ArmDeadline,
    DisarmDeadline,
    Effect,
    RejectEvent,
    RejectionReason,
    SaveRequest,
    ScreenState,
    ShowOnSign,
    ShowOnTerminal,
    SignDisplay,
)
from dispatcher.events import (
    Actor,
    CodeGuessingReported,
    CodeValidated,
    DeadlineReached,
    DeviceFloodReported,
    DevicesResyncRequested,
    DeviceStatusReported,
    FallbackRequested,
    LeaseRefreshDue,
    LinesAdopted,
    LinesDropped,
    OperatorMessagePosted,
    RideCancelled,
    RiderArrived,
    SignReported,
)
from dispatcher.model import DeviceKind, LineId, Network, RequestId
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest, Source
from tests.core.core_kit import (
    BOULOGNE,
    CALAIS,
    DUNKERQUE,
    GRAVELINES,
    HEADING,
    LINE,
    MARCK,
    OTHER_LINE,
    PMV_BOULOGNE,
    PMV_CALAIS_1,
    PMV_CALAIS_2,
    PMV_MARCK,
    T0,
    T_BOULOGNE,
    T_MARCK,
    WIMEREUX,
    Core,
    api,
    ms,
    only,
    press,
    sms,
)
from tests.core.test_core_properties import DispatcherMachine

LEASE = timedelta(seconds=90)
MAX_WAIT = timedelta(minutes=30)
DIED = T0 + timedelta(minutes=2)
ADOPTED = DIED + timedelta(seconds=5)


def owning(network: Network, *line_ids: LineId) -> Network:
    """The sub-network of these lines, in the file's order (what a process owns)."""
    return Network(tuple(line for line in network.lines if line.id in line_ids))


def boulogne_owner(network: Network) -> Core:
    """The process owning boulogne-calais: one rider pressed the terminal, one is on the way."""
    core = Core(owning(network, OTHER_LINE))
    core.run(press(BOULOGNE, WIMEREUX, "r5", code="0005"), T0)
    coming = replace(api(BOULOGNE, WIMEREUX, "r6", code="0006"), arriving_at=T0 + MAX_WAIT / 3)
    core.run(coming, T0 + timedelta(seconds=1))
    return core


def survivor(network: Network) -> Core:
    """The process owning calais-dunkerque, a rider waiting at Calais."""
    core = Core(owning(network, LINE))
    core.run(press(CALAIS, DUNKERQUE, "r1", code="0001"), T0)
    return core


def stored(core: Core, line_id: LineId) -> tuple[RideRequest, ...]:
    """The requests of a line as the database holds them (every change was saved)."""
    return tuple(r for r in core.state.requests.values() if r.line_id == line_id)


def adopt(
    core: Core, network: Network, rows: tuple[RideRequest, ...], at: datetime
) -> list[Effect]:
    return core.run(LinesAdopted(network, rows, ()), at)


def test_an_adopted_rider_is_back_on_the_sign_and_terminal_with_the_deadline_armed(
    network: Network,
) -> None:
    dead = boulogne_owner(network)
    core = survivor(network)
    r5, r6 = dead.request("r5"), dead.request("r6")

    effects = adopt(core, network, stored(dead, OTHER_LINE), ADOPTED)

    # The sign shows the rider's destination (the rider on the way goes there too).
    sign = SignDisplay(ms(ADOPTED), ((HEADING, "WIMEREUX"),), ADOPTED + LEASE)
    assert effects[:3] == [
        ArmDeadline(r5.id, T0 + MAX_WAIT),
        ArmDeadline(r6.id, r6.deadline_at),
        ShowOnSign(OTHER_LINE, PMV_BOULOGNE, sign),
    ]
    [terminal] = effects[3:]
    assert isinstance(terminal, ShowOnTerminal)
    assert terminal.terminal_id == T_BOULOGNE
    screen = terminal.screen
    assert (screen.state, screen.code, screen.lines[0]) == (
        ScreenState.WAITING,
        "0005",
        "Vers Wimereux",
    )
    # The calais-dunkerque devices hear nothing; its rider is as memory had it.
    assert all(effect.line_id == OTHER_LINE for effect in only(effects, ShowOnSign))
    assert core.state.network == network
    assert core.request("r1").state is RequestState.WAITING
    assert core.armed == {
        RequestId("r1"): T0 + MAX_WAIT,
        r5.id: T0 + MAX_WAIT,
        r6.id: r6.deadline_at,
    }
    assert core.state.waiting() == (core.request("r1"), r5)


def test_on_an_adopted_line_a_code_validates_and_a_press_is_served(network: Network) -> None:
    dead = boulogne_owner(network)
    core = survivor(network)
    refused = core.run(press(BOULOGNE, WIMEREUX, "r7", code="0007"), DIED)
    assert refused == [RejectEvent(RejectionReason.UNKNOWN_LINE, OTHER_LINE)]
    adopt(core, network, stored(dead, OTHER_LINE), ADOPTED)

    effects = core.run(CodeValidated(OTHER_LINE, "0005", "driver-5"), ADOPTED)
    assert core.request("r5").state is RequestState.PICKED_UP
    assert only(effects, SaveRequest)[0].request.cause is Cause.CODE_VALIDATED
    assert only(effects, DisarmDeadline) == [DisarmDeadline(RequestId("r5"))]

    # The rider on the way arrives on the new owner; then a new rider presses and is served.
    core.run(RiderArrived(OTHER_LINE, RequestId("r6")), ADOPTED)
    assert core.request("r6").state is RequestState.WAITING
    effects = core.run(press(BOULOGNE, WIMEREUX, "r7", code="0007"), ADOPTED)
    assert core.request("r7").state is RequestState.WAITING
    assert only(effects, ShowOnTerminal)[0].screen.code == "0007"
    assert core.state.signs[PMV_BOULOGNE].pages == ((HEADING, "WIMEREUX"),)
    # The deadline armed on the new owner is honoured there.
    core.run(DeadlineReached(RequestId("r7")), ADOPTED + MAX_WAIT)
    assert core.request("r7").state is RequestState.EXPIRED


def test_an_adopted_signs_first_seq_is_above_the_last_one_its_previous_owner_sent(
    network: Network,
) -> None:
    dead = boulogne_owner(network)
    core = survivor(network)
    last_breath = ADOPTED - timedelta(milliseconds=1)
    dead.run(LeaseRefreshDue(), last_breath)  # the dead owner's last display, a moment earlier
    previous_seq = dead.sign_seqs[PMV_BOULOGNE]

    effects = adopt(core, network, stored(dead, OTHER_LINE), ADOPTED)

    [shown] = only(effects, ShowOnSign)
    assert shown.display.seq > previous_seq
    assert only(effects, ShowOnTerminal)[0].screen.seq > dead.state.screens[T_BOULOGNE].seq


def test_requests_of_lines_held_or_not_owned_are_not_taken_from_the_database(
    network: Network,
) -> None:
    dead = boulogne_owner(network)
    core = survivor(network)
    in_memory = core.request("r1")
    rows = (
        *stored(dead, OTHER_LINE),
        replace(in_memory, state=RequestState.CANCELLED),  # an older copy of a held rider
        replace(in_memory, id=RequestId("r2"), code="0002"),  # a held line's row memory lacks
        replace(dead.request("r5"), id=RequestId("r9"), line_id=LineId("nowhere")),
        # An adopted line's row under a held rider's id: memory wins there too.
        replace(dead.request("r5"), id=in_memory.id, source=Source(Channel.API, "x"), code="0009"),
    )

    effects = adopt(core, network, rows, ADOPTED)

    assert core.request("r1") == in_memory
    assert set(core.state.requests) == {"r1", "r5", "r6"}
    assert {effect.request_id for effect in only(effects, ArmDeadline)} == {"r5", "r6"}
    assert core.state.waiting_at(CALAIS) == (in_memory,)
    assert core.state.request_by_code(LINE, "0002") is None
    assert core.state.request_by_code(OTHER_LINE, "0009") is None


def test_an_empty_adoption_or_drop_changes_nothing(network: Network) -> None:
    core = survivor(network)
    state = core.state
    assert core.run(LinesAdopted(owning(network, LINE), stored(core, LINE), ()), DIED) == []
    assert core.state is state
    assert core.run(LinesDropped(owning(network, LINE)), DIED) == []
    assert core.state is state


def test_the_network_given_says_what_is_owned(network: Network) -> None:
    dead = boulogne_owner(network)
    core = survivor(network)
    # A drop naming a line not held adopts nothing: its riders would be missing from its signs.
    assert core.run(LinesDropped(network), DIED) == []
    assert core.state.network == owning(network, LINE)
    # An adoption whose network lacks a held line drops that line.
    effects = adopt(core, owning(network, OTHER_LINE), stored(dead, OTHER_LINE), ADOPTED)
    assert effects[0] == DisarmDeadline(RequestId("r1"))
    assert set(core.state.requests) == {"r5", "r6"}
    assert {effect.line_id for effect in only(effects, ShowOnSign)} == {OTHER_LINE}
    # Dropping boulogne-calais while naming calais-dunkerque (no longer held) leaves nothing.
    effects = core.run(LinesDropped(owning(network, LINE)), ADOPTED)
    assert effects == [DisarmDeadline(RequestId("r5")), DisarmDeadline(RequestId("r6"))]
    assert core.state.network == Network(())
    assert core.run(LeaseRefreshDue(), ADOPTED) == []


def both_lines(network: Network) -> tuple[Core, Core]:
    """A process owning both lines, with riders, alerts and a message on each; and its twin that
    only ever had calais-dunkerque, fed the same calais-dunkerque events at the same times."""
    core, twin = Core(network), Core(owning(network, LINE))
    for at, event in (
        (T0, press(CALAIS, DUNKERQUE, "r1", code="0001")),
        (T0, sms(MARCK, GRAVELINES, "r2", "+33600000002", code="0002")),
        (T0, DeviceStatusReported(LINE, DeviceKind.SIGN, PMV_MARCK, False)),
        (T0, DeviceStatusReported(LINE, DeviceKind.TERMINAL, T_MARCK, True)),
        (T0, CodeGuessingReported(LINE, True, 40, ("ip:1",))),
        (T0, SignReported(LINE, PMV_CALAIS_1, 1, ())),
    ):
        core.run(event, at)
        twin.run(event, at)
    core.run(press(BOULOGNE, WIMEREUX, "r5", code="0005"), T0)
    core.run(replace(api(BOULOGNE, WIMEREUX, "r6", code="0006"), arriving_at=T0 + MAX_WAIT), T0)
    core.run(DeviceStatusReported(OTHER_LINE, DeviceKind.SIGN, PMV_BOULOGNE, False), T0)
    core.run(DeviceStatusReported(OTHER_LINE, DeviceKind.SIGN, PMV_BOULOGNE, True), T0)
    core.run(DeviceFloodReported(OTHER_LINE, DeviceKind.TERMINAL, T_BOULOGNE, True), T0)
    core.run(CodeGuessingReported(OTHER_LINE, True, 40, ("ip:2",)), T0)
    core.run(SignReported(OTHER_LINE, PMV_BOULOGNE, 1, ()), T0)
    message = OperatorMessagePosted(OTHER_LINE, PMV_BOULOGNE, "m1", (("ROUTE BARREE",),), 1, DIED)
    core.run(message, T0)
    assert core.request("r5").state is RequestState.WAITING
    assert len(core.state.alerts) == 5
    return core, twin


def test_dropping_a_line_disarms_its_riders_and_tells_nobody(network: Network) -> None:
    core, twin = both_lines(network)
    assert core.state.alerts.keys() != twin.state.alerts.keys()

    effects = core.run(LinesDropped(owning(network, LINE)), DIED)

    # Nothing stored (the riders wait on in the database for the next owner), no device told.
    assert effects == [DisarmDeadline(RequestId("r5")), DisarmDeadline(RequestId("r6"))]
    assert core.armed == {RequestId("r1"): T0 + MAX_WAIT, RequestId("r2"): T0 + MAX_WAIT}
    # What is left is what a process that never had boulogne-calais holds, alerts included.
    assert core.state == twin.state


def test_after_a_drop_events_of_the_line_are_rejected_and_reach_no_device(
    network: Network,
) -> None:
    core, _twin = both_lines(network)
    core.run(LinesDropped(owning(network, LINE)), DIED)
    r5 = RequestId("r5")

    for event, reason in (
        (press(BOULOGNE, WIMEREUX, "r8", code="0008"), RejectionReason.UNKNOWN_LINE),
        (
            DeviceStatusReported(OTHER_LINE, DeviceKind.SIGN, PMV_BOULOGNE, False),
            RejectionReason.UNKNOWN_DEVICE,
        ),
        (
            DeviceStatusReported(OTHER_LINE, DeviceKind.TERMINAL, T_BOULOGNE, True),
            RejectionReason.UNKNOWN_DEVICE,
        ),
        (
            DeviceFloodReported(OTHER_LINE, DeviceKind.TERMINAL, T_BOULOGNE, False),
            RejectionReason.UNKNOWN_DEVICE,
        ),
        (SignReported(OTHER_LINE, PMV_BOULOGNE, 2, ()), RejectionReason.UNKNOWN_DEVICE),
        (CodeGuessingReported(OTHER_LINE, False), RejectionReason.UNKNOWN_LINE),
        (CodeValidated(OTHER_LINE, "0005", "driver-5"), RejectionReason.UNKNOWN_CODE),
        (DeadlineReached(r5), RejectionReason.UNKNOWN_REQUEST),
        (FallbackRequested(OTHER_LINE, r5), RejectionReason.UNKNOWN_REQUEST),
        (RideCancelled(OTHER_LINE, Actor.RIDER, request_id=r5), RejectionReason.UNKNOWN_REQUEST),
        (RiderArrived(OTHER_LINE, RequestId("r6")), RejectionReason.UNKNOWN_REQUEST),
        (
            OperatorMessagePosted(OTHER_LINE, PMV_BOULOGNE, "m2", (("X",),), 1, DIED + LEASE),
            RejectionReason.UNKNOWN_DEVICE,
        ),
    ):
        state = core.state
        effects = core.run(event, DIED)
        assert [effect.reason for effect in only(effects, RejectEvent)] == [reason], event
        assert len(effects) == 1
        assert core.state is state

    # A lease refresh and a resync re-send the kept line's signs only.
    refreshed = core.run(LeaseRefreshDue(), DIED)
    assert {effect.sign_id for effect in only(refreshed, ShowOnSign)} == {
        PMV_CALAIS_1,
        PMV_CALAIS_2,
        PMV_MARCK,
    }
    resynced = core.run(DevicesResyncRequested(), DIED)
    signs, terminals = only(resynced, ShowOnSign), only(resynced, ShowOnTerminal)
    assert len(signs) + len(terminals) == len(resynced)
    assert {s.line_id for s in signs} | {t.line_id for t in terminals} == {LINE}
    # The kept line still serves its riders.
    effects = core.run(press(CALAIS, MARCK, "r3", code="0003"), DIED)
    assert core.request("r3").state is RequestState.WAITING
    assert only(effects, ShowOnSign)[0].display.pages == ((HEADING, "DUNKERQUE", "MARCK"),)


def test_adopt_drop_adopt_brings_the_same_riders_back_with_fresh_seqs(network: Network) -> None:
    dead = boulogne_owner(network)
    core = survivor(network)
    rows = stored(dead, OTHER_LINE)
    first = adopt(core, network, rows, ADOPTED)
    riders = stored(core, OTHER_LINE)

    dropped = core.run(LinesDropped(owning(network, LINE)), ADOPTED + timedelta(seconds=1))
    assert only(dropped, SaveRequest) == []
    again_at = ADOPTED + timedelta(seconds=2)
    # The database is as the drop left it: nothing was saved, so the rows are the same.
    second = adopt(core, network, rows, again_at)

    assert set(stored(core, OTHER_LINE)) == set(riders)
    assert only(second, ArmDeadline) == only(first, ArmDeadline)
    [sign_before], [sign_after] = only(first, ShowOnSign), only(second, ShowOnSign)
    assert sign_after.display == replace(
        sign_before.display, seq=ms(again_at), expires_at=again_at + LEASE
    )
    assert sign_after.display.seq > sign_before.display.seq
    [screen_before], [screen_after] = only(first, ShowOnTerminal), only(second, ShowOnTerminal)
    assert screen_after.screen == replace(screen_before.screen, seq=ms(again_at))


class HandoverMachine(DispatcherMachine):
    """The core's state machine (test_core_properties), with lines changing hands at any point:
    every invariant there (signs show who waits, codes, deadlines armed, seqs increasing per
    device across owners) must hold through drops and adoptions."""

    @rule(line=st.sampled_from([LINE, OTHER_LINE]), gap=st.sampled_from([1, 30, 600]))
    def the_line_changes_hands(self, line: LineId, gap: float) -> None:
        """Its owner drops the line; `gap` seconds later the next owner adopts it from the
        database (the rows as the drop left them, within the restore window).

        At least a second apart: seqs are time-based, and a burst of displays to one sign in
        one millisecond puts its seq a few units ahead of the clock; a new owner speaking
        within those milliseconds would repeat a seq. Taking a line over (a lock released or
        timed out, the rows read back) takes far longer.
        """
        rows = [request for request in self.state.requests.values() if request.line_id == line]
        live = {request.id for request in rows if self.riders[request.id].live}
        kept = Network(tuple(other for other in self.network.lines if other.id != line))

        dropped = self.run(LinesDropped(kept))

        assert {effect.request_id for effect in only(dropped, DisarmDeadline)} == live
        assert len(dropped) == len(live), "a drop tells no device and stores nothing"
        signs = {sign for sign, owner in self.sign_line.items() if owner == line}
        for sign in signs:
            self.messages.pop(sign, None)  # operator messages live in one process's memory
        self.message_timers = {
            key: timer for key, timer in self.message_timers.items() if key[0] not in signs
        }
        self.advance_to(self.now + timedelta(seconds=gap))  # the other line goes on meanwhile
        rows = [request for request in rows if request.id in self.riders]
        ids = {request.id for request in rows}
        aliases = tuple((source, rid) for source, rid in self.aliases if rid in ids)
        for index in (self.waiting, self.announced):
            for stop, rids in index.items():
                if self.stop_line[stop] == line:
                    rids.sort(key=lambda rid: (self.riders[rid].asked_at, rid))

        adopted = self.run(LinesAdopted(self.network, tuple(rows), aliases))

        signs_told, terminals_told = only(adopted, ShowOnSign), only(adopted, ShowOnTerminal)
        told = {e.line_id for e in signs_told} | {e.line_id for e in terminals_told}
        assert told == {line}, "a held line's device was told"
        assert {effect.sign_id for effect in signs_told} == signs
        self.advance_to(self.now)  # deadlines that passed meanwhile fire now


TestHandoverMachine = HandoverMachine.TestCase
TestHandoverMachine.settings = settings(
    max_examples=100,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
