"""RPC client: posts journeys to a local stand-in registry that validates them with the schema."""

from __future__ import annotations

import copy
import json
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]  # no stubs are published
import pytest
from typer.testing import CliRunner

from line_service.authority.rpc_client import Outcome, RpcClient
from line_service.cli import app
from tests.support.brokers import free_port
from tests.support.specs import SPECS

SCHEMA = json.loads((SPECS / "rpc/journey_create_v3.derived.schema.json").read_text("utf-8"))
EXAMPLE = json.loads((SPECS / "rpc/example_journey_line_trip.json").read_text("utf-8"))
TOKEN = "test-token"
CANCEL_PATH = re.compile(r"^/v3\.3/journeys/([^/]+)/cancel$")


class Registry:
    """A stand-in for the RPC: bearer token, schema validation, 409 on a known id, cancel."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.journeys: dict[str, dict[str, Any]] = {}
        self.cancelled: dict[str, dict[str, Any]] = {}
        self.hits = 0
        validator = jsonschema.Draft7Validator(SCHEMA, format_checker=jsonschema.FormatChecker())
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                registry.hits += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if registry.failures > 0:
                    registry.failures -= 1
                    return self._answer(503, {"error": "unavailable"})
                if self.headers.get("Authorization") != f"Bearer {TOKEN}":
                    return self._answer(401, {"error": "Unauthorized"})
                if self.path == "/v3.3/journeys":
                    problems = [e.message for e in validator.iter_errors(body)]
                    if problems:
                        return self._answer(422, {"errors": problems})
                    journey_id = body["operator_journey_id"]
                    if journey_id in registry.journeys:
                        return self._answer(409, {"error": "conflict"})
                    registry.journeys[journey_id] = body
                    return self._answer(201, {"operator_journey_id": journey_id})
                match = CANCEL_PATH.match(self.path)
                if match is None:
                    return self._answer(404, {"error": "Not found"})
                if set(body) - {"code", "message"} or not re.fullmatch(
                    r"[0-9A-Za-z_-]{0,32}", str(body.get("code"))
                ):
                    return self._answer(400, {"error": "bad cancel body"})
                if match.group(1) not in registry.journeys:
                    return self._answer(404, {"code": 404, "error": "Not found"})
                registry.cancelled[match.group(1)] = body
                return self._answer(200, {})

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


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


async def test_an_invalid_journey_is_rejected_at_once_with_the_reason(registry: Registry) -> None:
    broken = copy.deepcopy(EXAMPLE)
    broken["distance"] = 0
    result = await client(registry.url).send(broken)
    assert (result.outcome, result.status) == (Outcome.REJECTED, 422)
    assert "distance" in result.detail or "0" in result.detail
    assert registry.hits == 1
    assert registry.journeys == {}


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
    second = copy.deepcopy(EXAMPLE)
    second["operator_journey_id"] = "5d0d7034379b4fc1a8321f13e936e0af"
    file = tmp_path / "rpc.json"
    file.write_text(json.dumps([EXAMPLE, second]), encoding="utf-8")
    result = CliRunner().invoke(
        app, ["send-rpc", str(file), "--url", registry.url], env={"CARPOOL_RPC_TOKEN": TOKEN}
    )
    assert result.exit_code == 0, result.output
    assert "created: 2" in result.output
    assert len(registry.journeys) == 2
