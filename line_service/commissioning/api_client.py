"""Adapter: the operator API of a running service, as the commissioning walk calls it."""

from __future__ import annotations

from typing import Any, cast

import httpx

from line_service.commissioning.checks import TEST_MESSAGE_MINUTES, Json


class ApiError(Exception):
    """The service answered with an error, or could not be reached."""


class HttpApi:
    """`/api/v1` with an operator token (httpx, synchronous: the walk does one thing at a time)."""

    def __init__(self, base_url: str, token: str, timeout_seconds: float = 10.0) -> None:
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/api/v1",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout_seconds,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def _call(
        self, method: str, path: str, body: Json | None = None, missing_ok: bool = False
    ) -> Any:
        try:
            response = self._client.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ApiError(f"{method} {path}: {exc}") from exc
        if missing_ok and response.status_code == httpx.codes.NOT_FOUND:
            return None
        if response.is_error:
            raise ApiError(f"{method} {path}: {response.status_code} {response.text[:200]}")
        return response.json()

    def line(self, line_id: str) -> Json:
        """The line's whole picture (directions, stops, devices)."""
        return cast(Json, self._call("GET", f"/lines/{line_id}"))

    def sign(self, line_id: str, sign_id: str) -> Json:
        """One sign: asked, reported (pages and seq), online, geometry."""
        return cast(Json, self._call("GET", f"/lines/{line_id}/signs/{sign_id}"))

    def terminal(self, line_id: str, terminal_id: str) -> Json:
        """One terminal: online, screen, last test press."""
        return cast(Json, self._call("GET", f"/lines/{line_id}/terminals/{terminal_id}"))

    def post_message(self, line_id: str, sign_id: str, pages: list[list[str]]) -> Json:
        """A top-priority operator message with a short expiry (a lost clear lapses by itself)."""
        body: Json = {"pages": pages, "priority": 100, "expires_in_minutes": TEST_MESSAGE_MINUTES}
        return cast(Json, self._call("POST", f"/lines/{line_id}/signs/{sign_id}/messages", body))

    def clear_message(self, line_id: str, sign_id: str, message_id: str) -> None:
        """Withdraw the test message (already lapsed is fine)."""
        path = f"/lines/{line_id}/signs/{sign_id}/messages/{message_id}"
        self._call("DELETE", path, missing_ok=True)
