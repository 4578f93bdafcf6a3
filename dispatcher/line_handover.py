"""Pure: lines changing hands between the processes of a cluster, as seen by one of them.

Theory of operation
-------------------
Each process drives only the lines it owns: `state.network` holds them (a subset of the lines
file), and every sweep of the core (resync, lease refresh, waiting riders) walks it alone.

- `LinesAdopted` (a peer died, lines were free): the adopted lines' requests read back from
  the database are indexed beside the ones held, their deadlines armed, and the adopted lines'
  signs and terminals told at once what they must show, as a restart's resync does. The lines
  already held are not touched: no effect for their devices, their requests as memory has them.
- `LinesDropped` (handed to a newcomer, SIGTERM): everything of the dropped lines is forgotten —
  requests, indexes, displays, device presence, alerts, operator messages — and their riders'
  deadlines disarmed. Nothing is stored and no device is told: the riders stay waiting in the
  database and the signs keep their lease until the next owner, which restores them, speaks.
- Events about a line no longer owned then find neither its devices nor its requests nor its
  codes: they are rejected like any unknown one, with no effect on a device.

Seqs stay increasing across owners without any hand-over: a display's seq is at least the
current time in ms (`sign_pages.next_seq`), so the new owner's first seq exceeds the seqs the
old owner published before it, given clocks in step (and a hand-over longer than the few ms a
burst of displays to one sign runs its seq ahead of the clock: a lock and a read take more).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from dispatcher import displays
from dispatcher.effects import ArmDeadline, DisarmDeadline, Effect
from dispatcher.events import LinesAdopted, LinesDropped
from dispatcher.model import DeviceKind, LineId, Network, StopId
from dispatcher.state import DeviceKey, DispatcherState, Step, index_requests


def lines_adopted(state: DispatcherState, event: LinesAdopted, now: datetime) -> Step:
    """Drive the adopted lines too: their riders back, their deadlines armed, their devices told.

    A line held but absent from `event.network` is dropped (the network says what is owned).
    """
    held = {line.id for line in state.network.lines}
    adopted = tuple(line for line in event.network.lines if line.id not in held)
    if {line.id for line in event.network.lines} != held:
        state, effects = _drop(state, event.network)
    else:
        effects = []
    if not adopted:
        return state, effects
    ids = {line.id for line in adopted}
    requests = [
        request
        for request in event.requests
        if request.line_id in ids
        and request.id not in state.requests
        and _placed(event.network, request.line_id, request.stop_id)
    ]
    indexed = index_requests(event.network, requests, event.aliases)
    # A source already known names a held line's request: memory wins, as for ids.
    sources = [(src, rid) for src, rid in indexed.by_source.items() if src not in state.by_source]
    state = replace(
        state,
        network=event.network,
        requests=state.requests.update(indexed.requests),
        by_source=state.by_source.update(sources),
        waiting_by_stop=state.waiting_by_stop.update(indexed.waiting_by_stop),
        announced_by_stop=state.announced_by_stop.update(indexed.announced_by_stop),
        codes=state.codes.update(indexed.codes),
    )
    effects += [
        ArmDeadline(request.id, request.deadline_at)
        for request in (*indexed.waiting(), *indexed.announced())
    ]
    state, shown = displays.resync(state, now, adopted)
    return state, effects + shown


def lines_dropped(state: DispatcherState, event: LinesDropped) -> Step:
    """Forget the lines not in `event.network`; their live riders' deadlines are disarmed.

    Lines of `event.network` not held stay unowned: adopting one needs its riders
    (`LinesAdopted`), else its signs would be blanked under waiting riders.
    """
    held = {line.id for line in state.network.lines}
    kept = tuple(line for line in event.network.lines if line.id in held)
    network = event.network if len(kept) == len(event.network.lines) else Network(kept)
    return _drop(state, network)


def _drop(state: DispatcherState, network: Network) -> Step:
    kept = {line.id for line in network.lines}
    dropped = [line for line in state.network.lines if line.id not in kept]
    if not dropped:
        return state, []
    lines = {line.id for line in dropped}
    gone = sorted(
        (request for request in state.requests.values() if request.line_id in lines),
        key=lambda request: (request.created_at, request.id),
    )
    gone_ids = {request.id for request in gone}
    stops = [stop.id for line in dropped for stop in line.all_stops()]
    signs = {spec.id for line in dropped for stop in line.all_stops() for spec in stop.signs}
    terminals = {
        stop.terminal for line in dropped for stop in line.all_stops() if stop.terminal is not None
    }
    devices: list[DeviceKey] = [(DeviceKind.SIGN, sign) for sign in signs]
    devices += [(DeviceKind.TERMINAL, terminal) for terminal in terminals]
    state = replace(
        state,
        network=network,
        requests=state.requests.discard(gone_ids),
        by_source=state.by_source.discard(
            [source for source, rid in state.by_source.items() if rid in gone_ids]
        ),
        waiting_by_stop=state.waiting_by_stop.discard(stops),
        announced_by_stop=state.announced_by_stop.discard(stops),
        codes=state.codes.discard([key for key in state.codes if key[0] in lines]),
        signs=state.signs.discard(signs),
        sign_reports=state.sign_reports.discard(signs),
        screens=state.screens.discard(terminals),
        commissioning_presses=state.commissioning_presses.discard(terminals),
        online=state.online.discard(devices),
        presence_changed_at=state.presence_changed_at.discard(devices),
        settling=state.settling.discard(devices),
        # Line alarms are keyed by the line's id, device alerts by the device's: both name it.
        alerts=state.alerts.discard(
            [key for key, alert in state.alerts.items() if alert.line_id in lines]
        ),
        operator_messages={
            sign: messages
            for sign, messages in state.operator_messages.items()
            if sign not in signs
        },
    )
    effects: list[Effect] = [DisarmDeadline(request.id) for request in gone if request.is_live]
    return state, effects


def _placed(network: Network, line_id: LineId, stop_id: StopId) -> bool:
    """True if the stop is on the line (a request the lines file lost a place of is not held:
    the shell ends those riders, as at start-up)."""
    line = network.line(line_id)
    return line is not None and line.stop(stop_id) is not None


__all__ = ["lines_adopted", "lines_dropped"]
