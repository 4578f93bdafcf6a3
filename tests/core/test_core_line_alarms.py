"""The core: a line's code-guessing alarm, raised once per episode and cleared once."""

from __future__ import annotations

from datetime import timedelta

from dispatcher.effects import (
    Alert,
    AlertKind,
    ClearAlert,
    RaiseAlert,
    RejectEvent,
    RejectionReason,
)
from dispatcher.events import CodeGuessingReported
from dispatcher.model import LineId, Network
from tests.core.core_kit import LINE, T0, Core


def test_a_guessing_episode_raises_one_line_alert_naming_its_sources(network: Network) -> None:
    core = Core(network)
    sources = tuple(f"phone:{n:032x}" for n in range(7))
    alarmed = CodeGuessingReported(LINE, alarmed=True, wrong_codes=12, sources=sources)
    [raised] = core.run(alarmed, T0)
    assert isinstance(raised, RaiseAlert)
    alert = raised.alert
    assert (alert.kind, alert.line_id, alert.device_kind, alert.device_id) == (
        AlertKind.CODE_GUESSING,
        LINE,
        None,
        LINE,
    )
    assert alert.message.startswith("12 wrong drivers' codes on the line from 7 sources")
    assert sources[4] in alert.message
    assert sources[5] not in alert.message
    assert "+2" in alert.message
    assert core.state.alerts[(AlertKind.CODE_GUESSING, LINE)] == Alert(
        AlertKind.CODE_GUESSING, LINE, None, LINE, alert.message, T0
    )
    assert core.run(alarmed, T0 + timedelta(minutes=1)) == []  # still the same episode

    calm = CodeGuessingReported(LINE, alarmed=False)
    assert core.run(calm, T0 + timedelta(hours=24)) == [
        ClearAlert(AlertKind.CODE_GUESSING, LINE, LINE)
    ]
    assert core.run(calm, T0 + timedelta(hours=25)) == []


def test_an_alarm_for_an_unknown_line_is_rejected(network: Network) -> None:
    core = Core(network)
    event = CodeGuessingReported(LineId("nowhere"), alarmed=True, wrong_codes=10)
    assert core.run(event, T0) == [RejectEvent(RejectionReason.UNKNOWN_LINE, "nowhere")]
