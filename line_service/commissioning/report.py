"""Pure: the commissioning report — one self-contained, printable French HTML page."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from line_service.commissioning.checks import RESULT_FR, DeviceCheck, Result

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #1d2733; }
h1 { font-size: 1.5em; margin-bottom: .2em; } .meta { color: #52606d; margin-top: 0; }
table { border-collapse: collapse; width: 100%; margin: 1.2em 0; font-size: .92em; }
th, td { border: 1px solid #aab4be; padding: .35em .5em; text-align: left; vertical-align: top; }
th { background: #eef1f4; } td.time { white-space: nowrap; font-variant-numeric: tabular-nums; }
td.result { font-weight: bold; white-space: nowrap; } .id { white-space: nowrap; }
tr.ok td.result { color: #17693a; } tr.fail td.result { color: #a4262c; }
.summary { font-size: 1.1em; padding: .6em .8em; border-radius: .3em; }
.summary.ok { background: #e3f4ea; } .summary.fail { background: #fbe7e8; }
.sign-off { margin-top: 2.5em; border: 1px solid #1d2733; padding: 1em 1.2em; }
.sign-off p { margin: .2em 0 1.4em; } .sign-off .field { border-bottom: 1px dotted #52606d; }
@media print { body { margin: 0; max-width: none; } .summary { border: 1px solid #1d2733; } }
"""


def render_report(
    *,
    line_id: str,
    line_name: str,
    timezone: str,
    stops: Sequence[tuple[str, str]],
    checks: Sequence[DeviceCheck],
    started_at: datetime,
    ended_at: datetime,
) -> str:
    """The report of one commissioning walk; times in the line's local time."""
    zone = ZoneInfo(timezone)

    def local(at: datetime, with_date: bool = False) -> str:
        return at.astimezone(zone).strftime("%d/%m/%Y %H:%M:%S" if with_date else "%H:%M:%S")

    def clock(at: datetime) -> str:
        return local(at)

    failed = [check for check in checks if check.result is not Result.OK]
    rows = "\n".join(_row(check, clock) for check in checks)
    stop_list = ", ".join(f"{escape(name)} ({escape(stop_id)})" for stop_id, name in stops)
    if not checks:
        summary, summary_class = "Aucun équipement à tester.", "fail"
    elif failed:
        summary = f"{len(failed)} équipement(s) sur {len(checks)} en défaut : à reprendre."
        summary_class = "fail"
    else:
        summary, summary_class = f"Les {len(checks)} équipements sont conformes.", "ok"
    return f"""<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<title>Procès-verbal de mise en service — {escape(line_name)}</title>
<style>{_STYLE}</style>
</head>
<body>
<h1>Procès-verbal de mise en service</h1>
<p class="meta">Ligne <strong>{escape(line_name)}</strong> ({escape(line_id)}) ·
arrêt(s) : {stop_list}<br>
Essais du {local(started_at, True)} au {local(ended_at, True)} (heure locale, {escape(timezone)})
</p>
<p class="summary {summary_class}">{summary}</p>
<table>
<thead><tr><th>Arrêt</th><th>Équipement</th><th>Essai</th><th>Résultat</th><th>Constat</th>
<th>Début</th><th>Fin</th></tr></thead>
<tbody>
{rows}
</tbody>
</table>
<p>Panneau : une page d'essai est envoyée (message d'exploitation expirant en 2 minutes) ;
il est conforme quand il déclare afficher exactement cette page. Borne : elle doit afficher
l'écran « MISE EN SERVICE » et transmettre un appui d'essai, qui ne crée aucune demande.</p>
<div class="sign-off">
<strong>Vu et approuvé par l'autorité organisatrice</strong>
<p>Nom et qualité : <span class="field">{"&nbsp;" * 60}</span></p>
<p>Date : <span class="field">{"&nbsp;" * 30}</span>
&nbsp;&nbsp; Signature et cachet : <span class="field">{"&nbsp;" * 40}</span></p>
</div>
</body>
</html>
"""


def _row(check: DeviceCheck, local: Callable[[datetime], str]) -> str:
    kind = "ok" if check.result is Result.OK else "fail"
    return (
        f'<tr class="{kind}" data-device="{escape(check.device_id)}" '
        f'data-result="{check.result.value}">'
        f"<td>{escape(check.stop_name)}</td>"
        f'<td>{escape(check.kind)} <span class="id">{escape(check.device_id)}</span></td>'
        f"<td>{escape(check.test)}</td>"
        f'<td class="result">{escape(RESULT_FR[check.result])}</td>'
        f"<td>{escape(check.detail)}</td>"
        f'<td class="time">{local(check.started_at)}</td>'
        f'<td class="time">{local(check.ended_at)}</td></tr>'
    )
