"""Adapter: posts journeys to the Registre de preuve de covoiturage (RPC API v3.3) with httpx.

`POST {base}/v3.3/journeys` creates one journey; 409 means it is already registered (sending
again is harmless: idempotent by `operator_journey_id`). `POST …/journeys/{id}/cancel` cancels.
Transport errors, 429 and 5xx are retried with backoff; other answers are final.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import httpx
import structlog

log = structlog.get_logger(__name__)

API_VERSION = "v3.3"


class Outcome(StrEnum):
    """What became of one call to the registry."""

    CREATED = "created"
    ALREADY_THERE = "already_there"
    CANCELLED = "cancelled"
    NOT_FOUND = "not_found"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"


@dataclass(frozen=True, slots=True)
class Result:
    """One call's outcome, with the registry's answer when final."""

    journey_id: str
    outcome: Outcome
    status: int | None = None
    detail: str = ""


class RpcClient:
    """A registry client; `client` lets tests (and pooling callers) bring their own httpx."""

    def __init__(
        self,
        base_url: str,
        token: str,
        client: httpx.AsyncClient | None = None,
        max_attempts: int = 5,
        first_delay: float = 0.5,
        max_delay: float = 30.0,
    ) -> None:
        self._base = base_url.rstrip("/") + "/" + API_VERSION
        self._headers = {"Authorization": f"Bearer {token}"}
        self._client = client or httpx.AsyncClient(timeout=30.0)
        self._owns_client = client is None
        self._max_attempts = max_attempts
        self._first_delay = first_delay
        self._max_delay = max_delay

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owns_client:
            await self._client.aclose()

    async def send(self, journey: dict[str, Any]) -> Result:
        """Register one journey (201 created, 409 already there)."""
        journey_id = str(journey["operator_journey_id"])
        answer = await self._post(journey_id, f"{self._base}/journeys", journey)
        if isinstance(answer, Result):
            return answer
        if answer.status_code == 201 or answer.is_success:
            return Result(journey_id, Outcome.CREATED, answer.status_code)
        if answer.status_code == 409:
            return Result(journey_id, Outcome.ALREADY_THERE, 409)
        return Result(journey_id, Outcome.REJECTED, answer.status_code, answer.text[:500])

    async def cancel(self, journey_id: str, code: str, message: str | None = None) -> Result:
        """Cancel a registered journey (`code`: up to 32 of [0-9A-Za-z_-]; `message`: why)."""
        body: dict[str, Any] = {"code": code}
        if message:
            body["message"] = message[:512]
        answer = await self._post(journey_id, f"{self._base}/journeys/{journey_id}/cancel", body)
        if isinstance(answer, Result):
            return answer
        if answer.is_success:
            return Result(journey_id, Outcome.CANCELLED, answer.status_code)
        if answer.status_code == 404:
            return Result(journey_id, Outcome.NOT_FOUND, 404)
        return Result(journey_id, Outcome.REJECTED, answer.status_code, answer.text[:500])

    async def send_all(self, journeys: Iterable[dict[str, Any]]) -> Counter[Outcome]:
        """Send every journey in turn; count the outcomes (each one is logged)."""
        counts: Counter[Outcome] = Counter()
        for journey in journeys:
            result = await self.send(journey)
            counts[result.outcome] += 1
            log.info(
                "rpc.sent",
                journey_id=result.journey_id,
                outcome=result.outcome.value,
                status=result.status,
                detail=result.detail[:200] or None,
            )
        return counts

    async def _post(
        self, journey_id: str, url: str, body: dict[str, Any]
    ) -> httpx.Response | Result:
        delay, detail = self._first_delay, ""
        for attempt in range(1, self._max_attempts + 1):
            try:
                answer = await self._client.post(url, json=body, headers=self._headers)
            except httpx.HTTPError as exc:
                detail = f"transport: {type(exc).__name__}"
            else:
                if answer.status_code != 429 and answer.status_code < 500:
                    return answer
                detail = f"HTTP {answer.status_code}"
            if attempt < self._max_attempts:
                log.warning("rpc.retry", journey_id=journey_id, reason=detail, delay=delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._max_delay)
        return Result(journey_id, Outcome.UNREACHABLE, None, detail)
