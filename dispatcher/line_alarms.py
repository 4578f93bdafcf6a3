"""Pure: operator alerts about a whole line rather than one device.

- Wrong drivers' codes spiking on a line (the shell's guessing guard counts them and says when
  the alarm opens and closes) raise CODE_GUESSING once per episode, keyed by the line's id, with
  the count and the sources in its message; the guard's report of calm clears it.
"""

from __future__ import annotations

from datetime import datetime

from dispatcher.device_reports import clear_alert, raise_alert
from dispatcher.effects import AlertKind, RejectionReason
from dispatcher.events import CodeGuessingReported
from dispatcher.state import DispatcherState, Step, reject

MAX_SOURCES_SHOWN = 5


def code_guessing(state: DispatcherState, event: CodeGuessingReported, now: datetime) -> Step:
    """One CODE_GUESSING alert per guessing episode on a line."""
    if state.network.line(event.line_id) is None:
        return reject(state, RejectionReason.UNKNOWN_LINE, event.line_id)
    if not event.alarmed:
        return clear_alert(state, AlertKind.CODE_GUESSING, event.line_id, event.line_id)
    shown = ", ".join(event.sources[:MAX_SOURCES_SHOWN])
    more = len(event.sources) - MAX_SOURCES_SHOWN
    message = (
        f"{event.wrong_codes} wrong drivers' codes on the line from "
        f"{len(event.sources)} sources ({shown}{f', +{more}' if more > 0 else ''}): "
        "codes from sources that failed are refused"
    )
    return raise_alert(
        state, AlertKind.CODE_GUESSING, event.line_id, None, event.line_id, message, now
    )
