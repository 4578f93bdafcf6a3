"""Adapter: the study's plots, drawn with matplotlib (Agg) as inline SVG text."""

from __future__ import annotations

import io
import math
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from line_service.planning.rates import default_stop_share
from line_service.planning.simulation import CorridorRun

BLUE, ORANGE, GREY = "#1f5fa8", "#d9822b", "#888888"
# Lane (Bourgoin–Lyon): about 500 trips a week for about 200 k€ a year.
LANE_COST_PER_TRIP = 200_000 / (500 * 52)


def _svg(figure: Figure) -> str:
    FigureCanvasAgg(figure)
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", bbox_inches="tight")
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _figure(height: float = 4.0) -> Figure:
    figure = Figure(figsize=(9.0, height), dpi=100)
    figure.set_layout_engine("constrained")
    return figure


def wait_by_hour(runs: list[CorridorRun]) -> str:
    """Box plot of waits (minutes) by the hour the rider asked, every corridor together."""
    hours = sorted({hour for run in runs for hour in run.hours})
    data = [
        [w for run in runs for w, h in zip(run.waits, run.hours, strict=True) if h == hour]
        for hour in hours
    ]
    figure = _figure()
    axes = figure.add_subplot()
    if hours:
        axes.boxplot(
            data,
            tick_labels=[f"{h} h" for h in hours],
            whis=(10, 90),
            sym="",
            patch_artist=True,
            boxprops={"facecolor": "#cfe0f3"},
            medianprops={"color": BLUE},
        )
    axes.set_ylabel("attente (min)")
    axes.set_xlabel("heure de la demande (moustaches : 10 % et 90 % des attentes)")
    axes.set_title("Attente selon l'heure, tous corridors")
    axes.grid(axis="y", alpha=0.3)
    return _svg(figure)


def trips_per_month(corridors: list[dict[str, Any]]) -> str:
    """Horizontal bars: carpool trips a month per corridor, most first."""
    ordered = sorted(corridors, key=lambda c: c["trips_per_month"])
    figure = _figure(0.32 * len(ordered) + 1.2)
    axes = figure.add_subplot()
    axes.barh([c["name"] for c in ordered], [c["trips_per_month"] for c in ordered], color=BLUE)
    axes.set_xlabel("trajets covoiturés par mois")
    axes.set_title("Fréquentation attendue")
    axes.grid(axis="x", alpha=0.3)
    return _svg(figure)


def fallback_against_traffic(corridors: list[dict[str, Any]], guarantee_minutes: float) -> str:
    """Scatter of each corridor-hour's taxi share against its traffic, with the model's curve."""
    figure = _figure()
    axes = figure.add_subplot()
    xs: list[float] = []
    ys: list[float] = []
    sizes: list[float] = []
    for corridor in corridors:
        for row in corridor["by_hour"].values():
            if row["traffic_per_hour"] and row["fallback_share"] is not None:
                xs.append(row["traffic_per_hour"])
                ys.append(100 * row["fallback_share"])
                sizes.append(4 + math.sqrt(row["requests"]))
    axes.scatter(xs, ys, s=sizes, color=ORANGE, alpha=0.5, label="corridor × heure (simulé)")
    top = max([*xs, 100.0])
    grid = [10 * (top / 10) ** (i / 200) for i in range(201)]  # even on the log axis
    curve = [100 * math.exp(-q * default_stop_share(q) * guarantee_minutes / 60) for q in grid]
    axes.plot(
        grid,
        curve,
        color=BLUE,
        label=f"modèle : aucun arrêt en {guarantee_minutes:g} min (attente seule)",
    )
    axes.set_xscale("log")
    axes.set_xlabel("véhicules par heure dans le sens du trajet (échelle log)")
    axes.set_ylabel("part des demandes finies en taxi (%)")
    axes.set_title("Recours au taxi selon le trafic")
    axes.legend(loc="upper right")
    axes.grid(alpha=0.3)
    return _svg(figure)


def cost_per_trip(corridors: list[dict[str, Any]]) -> str:
    """Horizontal bars: cost per carpool trip, cheapest at the top, Lane's figure for scale."""
    known = [c for c in corridors if c["cost_per_trip_eur"] is not None]
    ordered = sorted(known, key=lambda c: -c["cost_per_trip_eur"])
    figure = _figure(0.32 * len(ordered) + 1.2)
    axes = figure.add_subplot()
    axes.barh([c["name"] for c in ordered], [c["cost_per_trip_eur"] for c in ordered], color=BLUE)
    axes.axvline(
        LANE_COST_PER_TRIP,
        color=ORANGE,
        linestyle="--",
        label=f"Lane : ~{LANE_COST_PER_TRIP:.0f} € par trajet",
    )
    axes.set_xscale("log")
    axes.set_xlabel("coût public par trajet covoituré (€, échelle log)")
    axes.set_title("Coût par trajet sur la durée de l'expérimentation")
    axes.legend(loc="lower right")
    axes.grid(axis="x", alpha=0.3)
    return _svg(figure)
