"""Funding key: every phase's shares sum to its cost; the Département's operation share."""

from __future__ import annotations

import pytest

from line_service.planning.economics import (
    DEPARTMENT,
    EPCI,
    HDFM,
    PHASES,
    department_operation_share,
    funding,
    money,
    phase_costs,
)
from tests.planning.kit import corridor


@pytest.mark.parametrize(("epcis", "department"), [(1, 0.3), (2, 0.4), (3, 0.5), (4, 0.5)])
def test_funding_sums_to_each_phase_cost(epcis: int, department: float) -> None:
    spec = corridor(300, 2, epci_count=epcis)
    spent = money(spec, trips_per_year=12_345.0, fallbacks_per_year=321.0)
    table = funding(spec, spent)
    costs = phase_costs(spec, spent)
    for phase in PHASES:
        assert sum(table[p][phase] for p in (HDFM, DEPARTMENT, EPCI)) == pytest.approx(
            costs[phase], abs=0.005
        )
    assert table[HDFM]["etude_phase_1"] == costs["etude_phase_1"]
    assert table[DEPARTMENT]["deploiement"] == pytest.approx(costs["deploiement"] / 2)
    assert department_operation_share(epcis) == department
    assert table[DEPARTMENT]["exploitation"] == pytest.approx(
        department * costs["exploitation"], abs=0.01
    )


def test_cost_per_trip_uses_the_scot_defaults_and_taxis() -> None:
    short = corridor(300, 2)  # 12 km: the short SCoT line
    spent = money(short, trips_per_year=10_000.0, fallbacks_per_year=100.0)
    expected = (73_000 + 141_000 + 128_000 + 119_000 + 3 * 100 * 35) / 30_000
    assert spent.cost_per_trip_eur == pytest.approx(expected)
    assert money(short, 0.0, 0.0).cost_per_trip_eur is None
