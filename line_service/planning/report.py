"""Adapter: the opportunity study as one self-contained French HTML page for elected officials."""

from __future__ import annotations

from html import escape
from typing import Any

from line_service.planning import report_plots
from line_service.planning.economics import DEPARTMENT, EPCI, HDFM, PHASES
from line_service.planning.rates import ANCHOR_TRAFFIC, SHARE_AT_ANCHOR, SHARE_EXPONENT
from line_service.planning.simulation import CorridorRun

PHASE_NAMES = {
    "etude_phase_1": "Étude phase 1",
    "etude_phase_2": "Étude phase 2",
    "deploiement": "Déploiement",
    "exploitation": "Exploitation",
}

STYLE = """
body{font-family:system-ui,'DejaVu Sans',sans-serif;max-width:1000px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{color:#1f5fa8;margin-bottom:.2em}h2{border-bottom:2px solid #1f5fa8;padding-bottom:.2em;
margin-top:2em}table{border-collapse:collapse;width:100%;font-size:.9em;margin:1em 0}
th,td{border:1px solid #ccc;padding:.3em .5em;text-align:right}
th{background:#eef3fa}td.t,th.t{text-align:left}tr:nth-child(even) td{background:#fafafa}
.key{display:flex;gap:1em;flex-wrap:wrap}.key div{flex:1;min-width:180px;background:#eef3fa;
padding:.8em;border-radius:6px}.key b{display:block;font-size:1.6em;color:#1f5fa8}
figure{margin:1em 0}svg{max-width:100%;height:auto}.small{font-size:.85em;color:#555}
"""


def fr(value: float | None, digits: int = 0, unit: str = "") -> str:
    """A number the French way: `1 234,5`; an em dash when unknown."""
    if value is None:
        return "—"
    text = f"{value:,.{digits}f}".replace(",", "\u202f").replace(".", ",")
    return f"{text}\u00a0{unit}" if unit else text


def _percent(share: float | None) -> str:
    return "—" if share is None else fr(100 * share, 1, "%")


def _ranking_table(summary: dict[str, Any]) -> str:
    by_id = {c["id"]: c for c in summary["corridors"]}
    rows = []
    for entry in summary["ranking"]:
        c = by_id[entry["id"]]
        rows.append(
            f"<tr><td>{entry['rank']}</td><td class=t>{escape(c['number'] or '')} "
            f"{escape(c['name'])}</td><td class=t>{escape(c['department'] or '')}</td>"
            f"<td>{fr(c['length_km'], 0, 'km')}</td><td>{fr(c['trips_per_month'])}</td>"
            f"<td>{fr(c['mean_wait_minutes'], 1)}</td><td>{fr(c['p90_wait_minutes'], 1)}</td>"
            f"<td>{_percent(c['fallback_share'])}</td>"
            f"<td>{fr(c['cost_per_trip_eur'], 1, '€')}</td>"
            f"<td>{fr(c['co2_avoided_kg'] / 1000, 1)}</td></tr>"
        )
    head = (
        "<tr><th>Rang</th><th class=t>Corridor</th><th class=t>Département</th><th>Longueur</th>"
        "<th>Trajets / mois</th><th>Attente moyenne (min)</th><th>Attente p90 (min)</th>"
        "<th>Part taxi</th><th>Coût / trajet</th><th>CO₂ évité (t / an)</th></tr>"
    )
    return f"<table id=classement>{head}{''.join(rows)}</table>"


def _funding_table(summary: dict[str, Any]) -> str:
    head = (
        "<tr><th class=t>Corridor</th><th class=t>Financeur</th>"
        + "".join(f"<th>{PHASE_NAMES[p]}</th>" for p in PHASES)
        + "<th>Total</th></tr>"
    )
    rows = []
    for c in summary["corridors"]:
        for partner in (HDFM, DEPARTMENT, EPCI):
            cells = c["funding"][partner]
            label = partner if partner != EPCI else f"EPCI ({c['epcis_crossed']})"
            rows.append(
                f"<tr><td class=t>{escape(c['name']) if partner == HDFM else ''}</td>"
                f"<td class=t>{label}</td>"
                + "".join(f"<td>{fr(cells[p], 0, '€')}</td>" for p in PHASES)
                + f"<td>{fr(sum(cells.values()), 0, '€')}</td></tr>"
            )
    return f"<table id=financement>{head}{''.join(rows)}</table>"


def _assumptions(summary: dict[str, Any]) -> str:
    items = [
        f"Chaque jour simulé est un jour de service ; {summary['days']} jours par corridor, "
        f"ramenés à {summary['service_days_per_year']} jours de service par an "
        f"(graine aléatoire {summary['seed']}, résultats reproductibles).",
        "Les passagers arrivent au hasard (processus de Poisson) selon le nombre de demandes "
        "par heure, répartis également entre les arrêts de montée, et vont au dernier arrêt.",
        "Les conducteurs passent au hasard selon le trafic horaire du sens du trajet ; tous "
        "vont au bout du corridor ; une voiture prend un passager.",
        f"Part des conducteurs qui s'arrêtent devant un panneau allumé : "
        f"{fr(100 * SHARE_AT_ANCHOR)} % à {fr(ANCHOR_TRAFFIC)} véhicules/h, puis décroissante "
        f"comme le trafic à la puissance −{fr(SHARE_EXPONENT, 2)} (1 sur 14 à 190 véh./h, "
        "1 sur 44 à 760 véh./h) : calée sur les tests d'autostop (attente moyenne 6 min, "
        "moins de 15 min dans 90 % des cas) et sur Lane (attente moyenne inférieure à 4 min).",
        "Les règles de la ligne (horaires, garantie de départ, nombre de demandes par arrêt) "
        "sont celles du cœur du dispatcher utilisé en exploitation.",
        "L'attente d'un passager parti en taxi compte jusqu'à l'appel du taxi (la garantie).",
        "Coût par trajet : investissement et exploitation de l'expérimentation (taxis compris) "
        "divisés par ses trajets covoiturés ; les études n'y sont pas comptées.",
        "Investissement et exploitation par défaut : chiffres du SCoT Sambre-Avesnois (ligne "
        "courte : 73 k€ puis 141, 128 et 119 k€ par an ; ligne longue, plus de 25 km : 135 k€ "
        "puis 309, 294 et 275 k€).",
        "Financement : études phase 1 à 100 % HdFM ; phase 2 50 % HdFM, 50 % Département ; "
        "déploiement 50 % Département, 50 % EPCI ; exploitation : Département 30 % (un EPCI), "
        "40 % (deux), 50 % (trois ou plus), le reste aux EPCI traversés à parts égales.",
        "CO₂ évité : chaque trajet covoituré remplace un trajet seul en voiture de la même "
        "longueur (facteur par km du scénario, 0,2 kg par défaut).",
        "Trafics : comptages publiés quand la source est citée, sinon hypothèses par classe de "
        "route (80 à 82 % du trafic journalier entre 7 h et 19 h, pointes 8-9 h et 16-18 h).",
    ]
    return "<ul id=hypotheses>" + "".join(f"<li>{escape(item)}</li>" for item in items) + "</ul>"


def render_report(summary: dict[str, Any], runs: list[CorridorRun]) -> str:
    """The whole HTML page: key figures, ranking, plots, funding, assumptions."""
    corridors = summary["corridors"]
    best = summary["ranking"][0] if summary["ranking"] else None
    trips = sum(c["trips_per_month"] for c in corridors)
    guarantee = corridors[0]["wait_guarantee_minutes"] if corridors else 15.0
    title = summary.get("title") or "Étude de covoiturabilité"
    plots = [
        ("Attente selon l'heure", report_plots.wait_by_hour(runs)),
        ("Trajets par mois", report_plots.trips_per_month(corridors)),
        ("Taxi et trafic", report_plots.fallback_against_traffic(corridors, guarantee)),
        ("Coût par trajet", report_plots.cost_per_trip(corridors)),
    ]
    figures = "".join(f"<figure aria-label='{escape(name)}'>{svg}</figure>" for name, svg in plots)
    best_text = f"<div><b>{escape(best['name'])}</b>corridor le mieux classé</div>" if best else ""
    return f"""<!DOCTYPE html>
<html lang="fr"><head><meta charset="utf-8"><title>{escape(title)}</title>
<style>{STYLE}</style></head><body>
<h1>{escape(title)}</h1>
<p class=small>{escape(summary.get("region") or "Étude")} — lignes de covoiturage dynamique :
simulation de {summary["days"]} jours de service par corridor avec le cœur du dispatcher.</p>
<h2>En bref</h2>
<div class=key><div><b>{len(corridors)}</b>corridors étudiés</div>
<div><b>{fr(trips)}</b>trajets covoiturés par mois (ensemble)</div>{best_text}</div>
<h2>Classement régional</h2>
<p>Les corridors sont classés du coût public par trajet le plus bas au plus haut.
L'attente p90 est celle que 9 passagers sur 10 ne dépassent pas ; la part taxi est celle des
demandes servies par la garantie de départ.</p>
{_ranking_table(summary)}
<h2>Graphiques</h2>{figures}
<h2>Qui finance quoi</h2>
<p>Montants en euros sur la durée de l'expérimentation, par financeur et par phase.</p>
{_funding_table(summary)}
<h2>Hypothèses</h2>{_assumptions(summary)}
<p class=small>Produit par <code>carpool-line plan</code>. Ce sont des ordres de grandeur
pour comparer des corridors entre eux, non des prévisions de fréquentation.</p>
</body></html>
"""
