"""Codes stay unique over the network when other processes dispatch some of its lines
(ForeignCodesSeen): a driver's SMS names no line, so one code must mean one rider."""

from __future__ import annotations

from dispatcher.events import ForeignCodesSeen
from dispatcher.model import Network
from tests.core.core_kit import CALAIS, DUNKERQUE, GRAVELINES, T0, Core, api


def test_a_code_held_on_another_process_s_line_is_not_given_here(network: Network) -> None:
    core = Core(network)
    assert core.run(ForeignCodesSeen(frozenset({"4821", "4822"})), T0) == []
    core.run(api(CALAIS, DUNKERQUE, "r1", code="4821"), T0)
    assert core.request("r1").code == "4823"  # the next free one, past both foreign codes


def test_a_code_freed_on_the_other_line_may_be_given_again(network: Network) -> None:
    core = Core(network)
    core.run(ForeignCodesSeen(frozenset({"4821"})), T0)
    core.run(ForeignCodesSeen(frozenset()), T0)  # that rider left: the other process says so
    core.run(api(GRAVELINES, DUNKERQUE, "r2", code="4821"), T0)
    assert core.request("r2").code == "4821"
