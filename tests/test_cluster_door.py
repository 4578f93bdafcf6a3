"""Any door: two real `carpool-line serve` processes of one cluster (tests/test_cluster.py's
`pair`); what is sent to the standby is handled by the owner and its answer comes back — the
app's API, an operator's read, a Twilio-signed SMS, the dashboard's live WebSocket — and a
request accepted that way outlives a kill -9 of the owner."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import sqlalchemy
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from line_service.accounts.book import AccountRole
from line_service.cluster.door import FORWARDED_BY
from tests.support.accounts import account_tokens, bearer
from tests.support.brokers import free_port
from tests.support.faults import eventually, figure
from tests.support.service import LINE, ServiceProcess
from tests.support.sms_webhook import PUBLIC_URL, Sms
from tests.support.twilio_standin import AUTH_TOKEN
from tests.test_cluster import Pair, owns_the_line, pair, standing_by

__all__ = ["pair"]  # the fixture, shared with tests/test_cluster.py

pytestmark = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)

OPERATOR_TOKEN = "door-operator-token"
RIDERS = ("+33612345001", "+33612345002", "+33612345003")
ASK = {"line_id": LINE, "stop_id": "marck-est", "destination_id": "dunkerque-est"}
SIGN = "pmv-marck-est-1"


@pytest.fixture
def cluster_env() -> dict[str, str]:
    """Both processes: one operator token, Twilio's signatures checked against one public URL,
    each other's address trusted for X-Forwarded-For, one new request per client address."""
    return {
        "CARPOOL_API_TOKENS": f"door:{OPERATOR_TOKEN}:operator",
        "CARPOOL_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "CARPOOL_PUBLIC_URL": PUBLIC_URL,
        "CARPOOL_PHONE_HASH_SALT": "door-salt",
        "CARPOOL_TRUSTED_PROXIES": "127.0.0.1",
        "CARPOOL_REQUEST_RATE_PER_ADDRESS": "1",
    }


def client_at(address: str) -> dict[str, str]:
    """What a reverse proxy in front of the processes would say of a client at `address`."""
    return {"X-Forwarded-For": address}


async def rider_tokens(pair: Pair) -> list[str]:
    return await asyncio.to_thread(account_tokens, pair.database_url, RIDERS, AccountRole.RIDER)


def door_count(process: ServiceProcess, what: str) -> float:
    """`carpool_door_<what>_total` on the process's /metrics."""
    text = httpx.get(f"{process.base_url}/metrics", timeout=2).text
    prefix = f"carpool_door_{what}_total "
    return float(next(row for row in text.splitlines() if row.startswith(prefix))[len(prefix) :])


async def live_view(http: httpx.AsyncClient) -> dict[str, Any]:
    answer = await http.get(f"/api/v1/lines/{LINE}/live")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_a_rider_request_through_the_standby_is_the_owners_and_outlives_its_kill(
    pair: Pair,
) -> None:
    first, second, third = await rider_tokens(pair)
    async with (
        httpx.AsyncClient(base_url=pair.first.base_url) as owner_http,
        httpx.AsyncClient(base_url=pair.second.base_url) as standby_http,
    ):
        owner = pair.rig(pair.first, owner_http)
        await eventually(owner.signs_converged, 10, "signs shown by the owner")
        asked = await standby_http.post(
            "/api/v1/requests",
            json=ASK | {"client_ref": "app-ask-1"},
            headers=bearer(first) | client_at("203.0.113.1"),
        )
        assert asked.status_code == 201, asked.text
        request = asked.json()
        assert request["state"] == "waiting"
        assert request["code"]
        # Stored by the owner, and on the signs it drives.
        assert list(owner.stored().values()) == ["waiting"]
        await eventually(owner.signs_converged, 10, "the rider on the signs")
        signs = {sign["id"]: sign for sign in (await live_view(owner_http))["signs"]}
        assert signs[SIGN]["pages"] != []
        assert [list(page) for page in pair.fleet.signs[SIGN].pages] == signs[SIGN]["pages"]

        # An operator's read through the standby is the owner's view of the signs.
        staff = bearer(OPERATOR_TOKEN)
        through = await standby_http.get(f"/api/v1/lines/{LINE}/signs", headers=staff)
        direct = await owner_http.get(f"/api/v1/lines/{LINE}/signs", headers=staff)
        assert through.status_code == direct.status_code == 200, through.text
        assert through.headers["content-type"] == "application/json"
        shown = {sign["id"]: (sign["seq"], sign["pages"]) for sign in through.json()}
        assert shown == {sign["id"]: (sign["seq"], sign["pages"]) for sign in direct.json()}
        assert shown[SIGN][1] == signs[SIGN]["pages"]

        # The owner counts requests per client address: the standby passed the client's on.
        again = await standby_http.post(
            "/api/v1/requests", json=ASK, headers=bearer(second) | client_at("203.0.113.1")
        )
        assert again.status_code == 429, again.text
        assert int(again.headers["Retry-After"]) > 1
        other = await standby_http.post(
            "/api/v1/requests", json=ASK, headers=bearer(second) | client_at("203.0.113.2")
        )
        assert other.status_code == 201, other.text

        # Its own health and metrics stay its own: the standby says it stands by, and counts.
        assert standing_by(pair.second)
        assert door_count(pair.second, "forwarded") == 4  # the four asks above
        assert door_count(pair.first, "forwarded") == 0

    await asyncio.to_thread(pair.first.kill)
    seen: set[tuple[int, str | None]] = set()
    async with httpx.AsyncClient(base_url=pair.second.base_url) as http:

        async def answered() -> bool:
            answer = await http.get(f"/api/v1/lines/{LINE}/signs", headers=staff)
            seen.add((answer.status_code, answer.headers.get("Retry-After")))
            return answer.status_code == 200

        took = await eventually(answered, 10, "an answer through the former standby")
        figure("any door: kill -9 of the owner to an answer through the standby", f"{took:.2f} s")
        assert seen <= {(503, "1"), (200, None)}  # meanwhile: try again in a second
        assert await asyncio.to_thread(owns_the_line, pair.second)
        heir = pair.rig(pair.second, http)
        await eventually(heir.signs_converged, 10, "signs as the new owner wants them")
        waiting = {rider["id"] for rider in (await live_view(http))["waiting"]}
        assert waiting == {request["id"], other.json()["id"]}  # accepted, never lost
        # An app that never saw its answer asks again with the same client_ref: the same ride.
        repeat = await http.post(
            "/api/v1/requests",
            json=ASK | {"client_ref": "app-ask-1"},
            headers=bearer(first) | client_at("203.0.113.4"),
        )
        assert repeat.status_code == 201, repeat.text
        assert repeat.json()["id"] == request["id"]
        served = await http.post(
            "/api/v1/requests", json=ASK, headers=bearer(third) | client_at("203.0.113.3")
        )
        assert served.status_code == 201, served.text  # the only process left: served here
        await eventually(heir.signs_converged, 10, "the new rider on the signs")
    assert sorted(heir.stored().values()) == ["waiting"] * 3


SOCKET_WAIT_SECONDS = 10.0  # a snapshot comes at least every 5 s (the hub's heartbeat)


async def socket_message(socket: ClientConnection) -> dict[str, Any]:
    """The next message on the live socket (bounded: a silent socket fails the test)."""
    message: dict[str, Any] = json.loads(await asyncio.wait_for(socket.recv(), SOCKET_WAIT_SECONDS))
    return message


async def rider_shown(socket: ClientConnection) -> bool:
    """Whether the next snapshot on the socket shows one rider waiting at Marck Est."""
    snapshot = await socket_message(socket)
    return [rider["stop_id"] for rider in snapshot["line"]["waiting"]] == ["marck-est"]


async def read_until_closed(socket: ClientConnection) -> None:
    """Read snapshots until the socket closes (raises ConnectionClosed then)."""
    while True:
        await socket_message(socket)


async def test_a_signed_sms_and_the_live_socket_through_the_standby_reach_the_owner(
    pair: Pair,
) -> None:
    socket_url = f"ws://127.0.0.1:{pair.second.http_port}/api/v1/lines/{LINE}/live/ws"
    async with (
        connect(socket_url, proxy=None) as socket,
        httpx.AsyncClient(base_url=pair.second.base_url) as standby_http,
    ):
        await socket.send(json.dumps({"token": OPERATOR_TOKEN}))
        hello = await socket_message(socket)
        assert hello == {"type": "hello", "name": "door", "role": "operator"}
        first = await socket_message(socket)
        assert first["type"] == "line"
        assert first["line"]["waiting"] == []

        reply = await Sms(standby_http).reply("MRK dunkerke")  # signed for CARPOOL_PUBLIC_URL
        assert "Donnez le code" in reply

        await eventually(lambda: rider_shown(socket), 15, "the SMS rider on the live socket")
        async with httpx.AsyncClient(base_url=pair.first.base_url) as owner_http:
            waiting = (await live_view(owner_http))["waiting"]
        assert [(rider["channel"], rider["stop_id"]) for rider in waiting] == [("sms", "marck-est")]

        # The owner dies: the socket through the standby is closed "try again later".
        await asyncio.to_thread(pair.first.kill)
        with pytest.raises(ConnectionClosed):
            await read_until_closed(socket)
    assert socket.close_code == 1013

    # The dashboard connects again, now to the new owner itself: the rider is still there.
    await eventually(lambda: asyncio.to_thread(owns_the_line, pair.second), 10, "new owner")
    async with connect(socket_url, proxy=None) as socket:
        await socket.send(json.dumps({"token": OPERATOR_TOKEN}))
        assert (await socket_message(socket))["type"] == "hello"
        await eventually(lambda: rider_shown(socket), 15, "the rider restored by the new owner")


async def test_a_request_forwarded_to_a_process_that_does_not_own_the_lines_is_refused(
    pair: Pair,
) -> None:
    token, *_ = await rider_tokens(pair)
    async with httpx.AsyncClient(base_url=pair.second.base_url) as http:
        hopped = await http.post(
            "/api/v1/requests", json=ASK, headers=bearer(token) | {FORWARDED_BY: "elsewhere"}
        )
    assert hopped.status_code == 503, hopped.text
    assert hopped.headers["Retry-After"] == "1"
    assert f"does not dispatch line {LINE!r}" in hopped.json()["detail"]
    async with httpx.AsyncClient(base_url=pair.first.base_url) as http:
        assert (await live_view(http))["waiting"] == []  # nothing reached the owner


def recorded_addresses(database_url: str) -> dict[str, str]:
    """Every node's HTTP address in `cluster_node`, read straight from the database."""
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(sqlalchemy.text("SELECT node, http_url FROM cluster_node"))
            return {node: url for node, url in rows}
    finally:
        engine.dispose()


def record_address(database_url: str, node: str, url: str) -> None:
    """Overwrite a node's recorded address (a wrong CARPOOL_ADVERTISE_URL, say)."""
    engine = sqlalchemy.create_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                sqlalchemy.text("UPDATE cluster_node SET http_url = :url WHERE node = :node"),
                {"url": url, "node": node},
            )
    finally:
        engine.dispose()


async def test_an_owner_that_does_not_answer_at_its_address_gets_503_naming_it(
    pair: Pair,
) -> None:
    owner, standby = (f"dispatcher-{process.http_port}" for process in (pair.first, pair.second))
    addresses = await asyncio.to_thread(recorded_addresses, pair.database_url)
    assert addresses == {owner: pair.first.base_url, standby: pair.second.base_url}
    nowhere = f"http://127.0.0.1:{free_port()}"
    await asyncio.to_thread(record_address, pair.database_url, owner, nowhere)
    socket_url = f"ws://127.0.0.1:{pair.second.http_port}/api/v1/lines/{LINE}/live/ws"
    async with httpx.AsyncClient(base_url=pair.second.base_url) as http:
        refused = await http.get(f"/api/v1/lines/{LINE}/live")
        assert refused.status_code == 503, refused.text
        assert refused.headers["Retry-After"] == "1"
        assert owner in refused.json()["detail"]
        assert nowhere in refused.json()["detail"]
        async with connect(socket_url, proxy=None) as socket:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(socket.recv(), SOCKET_WAIT_SECONDS)
        assert socket.close_code == 1013  # try again later
        assert owner in (socket.close_reason or "")

        # Fixed in the database: the standby reads the address again, and forwards.
        await asyncio.to_thread(record_address, pair.database_url, owner, pair.first.base_url)
        answered = await http.get(f"/api/v1/lines/{LINE}/live")
        assert answered.status_code == 200, answered.text
