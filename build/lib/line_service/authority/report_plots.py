"""Adapter: the monthly report's plots (matplotlib without pyplot) as base64 PNG, in French."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

from matplotlib.figure import Figure

if TYPE_CHECKING:
    from line_service.authority.report import MonthFigures

Plots = dict[str, str]
OUTCOMES = (
    ("car", "conducteur", "#2a9d8f"),
    ("fallback", "taxi (garantie)", "#e9c46a"),
    ("expired", "expirée", "#e76f51"),
    ("cancelled", "annulée", "#8d99ae"),
)


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _per_day(figures: MonthFigures) -> Figure:
    figure = Figure(figsize=(9, 3.2))
    axes = figure.add_subplot()
    days = [day.day for day in figures.days]
    axes.bar([d - 0.2 for d in days], figures.requests_per_day, width=0.4, label="demandes")
    axes.bar([d + 0.2 for d in days], figures.trips_per_day, width=0.4, label="trajets validés")
    axes.set_xlabel("jour du mois")
    axes.set_ylabel("nombre")
    axes.legend()
    return figure


def _waits(figures: MonthFigures) -> Figure:
    figure = Figure(figsize=(9, 3.2))
    axes = figure.add_subplot()
    if figures.waits_minutes:
        axes.hist(figures.waits_minutes, bins=range(0, int(max(figures.waits_minutes)) + 2))
    for value, label, style in (
        (figures.wait_median_minutes, "médiane", "--"),
        (figures.wait_p90_minutes, "90e centile", ":"),
    ):
        if value is not None:
            axes.axvline(value, color="black", linestyle=style, label=f"{label} : {value:.1f} min")
    axes.set_xlabel("attente avant prise en charge par un conducteur (min)")
    axes.set_ylabel("demandes")
    if figures.waits_minutes:
        axes.legend()
    return figure


def _stacked(axes: object, labels: list[str], counts: list[dict[str, int]]) -> None:
    from matplotlib.axes import Axes

    assert isinstance(axes, Axes)
    bottom = [0] * len(labels)
    for key, label, colour in OUTCOMES:
        values = [count.get(key, 0) for count in counts]
        axes.bar(labels, values, bottom=bottom, label=label, color=colour)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    axes.legend(fontsize="small")


def _by_stop(figures: MonthFigures) -> Figure:
    figure = Figure(figsize=(9, 3.6))
    axes = figure.add_subplot()
    labels = sorted(figures.by_stop)
    _stacked(axes, labels, [dict(figures.by_stop[name]) for name in labels])
    axes.set_ylabel("demandes")
    axes.set_xlabel("arrêt de départ")
    return figure


def _by_hour(figures: MonthFigures) -> Figure:
    figure = Figure(figsize=(9, 3.2))
    axes = figure.add_subplot()
    hours = sorted(figures.by_hour)
    _stacked(axes, [f"{h}h" for h in hours], [dict(figures.by_hour[h]) for h in hours])
    axes.set_ylabel("demandes")
    axes.set_xlabel("heure de la demande (heure locale)")
    return figure


def _od_matrix(figures: MonthFigures) -> Figure:
    figure = Figure(figsize=(7, 5))
    axes = figure.add_subplot()
    origins = sorted({o for o, _ in figures.od_matrix})
    destinations = sorted({d for _, d in figures.od_matrix})
    grid = [[figures.od_matrix.get((o, d), 0) for d in destinations] for o in origins]
    if grid:
        image = axes.imshow(grid, cmap="Blues")
        figure.colorbar(image, ax=axes, label="trajets")
        for i, row in enumerate(grid):
            for j, value in enumerate(row):
                axes.text(j, i, str(value), ha="center", va="center", fontsize="small")
    axes.set_xticks(range(len(destinations)), destinations, rotation=45, ha="right")
    axes.set_yticks(range(len(origins)), origins)
    axes.set_xlabel("destination")
    axes.set_ylabel("origine")
    return figure


def render_plots(figures: MonthFigures) -> Plots:
    """Title → base64 PNG of every plot of the report."""
    return {
        "Demandes et trajets validés par jour": _png(_per_day(figures)),
        "Distribution des temps d'attente": _png(_waits(figures)),
        "Issue des demandes par arrêt (conducteur ou taxi)": _png(_by_stop(figures)),
        "Issue des demandes par heure": _png(_by_hour(figures)),
        "Matrice origine–destination des trajets": _png(_od_matrix(figures)),
    }
