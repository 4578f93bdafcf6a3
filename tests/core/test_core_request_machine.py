"""Every RequestState × every Cause: the transition table, alone and through `step`."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from dispatcher.effects import RejectEvent, RejectionReason, SaveRequest
from dispatcher.events import (
    Actor,
    CodeValidated,
    DeadlineReached,
    Event,
    RideCancelled,
    RiderArrived,
)
from dispatcher.model import Network, RequestId
from dispatcher.request_machine import (
    FINAL_STATES,
    TRANSITIONS,
    Cause,
    IllegalTransition,
    RequestState,
    RideRequest,
    next_state,
    transition,
)
from dispatcher.state import CODE_HOLDING_STATES, index_requests
from tests.core.core_kit import (
    CALAIS,
    DUNKERQUE,
    LINE,
    T0,
    T_CALAIS,
    Core,
    only,
    press,
)
from tests.support.requests import ride_request

ALL_PAIRS = [(state, cause) for state in RequestState for cause in Cause]
RID = RequestId("r1")
CODE = "4821"
LATER = T0 + timedelta(minutes=5)

# The causes an event can bring to an existing request, and the event that brings each.
EVENT_OF_CAUSE: dict[Cause, Event] = {
    Cause.CODE_VALIDATED: CodeValidated(LINE, CODE, "driver-7"),
    Cause.RIDER_DEPARTED: RideCancelled(LINE, Actor.RIDER, departed=True, request_id=RID),
    Cause.RIDER_CANCELLED: RideCancelled(LINE, Actor.RIDER, request_id=RID),
    Cause.OPERATOR_CANCELLED: RideCancelled(LINE, Actor.OPERATOR, request_id=RID),
    Cause.GUARANTEE_REACHED: DeadlineReached(RID),
    Cause.DEADLINE_REACHED: DeadlineReached(RID),
    Cause.ANNOUNCEMENT_LAPSED: DeadlineReached(RID),
    Cause.RIDER_ARRIVED: RiderArrived(LINE, RID),
}
# A deadline means ANNOUNCEMENT_LAPSED for an announced rider and only for one.
_NOT_WHAT_A_DEADLINE_MEANS = {
    (RequestState.ANNOUNCED, Cause.GUARANTEE_REACHED),
    (RequestState.ANNOUNCED, Cause.DEADLINE_REACHED),
    (RequestState.WAITING, Cause.ANNOUNCEMENT_LAPSED),
}
STEP_PAIRS = [
    (state, cause)
    for state in RequestState
    for cause in EVENT_OF_CAUSE
    if (state, cause) not in _NOT_WHAT_A_DEADLINE_MEANS
]


def a_request(state: RequestState) -> RideRequest:
    """A request at calais-est for dunkerque, already in `state`."""
    return ride_request(
        RID,
        T0,
        line=LINE,
        stop=CALAIS,
        destination=DUNKERQUE,
        terminal=T_CALAIS,
        state=state,
        code=None if state is RequestState.REFUSED else CODE,
    )


def test_the_table_names_every_state_once() -> None:
    assert set(TRANSITIONS) == set(RequestState)
    assert {
        RequestState.PICKED_UP,
        RequestState.CANCELLED,
        RequestState.EXPIRED,
        RequestState.REFUSED,
    } == FINAL_STATES
    assert {
        RequestState.WAITING,
        RequestState.ANNOUNCED,
        RequestState.FALLBACK,
    } == CODE_HOLDING_STATES


@pytest.mark.parametrize(("state", "cause"), ALL_PAIRS)
def test_transition_follows_the_table(state: RequestState, cause: Cause) -> None:
    request = a_request(state)
    target = TRANSITIONS[state].get(cause)
    assert next_state(state, cause) is target
    if target is None:
        with pytest.raises(IllegalTransition):
            transition(request, cause, LATER, driver_ref="driver-7")
        assert request == a_request(state)
        return
    done = transition(request, cause, LATER, driver_ref="driver-7")
    assert done == replace(
        request, state=target, cause=cause, updated_at=LATER, driver_ref="driver-7"
    )


def test_transition_keeps_a_driver_ref_given_earlier() -> None:
    fallback = replace(a_request(RequestState.FALLBACK), driver_ref="taxi-1")
    assert transition(fallback, Cause.CODE_VALIDATED, LATER).driver_ref == "taxi-1"


@pytest.mark.parametrize(("state", "cause"), STEP_PAIRS)
def test_step_applies_legal_causes_and_rejects_the_rest(
    state: RequestState, cause: Cause, network: Network, fallback_network: Network
) -> None:
    # DeadlineReached means GUARANTEE_REACHED on a line with a fallback, DEADLINE_REACHED without.
    line_network = fallback_network if cause is Cause.GUARANTEE_REACHED else network
    request = a_request(state)
    before = index_requests(line_network, [request])
    requests_before = dict(before.requests)
    core = Core(line_network)
    core.state = before

    effects = core.run(EVENT_OF_CAUSE[cause], LATER)

    target = TRANSITIONS[state].get(cause)
    if target is None:
        assert len(effects) == 1
        (rejection,) = only(effects, RejectEvent)
        expected = {RejectionReason.NOT_WAITING}
        if cause is Cause.CODE_VALIDATED and state not in CODE_HOLDING_STATES:
            expected = {RejectionReason.UNKNOWN_CODE}  # a final request no longer holds a code
        assert rejection.reason in expected
        assert core.state is before
        assert dict(core.state.requests) == requests_before
        return
    after = core.request("r1")
    assert after.state is target
    assert after.cause is cause
    assert after.updated_at == LATER
    assert only(effects, SaveRequest)[0] == SaveRequest(after, previous_state=state)
    assert only(effects, RejectEvent) == []
    holds_code = target in CODE_HOLDING_STATES
    assert (core.state.codes.get((LINE, CODE)) == RID) is holds_code
    assert (RID in core.state.waiting_by_stop.get(CALAIS, ())) is (target is RequestState.WAITING)
    assert RID not in core.state.announced_by_stop.get(CALAIS, ())


@pytest.mark.parametrize("state", sorted(FINAL_STATES))
def test_a_final_request_never_changes_again(state: RequestState, network: Network) -> None:
    core = Core(network)
    core.state = index_requests(network, [a_request(state)])
    for event in (*EVENT_OF_CAUSE.values(), press(CALAIS, DUNKERQUE, "r1")):
        core.run(event, LATER)
        assert core.request("r1") == a_request(state)
