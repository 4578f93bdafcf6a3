"""The French SMS grammar: a table of what riders and drivers write, and fuzzing (never raises)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dispatcher.model import LineId, Network, StopId
from line_service.network.lines_file import load_network
from sms_gateway.commands import (
    AskRide,
    Cancel,
    Command,
    Departed,
    DriverCode,
    Help,
    NeedDestination,
    NoRideFrom,
    OptOut,
    UnknownStop,
    normalize,
    parse,
)

REPO = Path(__file__).resolve().parents[1]
NETWORK: Network = load_network(REPO / "config" / "lines.yaml")
LINE = LineId("calais-dunkerque")


def ride(stop: str, destination: str) -> AskRide:
    return AskRide(LINE, StopId(stop), StopId(destination))


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("cal dunkerque", ride("calais-est", "dunkerque-est")),
        ("CAL Dunkerque", ride("calais-est", "dunkerque-est")),
        ("CAL Dunkerke", ride("calais-est", "dunkerque-est")),
        ("  cal    DUNKERQUE  ", ride("calais-est", "dunkerque-est")),
        ("Cal dunkerque svp", ride("calais-est", "dunkerque-est")),
        ("cal dkq", ride("calais-est", "dunkerque-est")),
        ("cal dunk", ride("calais-est", "dunkerque-est")),
        ("cal-dunkerque", ride("calais-est", "dunkerque-est")),
        ("cal gravline", ride("calais-est", "gravelines-est")),
        ("MRK grande synthe", ride("marck-est", "grande-synthe-est")),
        ("mrk grande-synthe", ride("marck-est", "grande-synthe-est")),
        ("mrk grandsynthe", ride("marck-est", "grande-synthe-est")),
        ("mrk Loon plage", ride("marck-est", "loon-plage-est")),
        ("gsc calais", ride("grande-synthe-ouest", "calais-ouest")),
        ("GSC Câlais", ride("grande-synthe-ouest", "calais-ouest")),
        ("dun marck", ride("dunkerque-ouest", "marck-ouest")),
        # Upstream stops are no destinations: Calais is behind a rider at Marck going east.
        ("mrk calais", NeedDestination(LINE, StopId("marck-est"), "CALAIS")),
        ("cal paris", NeedDestination(LINE, StopId("calais-est"), "PARIS")),
        ("cal", NeedDestination(LINE, StopId("calais-est"), "")),
        ("dkq calais", NoRideFrom(LINE, StopId("dunkerque-est"))),
        ("xyz calais", UnknownStop("XYZ")),
        ("annuler", Cancel()),
        ("ANNULER", Cancel()),
        ("Annulé", Cancel()),
        ("anuler", Cancel()),
        ("annuler ma demande", Cancel()),
        ("PARTI", Departed()),
        ("je suis parti", Departed()),
        ("partie", Departed()),
        ("aide", Help()),
        ("AIDE !", Help()),
        ("", Help(understood=False)),
        ("   \n\t ", Help(understood=False)),
        ("bonjour, je voudrais aller a Dunkerque", Help(understood=False)),
        ("🚗🚗🚗", Help(understood=False)),
        ("4821", DriverCode("4821")),
        (" 0042 ", DriverCode("0042")),
        ("code 4821", DriverCode("4821")),
        ("48211", Help(understood=False)),
        # French opt-out words, alone or with SMS: never a stop code, never a ride.
        ("STOP", OptOut()),
        ("stop", OptOut()),
        ("STOP SMS", OptOut()),
        ("Arrêt", OptOut()),
        ("ARRET SMS", OptOut()),
        ("stop dunkerque", UnknownStop("STOP")),
    ],
)
def test_what_people_write_becomes_the_right_command(body: str, expected: Command) -> None:
    assert parse(body, NETWORK) == expected


def test_commands_are_frozen_values() -> None:
    command = parse("cal dunkerque", NETWORK)
    with pytest.raises(dataclasses.FrozenInstanceError):
        command.stop_id = StopId("marck-est")  # type: ignore[misc, union-attr]


def test_normalize_drops_case_accents_punctuation_and_extra_spaces() -> None:
    assert normalize("  Grande-Synthe,\tÉté!! ") == "GRANDE SYNTHE ETE"


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=2000))
def test_parse_never_raises_whatever_the_body(body: str) -> None:
    assert parse(body, NETWORK) is not None


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["cal", "MRK", "gsc", "dkq", "xyz", "annuler", "parti", "aide", "1234", ""]),
    st.text(
        alphabet=st.characters(codec="utf-8") | st.sampled_from(["\x00", "\x1b", "\u202e", "🚕"]),
        max_size=300,
    ),
)
def test_parse_never_raises_on_commands_followed_by_garbage(head: str, tail: str) -> None:
    assert parse(f"{head} {tail}", NETWORK) is not None


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=1, max_value=2000))
def test_long_bodies_are_parsed_without_error(size: int) -> None:
    assert parse("cal " + "dunkerque " * size, NETWORK) is not None
