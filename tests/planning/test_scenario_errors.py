"""Scenario and corridors-file validation: every problem with its path, never a traceback."""

from __future__ import annotations

from pathlib import Path

from line_service.planning.corridors_check import check_corridors

REPO = Path(__file__).resolve().parents[2]

BROKEN = """
days: 10
corridors:
  - id: ok-one
    name: Fine
    department: Nord
    traffic_source: test
    service_hours: {mon-fri: ["07:00-09:00"]}
    stops:
      - {id: a, name: A, km: 0, lat: 50.0, lon: 2.0}
      - {id: b, name: B, km: 5, lat: 50.1, lon: 2.1}
    traffic_per_hour: {7: 100}
    riders_per_hour: {7: 1}
  - id: broken
    name: Broken
    stops:
      - {id: a, name: A, km: 0, lat: 50.0, lon: 2.0}
      - {id: b, name: B, km: 7, lat: 95.0, lon: 2.1}
      - {id: c, name: C, km: 3}
    traffic_per_hour: {7: 100, 24: 5}
    colour: red
  - id: bad-hours
    name: Bad hours
    service_hours: {mon-fry: ["07:00-09:00"]}
    stops:
      - {id: a, name: A, km: 0}
      - {id: b, name: B, km: 2}
      - {id: c, name: C, km: 1}
    traffic_per_hour: {7: 100}
"""


def test_the_shipped_corridors_file_is_valid() -> None:
    assert check_corridors(REPO / "config" / "corridors.yaml") == []


def test_problems_name_their_paths(tmp_path: Path) -> None:
    path = tmp_path / "corridors.yaml"
    path.write_text(BROKEN, encoding="utf-8")
    problems = check_corridors(path)
    joined = "\n".join(problems)
    assert "corridors[1].stops[1].lat: Input should be less than or equal to 90" in joined
    assert "corridors[1].traffic_per_hour[24] (key)" in joined
    assert "corridors[1].colour: Extra inputs are not permitted" in joined
    assert "corridors[2].service_hours: 'mon-fry'" in joined
    assert "corridors[2].stops[2].km: must be greater than the previous stop's km" in joined
    assert not any(p.startswith("corridors[0]") for p in problems)


def test_model_rules_beyond_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "corridors.yaml"
    path.write_text(BROKEN.split("  - id: broken")[0].replace("lat: 50.1, lon: 2.1", ""))
    assert check_corridors(path) == ["corridors[0].stops[1]: lat and lon are required here"]


def test_broken_yaml_is_a_clear_message(tmp_path: Path) -> None:
    path = tmp_path / "corridors.yaml"
    path.write_text("corridors:\n  - id: [unclosed\n", encoding="utf-8")
    (problem,) = check_corridors(path)
    assert problem.startswith("not valid YAML at line 3")
    assert check_corridors(tmp_path / "missing.yaml")[0].startswith("cannot read")
    path.write_text("- just\n- a list\n", encoding="utf-8")
    assert check_corridors(path) == ["(top): expected a mapping with days, seed and corridors"]
