"""Riders' and drivers' accounts through the real app (real Mosquitto, SQLite and PostgreSQL):
sign-in by a texted code, and the routes that need it — an anonymous client validates nobody,
a request carries its account's number and another account's client_ref never reaches it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr
from sqlmodel import Session, select

from dispatcher.request_machine import RequestState
from line_service.accounts.book import AccountRole
from line_service.runtime import Runtime, build_runtime
from line_service.settings import Settings
from line_service.storage.store import TripRecord
from tests.support.accounts import account_token, bearer, texted_code
from tests.support.app import console_sender, served_app
from tests.support.brokers import Mosquitto
from tests.support.service import LINE, write_lines_file
from tests.support.waiting import wait_until

RIDER_A, RIDER_B, DRIVER = "+33612345678", "+33611111111", "+33698765432"
OPERATOR, VIEWER = "operator-token-1", "viewer-token-1"
RIDE = {"line_id": LINE, "stop_id": "marck-est", "destination_id": "dunkerque-est"}


@pytest.fixture
def runtime(mosquitto: Mosquitto, database_url: str, tmp_path: Path) -> Runtime:
    settings = Settings(
        lines_file=write_lines_file(tmp_path),
        database_url=database_url,
        mqtt_url=mosquitto.url,
        mqtt_client_id=f"accounts-test-{uuid.uuid4().hex[:8]}",
        phone_hash_salt=SecretStr("pepper"),
        api_tokens=SecretStr(f"alice:{OPERATOR}:operator,{VIEWER}:viewer"),
    )
    return build_runtime(settings)


@pytest.fixture
async def api(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    async with served_app(runtime) as client:
        client.base_url = client.base_url.join("/api/v1/")
        yield client


@pytest.fixture
def tokens(runtime: Runtime) -> dict[str, str]:
    url = runtime.settings.database_url
    return {
        "a": account_token(url, RIDER_A, AccountRole.RIDER),
        "b": account_token(url, RIDER_B, AccountRole.RIDER),
        "driver": account_token(url, DRIVER, AccountRole.DRIVER),
    }


async def ride(api: httpx.AsyncClient, token: str, **extra: Any) -> dict[str, Any]:
    answer = await api.post("/requests", json={**RIDE, **extra}, headers=bearer(token))
    assert answer.status_code == 201, answer.text
    found: dict[str, Any] = answer.json()
    return found


async def test_sign_in_by_texted_code_me_and_revocation(
    api: httpx.AsyncClient, runtime: Runtime
) -> None:
    sent = await api.post("/auth/otp", json={"phone": "06 12 34 56 78", "role": "rider"})
    assert sent.status_code == 202, sent.text
    assert sent.json()["expires_in_seconds"] == 300
    code = texted_code(console_sender(runtime), RIDER_A)
    signed = await api.post("/auth/token", json={"phone": RIDER_A, "code": code})
    assert signed.status_code == 200, signed.text
    token = signed.json()["access_token"]
    assert signed.json()["role"] == "rider"
    me = (await api.get("/me", headers=bearer(token))).json()
    assert me == {
        "name": f"account:{signed.json()['account_id']}",
        "role": "rider",
        "account_id": signed.json()["account_id"],
        "phone": RIDER_A,
    }
    # An account is not staff: the operator routes refuse it.
    staff_only = await api.get("/lines", headers=bearer(token))
    assert staff_only.status_code == 403
    assert (await api.delete("/auth/token", headers=bearer(token))).status_code == 204
    assert (await api.get("/me", headers=bearer(token))).status_code == 401
    assert (await api.post("/requests", json=RIDE, headers=bearer(token))).status_code == 401


async def test_a_second_code_within_a_minute_is_429_with_retry_after(
    api: httpx.AsyncClient, runtime: Runtime
) -> None:
    body = {"phone": RIDER_A, "role": "driver"}
    assert (await api.post("/auth/otp", json=body)).status_code == 202
    again = await api.post("/auth/otp", json=body)
    assert again.status_code == 429
    assert 55 <= int(again.headers["retry-after"]) <= 60
    assert len(console_sender(runtime).sent) == 1
    unknown = await api.post("/auth/otp", json={"phone": "12", "role": "rider"})
    assert unknown.status_code == 422


async def test_five_wrong_codes_and_the_right_one_is_refused(
    api: httpx.AsyncClient, runtime: Runtime
) -> None:
    await api.post("/auth/otp", json={"phone": RIDER_A, "role": "rider"})
    right = texted_code(console_sender(runtime), RIDER_A)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for left in (4, 3, 2, 1):
        refused = await api.post("/auth/token", json={"phone": RIDER_A, "code": wrong})
        assert refused.status_code == 401
        assert f"{left} tries left" in refused.json()["detail"]
    await api.post("/auth/token", json={"phone": RIDER_A, "code": wrong})
    dead = await api.post("/auth/token", json={"phone": RIDER_A, "code": right})
    assert dead.status_code == 401
    assert "ask for a new one" in dead.json()["detail"]


async def test_anonymous_codes_validate_nobody(
    api: httpx.AsyncClient, runtime: Runtime, tokens: dict[str, str]
) -> None:
    waiting = await ride(api, tokens["a"])
    path = f"/lines/{LINE}/validations"
    codes = [f"{n:04d}" for n in range(40)] + [waiting["code"]]
    for code in codes:
        answer = await api.post(path, json={"code": code})
        assert answer.status_code == 401
    [still] = runtime.engine.state.waiting()
    assert still.id == waiting["id"]
    assert still.state is RequestState.WAITING


async def test_only_a_driver_or_an_operator_validates(
    api: httpx.AsyncClient, runtime: Runtime, tokens: dict[str, str]
) -> None:
    waiting = await ride(api, tokens["a"])
    path = f"/lines/{LINE}/validations"
    code = {"code": waiting["code"]}
    rider = await api.post(path, json=code, headers=bearer(tokens["b"]))
    assert rider.status_code == 403
    assert "driver or operator role" in rider.json()["detail"]
    assert (await api.post(path, json=code, headers=bearer(VIEWER))).status_code == 403
    typed = await api.post(
        path, json={**code, "driver_ref": "attacker"}, headers=bearer(tokens["driver"])
    )
    assert typed.status_code == 422
    assert "driver_ref is not accepted" in typed.text
    assert runtime.engine.state.waiting()[0].state is RequestState.WAITING
    done = await api.post(path, json=code, headers=bearer(tokens["driver"]))
    assert done.status_code == 200, done.text
    me = (await api.get("/me", headers=bearer(tokens["driver"]))).json()
    assert done.json()["driver_ref"] == f"account:{me['account_id']}"

    def trips() -> list[TripRecord]:
        with Session(runtime.store.engine) as session:
            return list(session.exec(select(TripRecord)).all())

    await asyncio.to_thread(wait_until, lambda: len(trips()) == 1, 5, "the trip recorded")
    [trip] = trips()
    assert trip.driver_ref == f"account:{me['account_id']}"
    # The registry's identity of the driver is the account's verified number (truncated).
    assert (trip.driver_phone_trunc, trip.operator_class) == (DRIVER[:-2], "B")
    # An operator may validate on a driver's behalf: the trip names the operator.
    second = await ride(api, tokens["b"])
    by_operator = await api.post(path, json={"code": second["code"]}, headers=bearer(OPERATOR))
    assert by_operator.status_code == 200, by_operator.text
    assert by_operator.json()["driver_ref"] == "operator:alice"


async def test_requests_need_a_rider_and_carry_the_accounts_number(
    api: httpx.AsyncClient, runtime: Runtime, tokens: dict[str, str]
) -> None:
    assert (await api.post("/requests", json=RIDE)).status_code == 401
    as_driver = await api.post("/requests", json=RIDE, headers=bearer(tokens["driver"]))
    assert as_driver.status_code == 403
    typed = await api.post(
        "/requests", json={**RIDE, "phone": RIDER_B}, headers=bearer(tokens["a"])
    )
    assert typed.status_code == 422
    assert "phone is not accepted" in typed.text
    made = await ride(api, tokens["a"])
    [request] = runtime.engine.state.waiting()
    assert request.id == made["id"]
    assert request.phone == RIDER_A


async def test_another_accounts_client_ref_gets_its_own_request_never_the_first(
    api: httpx.AsyncClient, runtime: Runtime, tokens: dict[str, str]
) -> None:
    first = await ride(api, tokens["a"], client_ref="ride-1")
    other = await ride(api, tokens["b"], client_ref="ride-1")
    assert other["id"] != first["id"]
    assert other["state"] == "waiting"
    assert other["code"] != first["code"]
    assert {r.phone for r in runtime.engine.state.waiting()} == {RIDER_A, RIDER_B}
    repeated = await ride(api, tokens["a"], client_ref="ride-1")
    assert (repeated["id"], repeated["code"]) == (first["id"], first["code"])


async def test_an_app_rider_announces_their_coming_then_says_they_are_at_the_stop(
    api: httpx.AsyncClient, runtime: Runtime, tokens: dict[str, str]
) -> None:
    coming = await ride(api, tokens["a"], arriving_in_minutes=10)
    assert coming["state"] == "announced"
    announced = runtime.engine.state.requests[coming["id"]]
    assert announced.state is RequestState.ANNOUNCED
    assert not runtime.engine.state.waiting()
    too_far = await api.post(
        "/requests", json={**RIDE, "arriving_in_minutes": 45}, headers=bearer(tokens["b"])
    )
    assert too_far.status_code == 422
    path = f"/requests/{coming['id']}/arrived"
    assert (await api.post(path, headers=bearer(tokens["b"]))).status_code == 404  # not B's
    here = await api.post(path, headers=bearer(tokens["a"]))
    assert here.status_code == 200, here.text
    assert here.json()["state"] == "waiting"
    assert here.json()["code"] is not None
    [waiting] = runtime.engine.state.waiting()
    assert waiting.id == coming["id"]
    assert (await api.post(path, headers=bearer(tokens["a"]))).status_code == 409


async def test_a_driver_announces_a_trip_riders_on_the_way_get_one_sms(
    api: httpx.AsyncClient, runtime: Runtime, tokens: dict[str, str]
) -> None:
    await ride(api, tokens["a"])  # Marck → Dunkerque: on the way
    assert runtime.sms is not None
    runtime.sms.opt_outs.add(RIDER_B)  # wrote STOP: never texted
    await ride(api, tokens["b"], stop_id="gravelines-est")
    outbox = console_sender(runtime)
    before = len(outbox.sent)
    path = f"/lines/{LINE}/driver-trips"
    trip = {"from_stop": "calais-est", "towards": "dunkerque-est", "leaving_in_minutes": 5}
    assert (await api.post(path, json=trip)).status_code == 401
    assert (await api.post(path, json=trip, headers=bearer(tokens["a"]))).status_code == 403
    backwards = {**trip, "towards": "calais-est", "from_stop": "marck-est"}
    refused = await api.post(path, json=backwards, headers=bearer(tokens["driver"]))
    assert refused.status_code == 422
    assert "is not a stop after" in refused.json()["detail"]
    too_late = {**trip, "leaving_in_minutes": 61}
    driver = bearer(tokens["driver"])
    assert (await api.post(path, json=too_late, headers=driver)).status_code == 422

    declared = await api.post(path, json=trip, headers=bearer(tokens["driver"]))
    assert declared.status_code == 201, declared.text
    assert declared.json()["riders_told"] == 2  # both served; the STOP filter drops B's text
    [text] = outbox.sent[before:]
    # 5 min to leave Calais, then 8 km to Marck at 60 km/h.
    assert (text.to, text.body) == (RIDER_A, "Un conducteur est attendu dans ~13 min.")

    listed = await api.get(path, headers=bearer(VIEWER))
    assert listed.status_code == 200
    [shown] = listed.json()
    assert (shown["from_stop"], shown["towards"]) == ("calais-est", "dunkerque-est")
    assert shown["driver_ref"].startswith("account:")
    assert (await api.get(path, headers=bearer(tokens["driver"]))).status_code == 403
