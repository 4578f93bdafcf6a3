"""Pure: what devices say about themselves — presence and sign readback — and operator alerts.

- A device going offline raises DEVICE_OFFLINE once; coming back clears it, and a sign that
  comes back gets its desired display again with a fresh lease. Repeated "online" heartbeats
  change nothing.
- A sign reporting, for the seq it was last sent, pages other than those asked raises
  SIGN_MISMATCH once; a matching report clears it. Blank after the lease lapsed is no mismatch.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from dispatcher import displays
from dispatcher.effects import Alert, AlertKind, ClearAlert, RaiseAlert, RejectionReason
from dispatcher.events import DeviceStatusReported, SignReported
from dispatcher.model import DeviceKind, LineId
from dispatcher.state import DispatcherState, SignReport, Step, reject


def sign_reported(state: DispatcherState, event: SignReported, now: datetime) -> Step:
    """Compare what a sign shows with what it was asked to show."""
    place = state.network.device(DeviceKind.SIGN, event.sign_id)
    if place is None or place.line_id != event.line_id:
        return reject(state, RejectionReason.UNKNOWN_DEVICE, event.sign_id)
    state = replace(
        state,
        sign_reports=state.sign_reports.set(event.sign_id, SignReport(event.seq, event.pages, now)),
    )
    asked = state.signs.get(event.sign_id)
    if asked is None or event.seq < asked.seq:
        return state, []
    lapsed_and_blank = event.pages == () and now >= asked.expires_at
    if event.seq == asked.seq and (event.pages == asked.pages or lapsed_and_blank):
        return clear_alert(state, AlertKind.SIGN_MISMATCH, event.line_id, event.sign_id)
    message = (
        f"shows {list(map(list, event.pages))} (seq {event.seq}), "
        f"asked {list(map(list, asked.pages))} (seq {asked.seq})"
    )
    return raise_alert(
        state, AlertKind.SIGN_MISMATCH, event.line_id, DeviceKind.SIGN, event.sign_id, message, now
    )


def device_status(state: DispatcherState, event: DeviceStatusReported, now: datetime) -> Step:
    """Track presence; alert on offline; re-send a returning sign its display.

    Returning means reported offline before: a sign's first report since the service started
    needs nothing re-sent, as every connection to the broker re-asserts every configured sign
    (a retained display the sign receives when it subscribes, its lease kept fresh while lit).
    After a restart, thousands of retained statuses arrive together with that re-assertion.
    """
    place = state.network.device(event.kind, event.device_id)
    if place is None or place.line_id != event.line_id:
        return reject(state, RejectionReason.UNKNOWN_DEVICE, event.device_id)
    key = (event.kind, event.device_id)
    was_offline = state.online.get(key) is False
    if state.online.get(key) is not event.online:
        # Heartbeats repeat the same presence: copy the map only when something changed.
        state = replace(state, online=state.online.set(key, event.online))
    if not event.online:
        message = f"{event.kind.value} {event.device_id} is offline"
        return raise_alert(
            state,
            AlertKind.DEVICE_OFFLINE,
            event.line_id,
            event.kind,
            event.device_id,
            message,
            now,
        )
    state, effects = clear_alert(state, AlertKind.DEVICE_OFFLINE, event.line_id, event.device_id)
    if not was_offline or event.kind is not DeviceKind.SIGN or event.device_id not in state.signs:
        # A repeated "online" (a heartbeat) changes nothing: re-sending would flood the signs.
        # A sign never told anything has nothing to be re-told.
        return state, effects
    line = state.network.line(place.line_id)
    stop = line.stop(place.stop_id) if line else None
    assert line is not None
    assert stop is not None
    spec = next(spec for spec in stop.signs if spec.id == event.device_id)
    state, shown = displays.resend_sign(state, line, stop, spec, now)
    return state, effects + shown


def raise_alert(
    state: DispatcherState,
    kind: AlertKind,
    line_id: LineId,
    device_kind: DeviceKind,
    device_id: str,
    message: str,
    now: datetime,
) -> Step:
    """Raise an alert unless the same one is already active."""
    if (kind, device_id) in state.alerts:
        return state, []
    alert = Alert(kind, line_id, device_kind, device_id, message, now)
    return replace(state, alerts=state.alerts.set((kind, device_id), alert)), [RaiseAlert(alert)]


def clear_alert(state: DispatcherState, kind: AlertKind, line_id: LineId, device_id: str) -> Step:
    """Clear an active alert (nothing if none)."""
    if (kind, device_id) not in state.alerts:
        return state, []
    alerts = state.alerts.delete((kind, device_id))
    return replace(state, alerts=alerts), [ClearAlert(kind, line_id, device_id)]
