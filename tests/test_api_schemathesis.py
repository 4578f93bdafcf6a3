"""Fuzz every operation of the running service's OpenAPI with schemathesis: never a 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case
from schemathesis.core.result import Ok

from tests.support.brokers import Mosquitto
from tests.support.service import ServiceProcess, serving

OPERATOR = "fuzz-operator-token"
EXAMPLES_PER_OPERATION = 12


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[ServiceProcess]:
    with serving(
        mosquitto.url, tmp_path, extra_env={"CARPOOL_API_TOKENS": f"{OPERATOR}:operator"}
    ) as process:
        yield process


def test_no_operation_answers_5xx_to_generated_input(service: ServiceProcess) -> None:
    schema = schemathesis.openapi.from_url(f"{service.base_url}/openapi.json")
    failures: list[str] = []
    statuses: list[int] = []
    checked = 0
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @given(operation.as_strategy())
        def call(case: Case[Any]) -> None:
            headers = {"Authorization": f"Bearer {OPERATOR}"}
            response = case.call(base_url=service.base_url, headers=headers, timeout=10)
            statuses.append(response.status_code)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")

        call()
        checked += 1
    assert checked >= 15, "the schema lost operations"
    assert len(statuses) >= 3 * checked, sorted(set(statuses))
    assert 200 in statuses
    assert failures == [], failures
    assert service.ready()
