"""Test support for the core tests: ids of the hand-built network, a manual clock, helpers.

A plain module (not a conftest) so that test modules can import typed helpers from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TypeVar

from dispatcher.effects import ArmDeadline, DisarmDeadline, Effect, Page, ShowOnSign
from dispatcher.events import DevicesResyncRequested, Event, RideRequested
from dispatcher.model import LineId, Network, RequestId, SignId, StopId, TerminalId
from dispatcher.request_machine import Channel, DeviceRequestId, RideRequest, Source
from dispatcher.state import DispatcherState
from dispatcher.step import restore, step

LINE = LineId("calais-dunkerque")
OTHER_LINE = LineId("boulogne-calais")

# Direction to-dunkerque, in travel order.
CALAIS = StopId("calais-est")
MARCK = StopId("marck")
GRAVELINES = StopId("gravelines")
DUNKERQUE = StopId("dunkerque-centre")
# Direction to-calais, in travel order.
DUNKERQUE_OUEST = StopId("dunkerque-ouest")
GRAVELINES_SUD = StopId("gravelines-sud")
FRETHUN = StopId("frethun")
CALAIS_SUD = StopId("calais-sud")
# The other line.
BOULOGNE = StopId("boulogne")
WIMEREUX = StopId("wimereux")

T_CALAIS = TerminalId("t-calais-est")
T_MARCK = TerminalId("t-marck")
T_DUNKERQUE = TerminalId("t-dunkerque-centre")
T_DUNKERQUE_OUEST = TerminalId("t-dunkerque-ouest")
T_BOULOGNE = TerminalId("t-boulogne")

PMV_CALAIS_1 = SignId("pmv-calais-est-1")
PMV_CALAIS_2 = SignId("pmv-calais-est-2")
PMV_MARCK = SignId("pmv-marck-1")
PMV_GRAVELINES = SignId("pmv-gravelines-1")  # rows=2, columns=12
PMV_DUNKERQUE_OUEST = SignId("pmv-dunkerque-ouest-1")
PMV_GRAVELINES_SUD = SignId("pmv-gravelines-sud-1")  # rows=1, columns=24
PMV_FRETHUN = SignId("pmv-frethun-1")
PMV_BOULOGNE = SignId("pmv-boulogne-1")

TERMINAL_OF: dict[StopId, TerminalId] = {
    CALAIS: T_CALAIS,
    MARCK: T_MARCK,
    DUNKERQUE: T_DUNKERQUE,
    DUNKERQUE_OUEST: T_DUNKERQUE_OUEST,
    BOULOGNE: T_BOULOGNE,
}
LINE_OF: dict[StopId, LineId] = {BOULOGNE: OTHER_LINE, WIMEREUX: OTHER_LINE}

# Tuesday 4 March 2025, 08:00 in Paris: inside the peak-hours window.
T0 = datetime(2025, 3, 4, 7, 0, tzinfo=UTC)
# Tuesday 4 March 2025, 12:00 in Paris: between the two peaks.
NOON = datetime(2025, 3, 4, 11, 0, tzinfo=UTC)
# Saturday 8 March 2025, 08:00 in Paris: no service on weekends.
SATURDAY = datetime(2025, 3, 8, 7, 0, tzinfo=UTC)

HEADING = "COVOITURAGE"

E = TypeVar("E")


def ms(at: datetime) -> int:
    """An instant in epoch milliseconds (the floor of every seq issued at that instant)."""
    return int(at.timestamp() * 1000)


def press(
    stop: StopId,
    destination: StopId,
    request_id: str,
    *,
    code: str = "4821",
    press_id: str | None = None,
) -> RideRequested:
    """A button pressed on the terminal of `stop` (the device's own id defaults to request_id)."""
    terminal = TERMINAL_OF[stop]
    return RideRequested(
        request_id=RequestId(request_id),
        line_id=LINE_OF.get(stop, LINE),
        stop_id=stop,
        destination_id=destination,
        seats=1,
        source=terminal_source(terminal, press_id or request_id),
        code_candidate=code,
        terminal_id=terminal,
    )


def sms(
    stop: StopId,
    destination: StopId,
    request_id: str,
    phone: str,
    *,
    code: str = "4821",
    sid: str | None = None,
) -> RideRequested:
    """A ride asked by SMS (`sid` is Twilio's MessageSid, defaulting to request_id)."""
    return RideRequested(
        request_id=RequestId(request_id),
        line_id=LINE_OF.get(stop, LINE),
        stop_id=stop,
        destination_id=destination,
        seats=1,
        source=Source(Channel.SMS, sid or f"SM{request_id}"),
        code_candidate=code,
        phone=phone,
    )


def api(stop: StopId, destination: StopId, request_id: str, *, code: str = "4821") -> RideRequested:
    """A ride asked through the API: no terminal, no phone, no deduplication but the source."""
    return RideRequested(
        request_id=RequestId(request_id),
        line_id=LINE_OF.get(stop, LINE),
        stop_id=stop,
        destination_id=destination,
        seats=1,
        source=Source(Channel.API, request_id),
        code_candidate=code,
    )


def terminal_source(terminal: TerminalId, press_id: str) -> Source:
    """The source of a terminal press, shaped as the MQTT adapter shapes it."""
    return Source.of_terminal(terminal, DeviceRequestId(press_id))


def only(effects: Iterable[object], kind: type[E]) -> list[E]:
    """The effects of one kind, in order."""
    return [effect for effect in effects if isinstance(effect, kind)]


def pages_by_sign(effects: Iterable[Effect]) -> dict[SignId, tuple[Page, ...]]:
    """The pages each ShowOnSign effect asks for, by sign."""
    return {effect.sign_id: effect.display.pages for effect in only(effects, ShowOnSign)}


class Core:
    """A dispatcher driven by hand: its state, and the deadlines its effects armed."""

    def __init__(self, network: Network) -> None:
        self.state = DispatcherState(network)
        self.armed: dict[RequestId, datetime] = {}
        self.sign_seqs: dict[SignId, int] = {}

    def run(self, event: Event, at: datetime) -> list[Effect]:
        """Step one event at `at`; return its effects."""
        self.state, effects = step(self.state, event, at)
        self._track(effects)
        return effects

    def restart(self, requests: Sequence[RideRequest], at: datetime) -> list[Effect]:
        """A new process reading `requests` back from the database, then connecting to the
        broker, which asks for every device to be re-asserted."""
        self.state, effects = restore(DispatcherState(self.state.network), list(requests))
        self.armed = {}
        self._track(effects)
        return effects + self.run(DevicesResyncRequested(), at)

    def request(self, request_id: str) -> RideRequest:
        """A request the state holds."""
        return self.state.requests[RequestId(request_id)]

    def _track(self, effects: Sequence[Effect]) -> None:
        for effect in effects:
            match effect:
                case ArmDeadline(request_id=rid, at=at):
                    self.armed[rid] = at
                case DisarmDeadline(request_id=rid):
                    self.armed.pop(rid, None)
                case ShowOnSign(sign_id=sign, display=display):
                    self.sign_seqs[sign] = display.seq
                case _:
                    pass
