"""The core: remote asks (SMS, app) take at most the stop's cap less the terminal's reserve."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from dispatcher.effects import ScreenState, ShowOnTerminal
from dispatcher.events import Actor, RideCancelled
from dispatcher.model import LineTuning, Network, RequestId
from dispatcher.request_machine import Cause, RequestState
from tests.core.core_kit import (
    CALAIS,
    DUNKERQUE,
    GRAVELINES,
    LINE,
    MARCK,
    T0,
    Core,
    api,
    only,
    press,
    sms,
)


def test_remote_asks_stop_at_the_cap_less_the_reserve_and_the_terminal_still_serves(
    network: Network,
) -> None:
    core = Core(network)
    for n in range(3):
        core.run(api(CALAIS, DUNKERQUE, f"app{n}", code=f"{n:04d}"), T0)
    core.run(sms(CALAIS, DUNKERQUE, "sms0", "+33600000001", code="0100"), T0)
    assert len(core.state.waiting_at(CALAIS)) == 4  # 6 - 2: the remote share is full

    core.run(sms(CALAIS, MARCK, "sms1", "+33600000002"), T0)
    core.run(api(CALAIS, MARCK, "app9"), T0)
    for refused in ("sms1", "app9"):
        assert core.request(refused).state is RequestState.REFUSED
        assert core.request(refused).cause is Cause.REMOTE_FULL

    # A rider at the stop presses the terminal: accepted, twice (the two reserved places).
    shown = only(core.run(press(CALAIS, DUNKERQUE, "p1", code="0200"), T0), ShowOnTerminal)
    assert shown[-1].screen.state is ScreenState.WAITING
    core.run(press(CALAIS, GRAVELINES, "p2", code="0201"), T0)
    assert core.request("p2").state is RequestState.WAITING
    assert len(core.state.waiting_at(CALAIS)) == 6

    # The stop is full now for everyone, terminal included.
    core.run(press(CALAIS, MARCK, "p3"), T0)
    assert core.request("p3").cause is Cause.STOP_FULL

    # A remote rider leaves: the share has room again.
    core.run(RideCancelled(LINE, Actor.RIDER, request_id=RequestId("app0")), T0)
    core.run(api(CALAIS, MARCK, "app10"), T0 + timedelta(seconds=1))
    assert core.request("app10").state is RequestState.WAITING


def test_terminal_riders_do_not_use_up_the_remote_share(network: Network) -> None:
    core = Core(network)
    core.run(press(CALAIS, DUNKERQUE, "p1", code="0001"), T0)
    core.run(press(CALAIS, GRAVELINES, "p2", code="0002"), T0)
    for n in range(4):
        core.run(api(CALAIS, DUNKERQUE, f"app{n}", code=f"{n + 10:04d}"), T0)
    assert all(core.request(f"app{n}").is_waiting for n in range(4))
    core.run(api(CALAIS, DUNKERQUE, "app4"), T0)
    assert core.request("app4").cause is Cause.STOP_FULL


def test_a_stop_without_terminal_gives_remote_asks_the_whole_cap(network: Network) -> None:
    core = Core(network)
    for n in range(6):
        core.run(api(GRAVELINES, DUNKERQUE, f"app{n}", code=f"{n:04d}"), T0)
    assert len(core.state.waiting_at(GRAVELINES)) == 6
    core.run(api(GRAVELINES, DUNKERQUE, "app6"), T0)
    assert core.request("app6").cause is Cause.STOP_FULL


def test_the_reserve_is_line_tuning(network: Network) -> None:
    line = network.lines[0]
    tuned = replace(line, tuning=LineTuning(max_waiting_per_stop=3, terminal_reserve=0))
    core = Core(Network((tuned, *network.lines[1:])))
    for n in range(3):
        core.run(api(CALAIS, DUNKERQUE, f"app{n}", code=f"{n:04d}"), T0)
    assert len(core.state.waiting_at(CALAIS)) == 3
