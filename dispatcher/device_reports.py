"""Pure: what devices say about themselves — presence and sign readback — and operator alerts.

- A device going offline raises DEVICE_OFFLINE once; coming back clears it, and a sign that
  comes back gets its desired display again with a fresh lease. Repeated "online" heartbeats
  change nothing.
- Flapping: one alert per episode. A return clears the alert at once only when it ends the
  episode's single outage and that outage lasted at least the line's `device_settle`. Any other
  return (a blip, or the second outage of an episode) leaves the alert on and re-sends nothing:
  the device is *settling*; the first lease refresh that finds it online for `device_settle`
  clears the alert, and that refresh renews the lit signs' leases (the re-send). A flapping
  sign thus gets one RaiseAlert/ClearAlert pair per episode and displays only at lease
  refreshes, however fast it flaps.
- A device the gateway finds flooding (messages beyond its rate, dropped) raises
  DEVICE_FLOODING when the episode opens and clears it when it closes (the gateway says both).
- A sign reporting, for the seq it was last sent, pages other than those asked raises
  SIGN_MISMATCH once; a matching report clears it. Blank after the lease lapsed is no mismatch.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from dispatcher import displays
from dispatcher.effects import (
    Alert,
    AlertKind,
    ClearAlert,
    Effect,
    RaiseAlert,
    RejectionReason,
    SaveDevicePresence,
)
from dispatcher.events import DeviceFloodReported, DeviceStatusReported, SignReported
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
    outage_began_at = state.presence_changed_at.get(key)
    stored: list[Effect] = []
    if state.online.get(key) is not event.online:
        # Heartbeats repeat the same presence: copy the map (and store it) only on a change.
        state = replace(
            state,
            online=state.online.set(key, event.online),
            presence_changed_at=state.presence_changed_at.set(key, now),
        )
        stored.append(
            SaveDevicePresence(event.line_id, event.kind, event.device_id, event.online, now)
        )
    if not event.online:
        if key in state.settling:
            state = replace(state, settling=state.settling.delete(key))
        message = f"{event.kind.value} {event.device_id} is offline"
        state, alerted = raise_alert(
            state,
            AlertKind.DEVICE_OFFLINE,
            event.line_id,
            event.kind,
            event.device_id,
            message,
            now,
        )
        return state, stored + alerted
    if not was_offline:
        # A repeated "online" (a heartbeat) changes nothing: re-sending would flood the signs.
        return state, stored
    line = state.network.line(place.line_id)
    assert line is not None
    alert = state.alerts.get((AlertKind.DEVICE_OFFLINE, event.device_id))
    plain_return = alert is None or (
        alert.raised_at == outage_began_at
        and outage_began_at is not None
        and now - outage_began_at >= line.tuning.device_settle
    )
    if not plain_return:
        # Flapping: the alert stays on until the device has stayed online (see settle_devices).
        return replace(state, settling=state.settling.set(key, now)), stored
    state, effects = clear_alert(state, AlertKind.DEVICE_OFFLINE, event.line_id, event.device_id)
    effects = stored + effects
    if event.kind is not DeviceKind.SIGN or event.device_id not in state.signs:
        # A sign never told anything has nothing to be re-told.
        return state, effects
    found = line.sign(event.device_id)
    assert found is not None
    stop, spec = found
    state, shown = displays.resend_sign(state, line, stop, spec, now)
    return state, effects + shown


def settle_devices(state: DispatcherState, now: datetime) -> Step:
    """Clear the offline alert of every flapping device online for its line's settle time.

    Run before the lease refresh, which gives the lit signs among them a fresh display.
    """
    effects: list[Effect] = []
    for key, back_at in list(state.settling.items()):
        kind, device_id = key
        place = state.network.device(kind, device_id)
        line = state.network.line(place.line_id) if place is not None else None
        if line is None or now - back_at < line.tuning.device_settle:
            continue
        state = replace(state, settling=state.settling.delete(key))
        state, cleared = clear_alert(state, AlertKind.DEVICE_OFFLINE, line.id, device_id)
        effects += cleared
    return state, effects


def device_flood(state: DispatcherState, event: DeviceFloodReported, now: datetime) -> Step:
    """One DEVICE_FLOODING alert per flood episode the gateway reports."""
    place = state.network.device(event.kind, event.device_id)
    if place is None or place.line_id != event.line_id:
        return reject(state, RejectionReason.UNKNOWN_DEVICE, event.device_id)
    if not event.flooding:
        return clear_alert(state, AlertKind.DEVICE_FLOODING, event.line_id, event.device_id)
    message = f"{event.kind.value} {event.device_id} sends too fast: messages dropped"
    return raise_alert(
        state,
        AlertKind.DEVICE_FLOODING,
        event.line_id,
        event.kind,
        event.device_id,
        message,
        now,
    )


def raise_alert(
    state: DispatcherState,
    kind: AlertKind,
    line_id: LineId,
    device_kind: DeviceKind | None,
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
