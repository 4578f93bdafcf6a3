"""The simulation against closed forms, monotonicity, seeds and the published figures."""

from __future__ import annotations

import math

import pytest

from line_service.planning.rates import default_stop_share, hourly_rates
from line_service.planning.simulation import FALLBACK, PICKED_UP, simulate_corridor
from line_service.planning.summary import corridor_summary
from tests.planning.kit import PEAKS, START, corridor, corridor_data, scenario


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def test_mean_wait_matches_one_over_the_stopping_rate() -> None:
    # 600 vehicles/h × 5 % = 0.5 stopping driver a minute; rare riders never queue.
    # Waits are capped by the 15 min guarantee: E[min(X, T)] = (1 - exp(-λT)) / λ ≈ 2 min.
    run = simulate_corridor(corridor(600, 0.1, share=0.05), days=800, seed=7, start=START)
    rate = 600 * 0.05 / 60
    expected = (1 - math.exp(-rate * 15)) / rate
    assert len(run.waits) > 1500
    assert _mean(run.waits) == pytest.approx(expected, rel=0.10)  # ~5 standard errors


def test_fallback_share_is_the_chance_nobody_stops_within_the_guarantee() -> None:
    # 60 vehicles/h × 5 % = 3 stopping drivers an hour: P(no stop in 15 min) = exp(-0.75).
    run = simulate_corridor(corridor(60, 0.1, share=0.05), days=800, seed=11, start=START)
    share = run.outcomes.count(FALLBACK) / len(run.outcomes)
    assert share == pytest.approx(math.exp(-3 * 0.25), abs=0.04)  # ~3.5 standard errors
    rate = 3 / 60
    assert _mean(run.waits) == pytest.approx((1 - math.exp(-rate * 15)) / rate, rel=0.08)


def test_more_traffic_never_means_longer_waits() -> None:
    means = []
    for traffic in (25, 100, 400, 1600):
        run = simulate_corridor(corridor(traffic, 3, hours=PEAKS), days=100, seed=5, start=START)
        means.append(_mean(run.waits))
    assert means == sorted(means, reverse=True), means


def test_the_default_share_falls_with_traffic_but_stopping_drivers_rise() -> None:
    levels = [5, 20, 100, 190, 760, 3000]
    shares = [default_stop_share(q) for q in levels]
    assert shares == sorted(shares, reverse=True)
    stopping = [q * s for q, s in zip(levels, shares, strict=True)]
    assert stopping == sorted(stopping)
    # Published anchors: 1 in 2 on a small local road, 1 in ~15 then ~50 on a busier one.
    assert 1 / default_stop_share(20) == pytest.approx(2, rel=0.05)
    assert 10 <= 1 / default_stop_share(190) <= 20
    assert 35 <= 1 / default_stop_share(760) <= 55
    # Hitchhiking tests: mean wait 6 min on a small road.
    assert 60 / (20 * default_stop_share(20)) == pytest.approx(6, rel=0.05)


def test_same_seed_same_result_other_seed_other_result() -> None:
    spec = corridor(300, 4, hours=PEAKS)
    first = simulate_corridor(spec, days=20, seed=3, start=START)
    again = simulate_corridor(spec, days=20, seed=3, start=START)
    other = simulate_corridor(spec, days=20, seed=4, start=START)
    assert first == again
    assert first.waits != other.waits


def test_a_lane_like_line_gives_published_orders_of_magnitude() -> None:
    # Busy road (1,500 vehicles/h at peak), ~100 trips a day both ways, 15 min guarantee.
    peak = {7: 1500.0, 8: 1500.0, 9: 900.0, 16: 1100.0, 17: 1500.0, 18: 1500.0, 19: 900.0}
    riders = {7: 9.0, 8: 9.0, 9: 3.0, 16: 5.0, 17: 9.0, 18: 9.0, 19: 3.0}
    data = corridor_data(peak, riders, hours=PEAKS)
    data["reverse"] = {"traffic_per_hour": peak, "riders_per_hour": riders}
    spec = scenario([data]).corridors[0]
    run = simulate_corridor(spec, days=40, seed=9, start=START)
    summary = corridor_summary(spec, run, 250)
    assert summary["mean_wait_minutes"] < 6  # Lane: under 4 min; hitchhiking tests: 6 min
    assert 0.005 <= summary["fallback_share"] <= 0.25  # Lane: 25 % at launch, 3 % later
    assert summary["trips_per_day"] > 80
    assert run.outcomes.count(PICKED_UP) > 0.75 * len(run.outcomes)


def test_hourly_rates_expose_the_model_for_the_demo() -> None:
    spec = corridor({8: 760.0}, {8: 4.0}, reverse={"traffic_per_hour": {8: 190.0}})
    rates = hourly_rates(spec, 8)
    assert rates.drivers_per_hour == 760
    assert rates.riders_per_stop_per_hour == 4  # one boarding stop
    assert rates.stopping_drivers_per_hour == pytest.approx(760 * default_stop_share(760))
    assert hourly_rates(spec, 8, reverse=True).drivers_per_hour == 190
    assert hourly_rates(spec, 3).stopping_drivers_per_hour == 0
    with pytest.raises(ValueError, match="0-23"):
        hourly_rates(spec, 24)
