"""Pure: what a stop's terminal tells its rider, in French, for each outcome of a request."""

from __future__ import annotations

from datetime import datetime, timedelta

from dispatcher.effects import ScreenState, TerminalScreen
from dispatcher.model import Line, Weekday
from dispatcher.request_machine import Cause, RequestState, RideRequest
from dispatcher.state import CommissioningPress

COMMISSIONING_SCREEN_TIME = timedelta(hours=1)
"""How long a commissioning screen lasts; lease refreshes renew it once half of it is gone.

It shows no rider's data, so a dead dispatcher leaving it up harms no one: it can outlive
the signs' short leases, and the test result it carries stays readable for the installer.
"""
COMMISSIONING_TITLE = "MISE EN SERVICE"

_SCREEN_OF_STATE: dict[RequestState, ScreenState] = {
    RequestState.WAITING: ScreenState.WAITING,
    RequestState.ANNOUNCED: ScreenState.IDLE,  # never shown: an announcement has no terminal
    RequestState.PICKED_UP: ScreenState.PICKED_UP,
    RequestState.CANCELLED: ScreenState.CANCELLED,
    RequestState.FALLBACK: ScreenState.FALLBACK,
    RequestState.EXPIRED: ScreenState.EXPIRED,
    RequestState.REFUSED: ScreenState.REFUSED,
}

_REFUSAL_TEXT: dict[Cause, tuple[str, ...]] = {
    Cause.UNKNOWN_DESTINATION: ("Destination non desservie", "depuis cet arret"),
    Cause.STOP_FULL: ("Trop de demandes ici", "Reessayez dans un instant"),
    Cause.NO_FREE_CODE: ("Service sature", "Reessayez dans un instant"),
    Cause.COMMISSIONING: (COMMISSIONING_TITLE, "Arret pas encore ouvert"),
    Cause.STORAGE_FAILED: ("Service momentanement indisponible", "Reessayez dans un instant"),
}


def screen_for(request: RideRequest, line: Line, seq: int, now: datetime) -> TerminalScreen:
    """The screen a terminal shows for `request` as it now stands."""
    destination = line.stop(request.destination_id)
    place = destination.name if destination else request.destination_id
    state = _SCREEN_OF_STATE[request.state]
    lines: tuple[str, ...]
    code: str | None = None
    expires_at = now + line.tuning.result_screen_time
    match request.state:
        case RequestState.WAITING:
            code = request.code
            lines = (f"Vers {place}", f"Votre code : {code}", "Les panneaux sont allumes")
            expires_at = request.deadline_at
        case RequestState.ANNOUNCED:
            lines = ("Choisissez votre destination",)
        case RequestState.PICKED_UP:
            lines = ("Bon voyage !", f"Vers {place}")
        case RequestState.CANCELLED:
            lines = ("Demande annulee",)
        case RequestState.FALLBACK:
            code = request.code
            lines = ("Un taxi est en route", f"Vers {place}", f"Votre code : {code}")
        case RequestState.EXPIRED:
            lines = ("Aucun conducteur ne s'est arrete", "Demande terminee")
        case RequestState.REFUSED if request.cause is Cause.CLOSED:
            state = ScreenState.CLOSED
            lines = ("Service ferme", *opening_hours_text(line))
        case RequestState.REFUSED:
            lines = _REFUSAL_TEXT.get(request.cause, ("Demande refusee",))
    return TerminalScreen(
        seq=seq,
        state=state,
        device_request_id=request.source.device_request_id,
        code=code,
        lines=lines,
        expires_at=expires_at,
        destination_id=request.destination_id if state is ScreenState.WAITING else None,
    )


def idle_screen(seq: int, now: datetime, line: Line) -> TerminalScreen:
    """The screen of a terminal with nothing to report."""
    return TerminalScreen(
        seq=seq,
        state=ScreenState.IDLE,
        device_request_id=None,
        code=None,
        lines=("Choisissez votre destination",),
        expires_at=now + line.tuning.sign_lease,
    )


def commissioning_screen(
    seq: int, now: datetime, line: Line, press: CommissioningPress | None
) -> TerminalScreen:
    """The screen of a terminal whose stop is in commissioning, with its last test press.

    State `closed` (the stop serves no rider); the first row names the button last pressed so
    the installer sees it work. It answers that press (`device_request_id`), so the terminal
    stops re-sending it.
    """
    rows: tuple[str, ...] = (COMMISSIONING_TITLE, "Arret pas encore ouvert")
    if press is not None:
        destination = line.stop(press.destination_id)
        if press.known and destination is not None:
            rows = (f"TEST OK - bouton {destination.name.upper()}", *rows)
        else:
            rows = (f"TEST - bouton inconnu {press.destination_id}", *rows)
    return TerminalScreen(
        seq=seq,
        state=ScreenState.CLOSED,
        device_request_id=press.device_request_id if press else None,
        code=None,
        lines=rows,
        expires_at=now + COMMISSIONING_SCREEN_TIME,
    )


def opening_hours_text(line: Line) -> tuple[str, ...]:
    """The line's service hours, one row per group of days ("lun-ven 06:30-09:30 16:00-19:30")."""
    if line.service_hours is None:
        return ()
    days: list[tuple[Weekday, str]] = []
    for day in Weekday:
        windows = line.service_hours.windows.get(day, ())
        if windows:
            days.append((day, " ".join(f"{w.start:%H:%M}-{w.end:%H:%M}" for w in windows)))
    return tuple(_collapse_days(days))


_WEEK = tuple(Weekday)
_FRENCH_DAY = {
    Weekday.MON: "lun",
    Weekday.TUE: "mar",
    Weekday.WED: "mer",
    Weekday.THU: "jeu",
    Weekday.FRI: "ven",
    Weekday.SAT: "sam",
    Weekday.SUN: "dim",
}


def _collapse_days(days: list[tuple[Weekday, str]]) -> list[str]:
    """Merge runs of following days with the same hours: mon, tue at 6-9 -> "lun-mar 6-9".

    Only days that follow each other merge: mon and wed alone stay two rows (tue is closed).
    """
    merged: list[tuple[Weekday, Weekday, str]] = []
    for day, spans in days:
        if merged:
            first, last, last_spans = merged[-1]
            if last_spans == spans and _WEEK.index(day) == _WEEK.index(last) + 1:
                merged[-1] = (first, day, spans)
                continue
        merged.append((day, day, spans))
    return [
        f"{_FRENCH_DAY[first]}{'-' + _FRENCH_DAY[last] if last != first else ''} {spans}"
        for first, last, spans in merged
    ]


def expected_wait_row(minutes: int) -> str:
    """The row a waiting rider's screen gets when the shell has an estimate of the wait."""
    return f"Attente estimee : {minutes} min"
