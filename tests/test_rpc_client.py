"""RPC client: posts journeys to a local stand-in of the v3.4 registry (schema, terms, cancel,
status, update, short-lived tokens)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from line_service.authority.rpc_client import AccessTokens, Outcome, RpcClient, TermsViolation
from line_service.cli import app
from tests.support.brokers import free_port
from tests.support.journeys import journey
from tests.support.rpc_standin import ACCESS_KEY, DAILY_LIMIT, SECRET_KEY, TOKEN, Registry

EXAMPLE = journey()


@pytest.fixture
def registry() -> Iterator[Registry]:
    stand_in = Registry()
    yield stand_in
    stand_in.close()


def client(url: str, token: str = TOKEN) -> RpcClient:
    return RpcClient(url, token, httpx.AsyncClient(timeout=5), max_attempts=4, first_delay=0.01)


async def test_a_journey_is_created_once_and_sending_it_again_is_harmless(
    registry: Registry,
) -> None:
    rpc = client(registry.url)
    first = await rpc.send(EXAMPLE)
    again = await rpc.send(EXAMPLE)
    assert (first.outcome, first.status) == (Outcome.CREATED, 201)
    assert (again.outcome, again.status) == (Outcome.ALREADY_THERE, 409)
    assert list(registry.journeys) == [EXAMPLE["operator_journey_id"]]


async def test_an_unavailable_registry_is_retried(registry: Registry) -> None:
    registry.failures = 2
    result = await client(registry.url).send(EXAMPLE)
    assert result.outcome is Outcome.CREATED
    assert registry.hits == 3


async def test_an_invalid_journey_is_not_sent_and_its_field_is_named(registry: Registry) -> None:
    broken = journey()
    broken["driver"]["identity"]["phone_trunc"] = "0612"
    result = await client(registry.url).send(broken)
    assert result.outcome is Outcome.INVALID
    assert result.detail.startswith("driver.identity.phone_trunc: '0612' does not match")
    assert registry.hits == 0
    assert registry.journeys == {}


async def test_a_trip_of_900_m_is_not_sent(registry: Registry) -> None:
    result = await client(registry.url).send(journey(distance=900))
    assert result.outcome is Outcome.BREAKS_TERMS
    assert result.terms == (TermsViolation("distance_too_short"),)
    assert "900 m is under 1000 m" in result.detail
    assert registry.hits == 0


async def test_a_422_carries_the_broken_terms_into_the_result(registry: Registry) -> None:
    rpc = client(registry.url)
    for n in range(DAILY_LIMIT):
        run = journey(operator_journey_id=f"{n:032x}", operator_trip_id=f"run{n}")
        assert (await rpc.send(run)).outcome is Outcome.CREATED
    fifth = await rpc.send(journey(operator_journey_id="f" * 32, operator_trip_id="run5"))
    assert (fifth.outcome, fifth.status) == (Outcome.REJECTED, 422)
    expected = {"driver": 5, "passenger": 5, "limit": 4}
    assert fifth.terms == (TermsViolation("too_many_trips_by_day", expected),)
    assert str(fifth.terms[0]) == "too_many_trips_by_day (driver 5, passenger 5, limit 4)"
    assert len(registry.journeys) == DAILY_LIMIT


async def test_a_wrong_token_is_rejected(registry: Registry) -> None:
    result = await client(registry.url, token="nope").send(EXAMPLE)
    assert (result.outcome, result.status) == (Outcome.REJECTED, 401)


async def test_a_registered_journey_can_be_cancelled(registry: Registry) -> None:
    rpc = client(registry.url)
    await rpc.send(EXAMPLE)
    journey_id = EXAMPLE["operator_journey_id"]
    cancelled = await rpc.cancel(journey_id, "fraud_suspected", "same pair twice")
    unknown = await rpc.cancel("0123456789abcdef", "fraud_suspected")
    assert cancelled.outcome is Outcome.CANCELLED
    assert registry.cancelled[journey_id] == {
        "code": "fraud_suspected",
        "message": "same pair twice",
    }
    assert unknown.outcome is Outcome.NOT_FOUND


async def test_a_registry_out_of_reach_is_reported_not_raised() -> None:
    result = await client(f"http://127.0.0.1:{free_port()}").send(EXAMPLE)
    assert result.outcome is Outcome.UNREACHABLE


def test_the_command_sends_a_file_and_says_what_happened(
    registry: Registry, tmp_path: Path
) -> None:
    second = journey(operator_journey_id="5d0d7034379b4fc1a8321f13e936e0af")
    file = tmp_path / "rpc.json"
    file.write_text(json.dumps([EXAMPLE, second]), encoding="utf-8")
    result = CliRunner().invoke(
        app, ["send-rpc", str(file), "--url", registry.url], env={"CARPOOL_RPC_TOKEN": TOKEN}
    )
    assert result.exit_code == 0, result.output
    assert "created: 2" in result.output
    assert len(registry.journeys) == 2


def test_the_command_signs_in_with_the_registrys_key_pair(
    registry: Registry, tmp_path: Path
) -> None:
    file = tmp_path / "rpc.json"
    file.write_text(json.dumps([EXAMPLE]), encoding="utf-8")
    env = {"CARPOOL_RPC_ACCESS_KEY": ACCESS_KEY, "CARPOOL_RPC_SECRET_KEY": SECRET_KEY}
    result = CliRunner().invoke(app, ["send-rpc", str(file), "--url", registry.url], env=env)
    assert result.exit_code == 0, result.output
    assert registry.calls[0] == ("POST", "/v3.4/auth/access_token")
    assert list(registry.journeys) == [EXAMPLE["operator_journey_id"]]


def test_the_command_reports_what_was_not_sent_and_fails(
    registry: Registry, tmp_path: Path
) -> None:
    bad = journey(operator_journey_id="1" * 32)
    bad["passenger"]["seats"] = 9
    short = journey(operator_journey_id="2" * 32, distance=900)
    file = tmp_path / "rpc.json"
    file.write_text(json.dumps([bad, short, EXAMPLE]), encoding="utf-8")
    result = CliRunner().invoke(
        app, ["send-rpc", str(file), "--url", registry.url], env={"CARPOOL_RPC_TOKEN": TOKEN}
    )
    assert result.exit_code == 1, result.output
    assert f"journey {'1' * 32}: passenger.seats: 9 is greater than the maximum of 8" in (
        result.output
    )
    assert f"journey {'2' * 32}: distance: 900 m is under 1000 m" in result.output
    assert "created: 1" in result.output
    assert list(registry.journeys) == [EXAMPLE["operator_journey_id"]]


async def test_tokens_come_from_the_access_keys_and_are_renewed_before_they_end_and_on_401(
    registry: Registry,
) -> None:
    now = [datetime(2026, 3, 3, 16, 0, tzinfo=UTC)]
    tokens = AccessTokens(ACCESS_KEY, SECRET_KEY, lambda: now[0])
    rpc = RpcClient(registry.url, tokens, httpx.AsyncClient(timeout=5), max_attempts=1)
    assert (await rpc.send(EXAMPLE)).outcome is Outcome.CREATED
    assert (await rpc.status(EXAMPLE["operator_journey_id"])).body["status"] == "pending"
    assert tokens.issued == 1  # one token for both calls
    now[0] += timedelta(minutes=4, seconds=45)  # under 30 s left of its 5 minutes
    await rpc.status(EXAMPLE["operator_journey_id"])
    assert tokens.issued == 2
    registry.expire_tokens()  # the registry ends it early: 401, renewed, asked again
    found = await rpc.status(EXAMPLE["operator_journey_id"])
    assert (found.outcome, tokens.issued) == (Outcome.FOUND, 3)
    token_calls = registry.calls.count(("POST", "/v3.4/auth/access_token"))
    assert token_calls == 3


async def test_wrong_access_keys_are_a_rejection_not_a_loop(registry: Registry) -> None:
    tokens = AccessTokens(ACCESS_KEY, "wrong")
    rpc = RpcClient(registry.url, tokens, httpx.AsyncClient(timeout=5), max_attempts=1)
    result = await rpc.send(EXAMPLE)
    assert (result.outcome, result.status) == (Outcome.REJECTED, 401)
    assert registry.journeys == {}


async def test_a_patch_body_is_checked_against_the_schema_by_the_stand_in(
    registry: Registry,
) -> None:
    rpc = client(registry.url)
    await rpc.send(EXAMPLE)
    journey_id = EXAMPLE["operator_journey_id"]
    refused = await rpc.patch(journey(distance=22000))  # not in validation_error
    registry.set_status(journey_id, "validation_error")
    bad = await rpc.patch(journey(distance=-1))
    fixed = await rpc.patch(journey(distance=22000))
    assert (refused.outcome, refused.status) == (Outcome.REJECTED, 409)
    assert (bad.outcome, bad.status) == (Outcome.REJECTED, 400)
    assert fixed.outcome is Outcome.PATCHED
    assert registry.journeys[journey_id]["distance"] == 22000
