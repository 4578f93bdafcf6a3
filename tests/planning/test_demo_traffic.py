"""`make run`'s simulated traffic follows the study's model of the line's corridor."""

from __future__ import annotations

from pathlib import Path

import pytest

from line_service.demo import modelled_traffic
from line_service.network.lines_file import load_network
from line_service.planning.rates import demo_traffic
from line_service.planning.scenario import load_scenario
from stop_devices.sim.simulator import TrafficSettings

REPO = Path(__file__).resolve().parents[2]
CORRIDORS = REPO / "config" / "corridors.yaml"


def test_the_demo_line_gets_its_corridor_s_riders_and_stopping_drivers() -> None:
    network = load_network(REPO / "config" / "lines.yaml")
    traffic = modelled_traffic(CORRIDORS, network)
    [corridor] = [c for c in load_scenario(CORRIDORS).corridors if c.id == "calais-dunkerque"]
    model = demo_traffic(corridor)

    # Riders: the model's peak-to-quiet shape, never fewer than a demo needs to show activity.
    assert traffic.passengers_per_hour == max(
        TrafficSettings().passengers_per_hour, model.riders_per_hour_off_peak
    )
    assert traffic.peak_factor == pytest.approx(
        model.riders_per_hour_peak / model.riders_per_hour_off_peak
    )
    # Cars pass every car_interval and stop with stop_probability: the mean wait for a stopping
    # driver is the model's.
    hours_between_stops = traffic.car_interval.total_seconds() / 3600 / traffic.stop_probability
    assert hours_between_stops == pytest.approx(1 / model.stopping_drivers_per_hour)
    assert 1 < 60 * hours_between_stops < 15, "a plausible mean wait on this corridor"


def test_without_a_corridors_file_the_demo_keeps_its_defaults(tmp_path: Path) -> None:
    network = load_network(REPO / "config" / "lines.yaml")
    traffic = modelled_traffic(tmp_path / "absent.yaml", network)
    assert traffic == TrafficSettings(ignore_hours=True)
