"""Test support: a local stand-in of the Registre de preuve de covoiturage (API v3.4).

It checks what the real registry checks of the line's requests: bearer tokens (a fixed test
token, or the short-lived ones it issues at `/auth/access_token` for the test keys), the
package's own v3.4 schemas for a journey and for a PATCH body, 409 for a known journey, 422
with `terms_violation_error_details` for broken terms (1 km, 4 car runs a person a day). It
keeps every journey with a status the test can change (`set_status`), answers GET, PATCH (only
for a journey in `validation_error`) and cancel. `failures` makes the next calls answer 503,
`bad_requests` the next journeys posted 400.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from line_service.authority.schemas import journey_problems, patch_problems

TOKEN = "test-token"
ACCESS_KEY, SECRET_KEY = "test-access", "test-secret"
DAILY_LIMIT = 4
PREFIX = "/v3.4"
JOURNEY_PATH = re.compile(r"^/v3\.4/journeys/([a-z0-9]{1,256})$")
CANCEL_PATH = re.compile(r"^/v3\.4/journeys/([a-z0-9]{1,256})/cancel$")


def terms_violations(registry: Registry, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The v3.4 terms the stand-in checks: 1 km minimum, 4 car runs a person a day."""
    found: list[dict[str, Any]] = []
    if body["distance"] < 1000:
        found.append({"label": "distance_too_short"})
    day = body["start"]["datetime"][:10]
    counts = {}
    for role in ("driver", "passenger"):
        key = body[role]["identity"]["identity_key"]
        runs = {
            known["operator_trip_id"]
            for known in registry.journeys.values()
            if known["start"]["datetime"][:10] == day
            and key in {known[r]["identity"]["identity_key"] for r in ("driver", "passenger")}
        }
        counts[role] = len(runs | {body["operator_trip_id"]})
    if max(counts.values()) > DAILY_LIMIT:
        metas = {**counts, "limit": DAILY_LIMIT}
        found.append({"label": "too_many_trips_by_day", "metas": metas})
    return found


class Registry:
    """The stand-in, served on a free local port (`url`) from a thread until `close`."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.bad_requests = 0  # the next journeys posted are refused with 400
        self.journeys: dict[str, dict[str, Any]] = {}
        self.statuses: dict[str, str] = {}
        self.cancelled: dict[str, dict[str, Any]] = {}
        self.patched: dict[str, dict[str, Any]] = {}
        self.issued: set[str] = set()
        self.hits = 0
        self.calls: list[tuple[str, str]] = []  # (method, path) of every call
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def set_status(self, journey_id: str, status: str) -> None:
        """What the registry's checks decided (`ok`, `fraud_error`, `validation_error`, …)."""
        self.statuses[journey_id] = status

    def expire_tokens(self) -> None:
        """Every issued token ends now (the next call with one gets 401)."""
        self.issued.clear()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()

    def answer(self, method: str, path: str, auth: str | None, body: Any) -> tuple[int, Any]:
        """The registry's answer to one call (status, JSON body)."""
        with self._lock:
            self.hits += 1
            self.calls.append((method, path))
            if self.failures > 0:
                self.failures -= 1
                return 503, {"error": "unavailable"}
            if (method, path) == ("POST", f"{PREFIX}/auth/access_token"):
                return self._token(body)
            if auth not in {f"Bearer {token}" for token in (TOKEN, *self.issued)}:
                return 401, {"code": 401, "error": "Unauthorized"}
            if (method, path) == ("POST", f"{PREFIX}/journeys"):
                return self._create(body)
            found = JOURNEY_PATH.match(path)
            if found and method == "GET":
                return self._status(found.group(1))
            if found and method == "PATCH":
                return self._patch(found.group(1), body)
            found = CANCEL_PATH.match(path)
            if found and method == "POST":
                return self._cancel(found.group(1), body)
            return 404, {"code": 404, "error": "Not found"}

    def _token(self, body: Any) -> tuple[int, Any]:
        if not isinstance(body, dict) or set(body) != {"access_key", "secret_key"}:
            return 400, {"error": "access_key and secret_key are required"}
        if (body["access_key"], body["secret_key"]) != (ACCESS_KEY, SECRET_KEY):
            return 401, {"code": 401, "error": "Unauthorized"}
        token = f"issued-{len(self.issued)}-{self.hits}"
        self.issued.add(token)
        return 201, {"access_token": token}

    def _create(self, body: Any) -> tuple[int, Any]:
        problems = journey_problems(body) if isinstance(body, dict) else ["not an object"]
        if self.bad_requests > 0:
            self.bad_requests -= 1
            problems = ["start.lat: refused by the registry's own validator"]
        if problems:
            return 400, {"error": {"data": ", ".join(problems)}}
        journey_id = body["operator_journey_id"]
        if journey_id in self.journeys:
            return 409, {"error": "conflict"}
        violations = terms_violations(self, body)
        if violations:
            data = {
                "terms_violation_labels": [v["label"] for v in violations],
                "terms_violation_error_details": violations,
            }
            error = {"data": data, "code": -32422, "message": "Unprocessable Request"}
            return 422, {"id": 1, "jsonrpc": "2.0", "error": error}
        self.journeys[journey_id] = body
        self.statuses[journey_id] = "pending"
        result = {"operator_journey_id": journey_id, "created_at": "2026-03-03T16:40:00Z"}
        return 201, {"id": 1, "jsonrpc": "2.0", "result": {"meta": None, "data": result}}

    def _status(self, journey_id: str) -> tuple[int, Any]:
        if journey_id not in self.journeys:
            return 404, {"code": 404, "error": "Not found"}
        status = self.statuses[journey_id]
        body: dict[str, Any] = {
            "status": status,
            "operator_journey_id": journey_id,
            "created_at": "2026-03-03T16:40:00Z",
        }
        if status == "fraud_error":
            body["fraud_error_labels"] = [{"label": "interoperator_overlap_trip"}]
        return 200, body

    def _patch(self, journey_id: str, body: Any) -> tuple[int, Any]:
        problems = patch_problems(body) if isinstance(body, dict) else ["not an object"]
        if problems:
            return 400, {"error": {"data": ", ".join(problems)}}
        if journey_id not in self.journeys:
            return 404, {"code": 404, "error": "Not found"}
        if self.statuses[journey_id] != "validation_error":
            return 409, {"error": "only a journey in validation_error can be updated"}
        self.journeys[journey_id] = {**self.journeys[journey_id], **body}
        self.patched[journey_id] = body
        self.statuses[journey_id] = "pending"
        return 200, {}

    def _cancel(self, journey_id: str, body: Any) -> tuple[int, Any]:
        if (
            not isinstance(body, dict)
            or set(body) - {"code", "message"}
            or not re.fullmatch(r"[0-9A-Za-z_-]{0,32}", str(body.get("code")))
            or len(str(body.get("message", ""))) > 512
        ):
            return 400, {"error": "bad cancel body"}
        if journey_id not in self.journeys:
            return 404, {"code": 404, "error": "Not found"}
        self.cancelled[journey_id] = body
        self.statuses[journey_id] = "canceled"
        return 200, {}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                status, answer = registry.answer(
                    self.command, self.path, self.headers.get("Authorization"), body
                )
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve()

            def do_POST(self) -> None:
                self._serve()

            def do_PATCH(self) -> None:
                self._serve()

            def log_message(self, format: str, *args: object) -> None:
                return

        return Handler
