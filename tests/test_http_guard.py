"""HTTP trust: body limit before parsing, strict JSON, 422 without echo, security headers."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from line_service.accounts.book import AccountRole
from line_service.web.http_guard import HttpGuard, strict_json_problem, validation_failed
from tests.support.accounts import account_token, bearer
from tests.support.brokers import Mosquitto
from tests.support.service import ServiceProcess, serving

LIMIT = 4096


class Body(BaseModel):
    name: str
    seats: int = 1


def small_app() -> FastAPI:
    app = FastAPI()
    app.add_exception_handler(RequestValidationError, validation_failed)
    app.add_middleware(HttpGuard, max_body_bytes=LIMIT)
    seen: list[int] = []

    @app.post("/echo")
    async def echo(body: Body) -> dict[str, object]:
        seen.append(1)
        return {"name": body.name, "seats": body.seats}

    @app.get("/page")
    async def page() -> dict[str, str]:
        return {"ok": "yes"}

    app.state.seen = seen
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=small_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as test_client:
        yield test_client


async def test_a_body_past_the_limit_is_refused_with_413_by_its_declared_length(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.post(
        "/echo",
        content=b'{"name": "' + b"x" * LIMIT + b'"}',
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 413
    assert "CARPOOL_HTTP_MAX_BODY_BYTES" in answer.json()["detail"]
    assert len(answer.content) < 300


async def test_a_streamed_body_without_length_is_counted_and_cut_at_the_limit(
    client: httpx.AsyncClient,
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(1000):  # 1 MB offered, the guard stops reading past 4 KiB
            yield b"x" * 1024

    answer = await client.post(
        "/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 413


async def test_a_body_under_the_limit_still_works(client: httpx.AsyncClient) -> None:
    answer = await client.post("/echo", json={"name": "Calais", "seats": 2})
    assert answer.status_code == 200
    assert answer.json() == {"name": "Calais", "seats": 2}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "a", "seats": NaN}',
        b'{"name": "a", "seats": Infinity}',
        b'{"name": "a", "seats": -Infinity}',
        b'{"name": "\\ud800"}',
        b'{"\\udfff": 1, "name": "a"}',
    ],
)
async def test_nan_infinity_and_lone_surrogates_are_a_short_422(
    client: httpx.AsyncClient, raw: bytes
) -> None:
    answer = await client.post("/echo", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert len(answer.content) < 200
    assert "NaN" in answer.text or "Infinity" in answer.text or "surrogate" in answer.text


async def test_a_paired_surrogate_is_fine_text(client: httpx.AsyncClient) -> None:
    answer = await client.post(
        "/echo", content=b'{"name": "\\ud83d\\ude97"}', headers={"content-type": "application/json"}
    )
    assert answer.status_code == 200
    assert answer.json()["name"] == "\U0001f697"


async def test_a_validation_error_names_the_field_and_never_echoes_the_value(
    client: httpx.AsyncClient,
) -> None:
    secret = "the-value-sent-" + "y" * 2000
    answer = await client.post("/echo", json={"name": "a", "seats": secret})
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"] == ["body", "seats"]
    assert set(error) == {"type", "loc", "msg"}
    assert "the-value-sent" not in answer.text


async def test_security_headers_on_every_answer(client: httpx.AsyncClient) -> None:
    for answer in (
        await client.get("/page"),
        await client.get("/nowhere"),
        await client.post("/echo", json={}),
        await client.post("/echo", content=b"x" * (LIMIT + 1)),
    ):
        assert answer.headers["x-frame-options"] == "DENY"
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "no-referrer"
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy
        assert "script-src 'self';" in policy
        assert "unsafe-inline" not in policy


def test_strict_json_problem_leaves_plain_json_and_non_json_alone() -> None:
    assert strict_json_problem(b'{"a": [1, 2.5, "\\u00e9"]}') is None
    assert strict_json_problem(b"not json") is None  # FastAPI answers json_invalid
    assert strict_json_problem(b"[NaN]") is not None


def raw_post(port: int, head: str) -> bytes:
    """A request that announces a huge body and sends none of it: the answer comes first."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(head.encode())
        return conn.recv(4096)


def test_the_service_refuses_huge_and_hostile_bodies_without_a_traceback(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    with serving(mosquitto.url, tmp_path) as service:
        _through_the_service(service)


def _through_the_service(service: ServiceProcess) -> None:
    api = f"{service.base_url}/api/v1"
    head = (
        "POST /api/v1/requests HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        f"Content-Length: {100 * 1024 * 1024}\r\n\r\n"
    )
    assert raw_post(service.http_port, head).startswith(b"HTTP/1.1 413")
    big = httpx.post(f"{api}/requests", content=b"[" + b"1," * 40_000 + b"1]", timeout=10)
    assert big.status_code == 413
    form = httpx.post(f"{service.base_url}/sms/twilio", data={"Body": "x" * 70_000}, timeout=10)
    assert form.status_code == 413
    for raw in (b'{"line_id": NaN}', b'{"line_id": "\\ud800", "stop_id": "a"}'):
        answer = httpx.post(
            f"{api}/requests", content=raw, headers={"content-type": "application/json"}
        )
        assert answer.status_code == 422, raw
    rider = account_token(service.database_url, "+33612345678", AccountRole.RIDER)
    echoed = httpx.post(f"{api}/requests", json={"line_id": "x" * 30_000}, headers=bearer(rider))
    assert echoed.status_code == 422
    assert len(echoed.content) < 2000
    page = httpx.get(f"{service.base_url}/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert httpx.get(f"{service.base_url}/readyz").status_code == 200
    log = service.log()
    assert "Traceback" not in log
    assert '"level": "error"' not in log
