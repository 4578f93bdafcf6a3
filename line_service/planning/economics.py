"""Pure: a corridor's money — cost per trip, each partner's share per phase, CO2 avoided.

Funding key (Hauts-de-France Mobilités programme):
- study phase 1 (opportunity): 100 % HdFM;
- study phase 2 (feasibility): 50 % HdFM, 50 % Département;
- deployment (furniture, signs, terminals = the investment): 50 % Département, 50 % the EPCIs;
- operation (the experiment's years, taxi fallbacks included): the Département pays 30 % when
  the line stays in one EPCI, 40 % when it crosses two, 50 % from three on (a line crossing
  more EPCIs serves the department more than one intercommunality); the EPCIs pay the rest,
  shared equally between them.
"""

from __future__ import annotations

from dataclasses import dataclass

from line_service.planning.scenario import CorridorSpec

HDFM, DEPARTMENT, EPCI = "HdFM", "Département", "EPCI"
PHASES = ("etude_phase_1", "etude_phase_2", "deploiement", "exploitation")


@dataclass(frozen=True, slots=True)
class Money:
    """Yearly activity and the resulting costs of one corridor over its experiment."""

    years: int
    trips_per_year: float
    fallbacks_per_year: float
    investment_eur: float
    operation_eur: float  # every year of the experiment, taxis included
    cost_per_trip_eur: float | None  # deployment + operation over the experiment's trips


def department_operation_share(epcis_crossed: int) -> float:
    """The Département's share of operation: 30 %, 40 %, then 50 % from three EPCIs on."""
    return {1: 0.3, 2: 0.4}.get(epcis_crossed, 0.5)


def money(corridor: CorridorSpec, trips_per_year: float, fallbacks_per_year: float) -> Money:
    """Costs over the experiment (as many years as operation figures), studies left out."""
    years = len(corridor.operation_eur)
    taxis = fallbacks_per_year * corridor.costs.taxi_eur_per_fallback * years
    operation = sum(corridor.operation_eur) + taxis
    trips = trips_per_year * years
    spent = corridor.investment_eur + operation
    return Money(
        years=years,
        trips_per_year=trips_per_year,
        fallbacks_per_year=fallbacks_per_year,
        investment_eur=corridor.investment_eur,
        operation_eur=operation,
        cost_per_trip_eur=spent / trips if trips > 0 else None,
    )


def funding(corridor: CorridorSpec, spent: Money) -> dict[str, dict[str, float]]:
    """Euros per partner (HdFM, Département, EPCI) per phase; every phase sums to its cost."""
    phase1, phase2 = corridor.costs.study_phase1_eur, corridor.costs.study_phase2_eur
    department = department_operation_share(corridor.epcis_crossed)
    shares = {
        "etude_phase_1": (phase1, {HDFM: 1.0}),
        "etude_phase_2": (phase2, {HDFM: 0.5, DEPARTMENT: 0.5}),
        "deploiement": (spent.investment_eur, {DEPARTMENT: 0.5, EPCI: 0.5}),
        "exploitation": (spent.operation_eur, {DEPARTMENT: department, EPCI: 1 - department}),
    }
    table = {partner: dict.fromkeys(PHASES, 0.0) for partner in (HDFM, DEPARTMENT, EPCI)}
    for phase, (cost, key) in shares.items():
        partners = list(key)
        paid = 0.0
        for partner in partners[:-1]:
            table[partner][phase] = round(cost * key[partner], 2)
            paid += table[partner][phase]
        table[partners[-1]][phase] = round(cost - paid, 2)  # the last takes the rounding cents
    return table


def phase_costs(corridor: CorridorSpec, spent: Money) -> dict[str, float]:
    """What each phase costs in all, in euros."""
    return {
        "etude_phase_1": corridor.costs.study_phase1_eur,
        "etude_phase_2": corridor.costs.study_phase2_eur,
        "deploiement": spent.investment_eur,
        "exploitation": round(spent.operation_eur, 2),
    }


def co2_avoided_kg(corridor: CorridorSpec, carpool_km_per_year: float) -> float:
    """CO2 of the solo car trips the carpool trips replace, per year (every rider would drive)."""
    return carpool_km_per_year * corridor.co2_kg_per_km
