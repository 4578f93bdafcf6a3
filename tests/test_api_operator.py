"""Operator API through the real service: auth matrix, errors, actions seen on the real broker."""

from __future__ import annotations

import functools
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from line_service.accounts.book import AccountRole
from tests.support.accounts import account_token
from tests.support.brokers import Mosquitto
from tests.support.mqtt_probe import MqttProbe
from tests.support.service import (
    CARPOOL_LINE,
    LINE,
    REPO,
    ServiceProcess,
    serving,
)
from tests.support.waiting import wait_until

PREFIX = f"carpool/v1/{LINE}"
TERMINAL = "t-marck-est"
SIGN = "pmv-marck-est-1"
VIEWER, OPERATOR, ADMIN = "viewer-token-1", "operator-token-1", "admin-token-1"
TOKENS = f"{VIEWER}:viewer,{OPERATOR}:operator,boss:{ADMIN}:admin"


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def press(probe: MqttProbe, request_id: str, destination: str = "dunkerque-est") -> None:
    probe.publish(
        f"{PREFIX}/terminals/{TERMINAL}/request",
        {"v": 1, "request_id": request_id, "destination": destination, "seats": 1},
    )


def sign_rows(probe: MqttProbe, sign: str = SIGN) -> list[list[str]] | None:
    shown = probe.last(f"{PREFIX}/signs/{sign}/display")
    return None if shown is None else list(shown["pages"])


@pytest.fixture
def service(mosquitto: Mosquitto, tmp_path: Path, database_url: str) -> Iterator[ServiceProcess]:
    with serving(
        mosquitto.url, tmp_path, database_url, extra_env={"CARPOOL_API_TOKENS": TOKENS}
    ) as process:
        yield process


@pytest.fixture
def api(service: ServiceProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{service.base_url}/api/v1", timeout=10) as client:
        yield client


def waiting_request(api: httpx.Client, probe: MqttProbe, ref: str) -> dict[str, Any]:
    press(probe, ref)
    probe.wait_last(f"{PREFIX}/terminals/{TERMINAL}/screen", lambda s: s["request_id"] == ref)
    found = api.get("/requests", params={"state": "waiting"}, headers=auth(VIEWER)).json()
    item: dict[str, Any] = found["items"][0]
    return item


def test_auth_matrix_public_viewer_operator(service: ServiceProcess, api: httpx.Client) -> None:
    base = service.base_url
    for public in ("/healthz", "/readyz", "/metrics", "/"):
        assert httpx.get(base + public).status_code == 200, public
    assert api.get("/lines").status_code == 401
    assert api.get("/lines").json()["detail"].startswith("authentication required")
    assert api.get("/lines", headers=auth("not-a-token")).status_code == 401
    assert api.get("/lines", headers={"Authorization": "Basic eDp5"}).status_code == 401
    for token in (VIEWER, OPERATOR, ADMIN):
        assert api.get(f"/lines/{LINE}", headers=auth(token)).status_code == 200
    forbidden = api.post("/requests/anything/cancel", headers=auth(VIEWER))
    assert forbidden.status_code == 403
    assert "operator role" in forbidden.json()["detail"]
    assert api.post("/requests/anything/cancel", headers=auth(OPERATOR)).status_code == 404
    assert api.get("/me", headers=auth(ADMIN)).json() == {"name": "boss", "role": "admin"}
    assert OPERATOR not in service.log()
    assert ADMIN not in service.log()


def test_unknown_ids_get_404_with_a_clear_message(api: httpx.Client) -> None:
    cases = {
        "/lines/nowhere": "unknown line 'nowhere'",
        f"/lines/{LINE}/signs/pmv-nowhere": "unknown sign 'pmv-nowhere'",
        f"/lines/{LINE}/stops/nowhere": "unknown stop 'nowhere'",
        f"/lines/{LINE}/terminals/t-nowhere": "unknown terminal 't-nowhere'",
        "/requests/feedface": "unknown request 'feedface'",
    }
    for path, message in cases.items():
        answer = api.get(path, headers=auth(VIEWER))
        assert answer.status_code == 404, path
        assert message in answer.json()["detail"], path
    cleared = api.delete(f"/lines/{LINE}/signs/{SIGN}/messages/op-none", headers=auth(OPERATOR))
    assert cleared.status_code == 404
    assert "no active message" in cleared.json()["detail"]


def test_invalid_bodies_get_422(api: httpx.Client) -> None:
    path = f"/lines/{LINE}/signs/{SIGN}/messages"
    for body in (
        {},
        {"pages": "text"},
        {"pages": [["A"]], "priority": 1000},
        {"pages": [], "x": 1},
    ):
        assert api.post(path, json=body, headers=auth(OPERATOR)).status_code == 422, body
    unprintable = api.post(path, json={"pages": [["   "]]}, headers=auth(OPERATOR))
    assert unprintable.status_code == 422
    assert "nothing printable" in unprintable.json()["detail"]
    ride = {"line_id": LINE, "stop_id": "marck-est", "destination_id": "dunkerque-est"}
    assert api.post("/requests", json=ride).status_code == 401


def test_operator_message_wins_then_blank_then_clear_restores_riders(
    api: httpx.Client, probe: MqttProbe
) -> None:
    waiting_request(api, probe, "msg-1")
    wait_until(lambda: "DUNKERQUE" in json.dumps(sign_rows(probe)), 2, "rider on the sign")
    path = f"/lines/{LINE}/signs/{SIGN}/messages"
    posted = api.post(path, json={"pages": [["Route barrée", "déviation"]]}, headers=auth(OPERATOR))
    assert posted.status_code == 201, posted.text
    assert posted.json()["sign"]["pages"] == [["ROUTE BARREE", "DEVIATION"]]
    wait_until(
        lambda: sign_rows(probe) == [["ROUTE BARREE", "DEVIATION"]], 2, "operator text shown"
    )
    blank = api.post(path, json={"pages": [], "priority": 90}, headers=auth(OPERATOR))
    assert blank.status_code == 201
    wait_until(lambda: sign_rows(probe) == [], 2, "sign blanked by the operator")
    for message in (blank.json()["message"], posted.json()["message"]):
        cleared = api.delete(f"{path}/{message['message_id']}", headers=auth(OPERATOR))
        assert cleared.status_code == 200
    wait_until(lambda: "DUNKERQUE" in json.dumps(sign_rows(probe)), 2, "riders back on the sign")
    sign = api.get(f"/lines/{LINE}/signs/{SIGN}", headers=auth(VIEWER)).json()
    assert sign["operator_messages"] == []


def test_operator_cancel_and_fallback_change_the_request_and_its_history(
    api: httpx.Client, probe: MqttProbe
) -> None:
    first = waiting_request(api, probe, "cancel-me")
    cancelled = api.post(f"/requests/{first['id']}/cancel", json={}, headers=auth(OPERATOR))
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "cancelled"
    wait_until(lambda: sign_rows(probe) == [], 2, "sign dark after the operator cancelled")
    probe.wait_last(f"{PREFIX}/terminals/{TERMINAL}/screen", lambda s: s["state"] == "cancelled")
    again = api.post(f"/requests/{first['id']}/cancel", headers=auth(OPERATOR))
    assert again.status_code == 409
    assert "cancelled" in again.json()["detail"]
    detail = api.get(f"/requests/{first['id']}", headers=auth(VIEWER)).json()
    assert [step["cause"] for step in detail["history"]] == ["requested", "operator_cancelled"]

    second = waiting_request(api, probe, "taxi-me")
    sent = api.post(f"/requests/{second['id']}/fallback", headers=auth(OPERATOR))
    assert sent.json()["state"] == "fallback"
    assert sent.json()["cause"] == "operator_fallback"
    listed = api.get("/requests", params={"state": "fallback"}, headers=auth(VIEWER)).json()
    assert [item["id"] for item in listed["items"]] == [second["id"]]


def test_viewer_sees_everything_but_phone_numbers(
    service: ServiceProcess, api: httpx.Client
) -> None:
    body = {"line_id": LINE, "stop_id": "marck-est", "destination_id": "dunkerque-est"}
    rider = account_token(service.database_url, "+33612345678", AccountRole.RIDER)
    created = api.post("/requests", json=body, headers=auth(rider))
    assert created.status_code == 201, created.text
    request_id = created.json()["id"]
    as_viewer = api.get(f"/requests/{request_id}", headers=auth(VIEWER)).json()["request"]
    as_operator = api.get(f"/requests/{request_id}", headers=auth(OPERATOR)).json()["request"]
    assert as_viewer["phone"] is None
    assert as_viewer["code"] == as_operator["code"] is not None
    assert as_operator["phone"] == "+33612345678"
    line = api.get(f"/lines/{LINE}", headers=auth(VIEWER)).json()
    assert [r["phone"] for r in line["waiting"]] == [None]


def test_live_socket_pushes_a_press_within_a_second(
    service: ServiceProcess, probe: MqttProbe
) -> None:
    url = f"ws://127.0.0.1:{service.http_port}/api/v1/lines/{LINE}/live/ws"
    with connect(url, open_timeout=5) as socket:
        socket.send(json.dumps({"token": VIEWER}))
        assert json.loads(socket.recv(5))["type"] == "hello"
        assert json.loads(socket.recv(5))["line"]["waiting"] == []
        press(probe, "live-1")
        for _ in range(20):
            snapshot = json.loads(socket.recv(1))["line"]
            if snapshot["waiting"]:
                break
        assert [r["stop_id"] for r in snapshot["waiting"]] == ["marck-est"]
        stop = snapshot["directions"][0]["stops"][1]
        assert stop["signs"][0]["pages"][0][0] == "COVOITURAGE"
    with connect(url, open_timeout=5) as socket:
        socket.send(json.dumps({"token": "wrong-token"}))
        refused = json.loads(socket.recv(5))
        assert refused["status"] == 401


def test_metrics_count_outcomes_waits_and_sign_updates(
    service: ServiceProcess, api: httpx.Client, probe: MqttProbe
) -> None:
    request = waiting_request(api, probe, "metric-1")
    api.post(f"/requests/{request['id']}/cancel", headers=auth(OPERATOR))
    text = httpx.get(f"{service.base_url}/metrics").text
    assert f'carpool_requests_total{{line="{LINE}",outcome="cancelled"}} 1.0' in text
    assert f'carpool_wait_seconds_count{{line="{LINE}",outcome="cancelled"}} 1.0' in text
    assert "carpool_sign_updates_total" in text
    assert "carpool_engine_events_total" in text
    assert 'carpool_devices_configured{kind="sign"}' in text
    # Event-processing latency is a histogram by event: the press and the cancel were observed.
    for event in ("RideRequested", "RideCancelled"):
        count = re.search(
            rf'carpool_engine_step_duration_seconds_count{{event="{event}"}} (\d+)', text
        )
        assert count is not None
        assert int(count.group(1)) >= 1


def test_cli_operator_add_prints_a_token_the_running_service_accepts(
    service: ServiceProcess, api: httpx.Client
) -> None:
    env = {"CARPOOL_DATABASE_URL": service.database_url, "PATH": "/usr/bin:/bin"}
    run = functools.partial(subprocess.run, capture_output=True, text=True, env=env, cwd=REPO)
    added = run([str(CARPOOL_LINE), "operator", "add", "alice", "--role", "operator"], check=True)
    token = added.stdout.strip()
    assert api.get("/me", headers=auth(token)).json() == {"name": "alice", "role": "operator"}
    listed = run([str(CARPOOL_LINE), "operator", "list"], check=True).stdout
    assert "alice\toperator" in listed
    assert token not in listed
    run([str(CARPOOL_LINE), "operator", "remove", "alice"], check=True)
    assert api.get("/me", headers=auth(token)).status_code == 401


def held_trip(database_url: str) -> str:
    """A trip validated 10 s after the request (held for review), stored as the service would."""
    from datetime import UTC, datetime, timedelta

    from line_service.authority.trips import TripBook
    from line_service.storage.store import Store
    from tests.money.trips_support import paying_network, record, validated

    store = Store(database_url)
    try:
        network = paying_network()
        at = datetime(2026, 11, 2, 6, 0, tzinfo=UTC)
        trip = record(
            TripBook(store, network),
            network,
            validated("held-1", at, asked_before=timedelta(seconds=10)),
        )
        return trip.id
    finally:
        store.dispose()


def test_reviewing_a_held_trip_needs_the_operator_role_and_is_recorded(
    service: ServiceProcess, api: httpx.Client
) -> None:
    trip_id = held_trip(service.database_url)
    listed = api.get("/trips", params={"flagged": "true"}, headers=auth(VIEWER))
    assert listed.status_code == 200
    [item] = listed.json()["items"]
    assert (item["id"], item["standing"], item["flags"]) == (
        trip_id,
        "held",
        ["validated_too_soon"],
    )
    assert item["driver"].endswith("xx")  # the driver's number is never shown whole
    body = {"decision": "approve", "note": "le conducteur attendait déjà"}
    assert api.post(f"/trips/{trip_id}/review", json=body).status_code == 401
    assert api.post(f"/trips/{trip_id}/review", json=body, headers=auth(VIEWER)).status_code == 403
    bad = api.post(f"/trips/{trip_id}/review", json={"decision": "maybe"}, headers=auth(OPERATOR))
    assert bad.status_code == 422
    assert api.post("/trips/nope/review", json=body, headers=auth(OPERATOR)).status_code == 404
    done = api.post(f"/trips/{trip_id}/review", json=body, headers=auth(OPERATOR))
    assert done.status_code == 200, done.text
    me = api.get("/me", headers=auth(OPERATOR)).json()
    assert done.json()["decided_by"] == me["name"]
    assert done.json()["decision"] == "approve"
    [after] = api.get("/trips", params={"flagged": "true"}, headers=auth(VIEWER)).json()["items"]
    assert after["standing"] == "clean"
    assert after["review"]["note"] == "le conducteur attendait déjà"
    assert api.get("/trips", params={"flagged": "false"}, headers=auth(VIEWER)).status_code == 422


def test_a_rejected_trip_is_cancelled_at_the_registry_as_fraud(
    service: ServiceProcess, api: httpx.Client
) -> None:
    from sqlmodel import Session

    from line_service.storage.rpc_outbox_table import RpcJourneyRecord
    from line_service.storage.store import Store

    trip_id = held_trip(service.database_url)
    body = {"decision": "reject", "note": "aucun passager à bord"}
    done = api.post(f"/trips/{trip_id}/review", json=body, headers=auth(OPERATOR))
    assert done.status_code == 200, done.text
    store = Store(service.database_url)
    try:
        with Session(store.engine) as session:
            row = session.get(RpcJourneyRecord, trip_id)
    finally:
        store.dispose()
    assert row is not None
    assert row.cancel_code == "fraud"
    assert row.cancel_message is not None
    assert "aucun passager à bord" in row.cancel_message
