"""Adapter: posts journeys to the Registre de preuve de covoiturage (RPC API v3.4) with httpx.

`POST {base}/v3.4/journeys` creates one journey; 409 means it is already registered (sending
again is harmless: idempotent by `operator_journey_id`). `POST …/journeys/{id}/cancel` cancels.
Transport errors, 429 and 5xx are retried with backoff; other answers are final. A journey
invalid against the package's v3.4 schema, or under 1 km (the registry's terms), is not sent.
A 422 names the broken terms: `terms_violation_error_details` is parsed into the result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx
import structlog

from line_service.authority.schemas import journey_problems, min_distance_m, rpc_api_version

log = structlog.get_logger(__name__)

API_VERSION = rpc_api_version()


class Outcome(StrEnum):
    """What became of one call to the registry."""

    CREATED = "created"
    ALREADY_THERE = "already_there"
    CANCELLED = "cancelled"
    NOT_FOUND = "not_found"
    REJECTED = "rejected"
    UNREACHABLE = "unreachable"
    INVALID = "invalid"  # fails our schema: not sent
    BREAKS_TERMS = "breaks_terms"  # e.g. under 1 km: not sent


@dataclass(frozen=True, slots=True)
class TermsViolation:
    """One broken rule of a 422: its label and, for `too_many_trips_by_day`, the counters."""

    label: str
    metas: dict[str, int] = field(default_factory=dict)

    def __str__(self) -> str:
        counters = ", ".join(f"{key} {value}" for key, value in self.metas.items())
        return f"{self.label} ({counters})" if counters else self.label


@dataclass(frozen=True, slots=True)
class Result:
    """One call's outcome, with the registry's answer when final."""

    journey_id: str
    outcome: Outcome
    status: int | None = None
    detail: str = ""
    terms: tuple[TermsViolation, ...] = ()


def terms_of(body: Any) -> tuple[TermsViolation, ...]:
    """The `error.data.terms_violation_error_details` of a 422 body (labels alone if only they)."""
    error = body.get("error") if isinstance(body, dict) else None
    data = error.get("data") if isinstance(error, dict) else None
    if not isinstance(data, dict):
        return ()
    details = data.get("terms_violation_error_details")
    found: list[TermsViolation] = []
    for entry in details if isinstance(details, list) else []:
        if isinstance(entry, dict) and isinstance(entry.get("label"), str):
            metas = entry.get("metas")
            counters = metas.items() if isinstance(metas, dict) else ()
            found.append(
                TermsViolation(
                    entry["label"], {str(k): int(v) for k, v in counters if isinstance(v, int)}
                )
            )
    if not found:
        labels = data.get("terms_violation_labels")
        labels = labels if isinstance(labels, list) else [labels]
        found = [TermsViolation(label) for label in labels if isinstance(label, str)]
    return tuple(found)


def precheck(journey: dict[str, Any]) -> Result | None:
    """Why a journey must not be sent (invalid, or under the terms' distance), or None."""
    journey_id = str(journey.get("operator_journey_id", "?"))
    problems = journey_problems(journey)
    if problems:
        return Result(journey_id, Outcome.INVALID, None, "; ".join(problems))
    if journey["distance"] < min_distance_m():
        detail = f"distance: {journey['distance']} m is under {min_distance_m()} m"
        terms = (TermsViolation("distance_too_short"),)
        return Result(journey_id, Outcome.BREAKS_TERMS, None, detail, terms)
    return None


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
        """Register one valid journey (201 created, 409 already there, 422 broken terms)."""
        refused = precheck(journey)
        if refused is not None:
            return refused
        journey_id = str(journey["operator_journey_id"])
        answer = await self._post(journey_id, f"{self._base}/journeys", journey)
        if isinstance(answer, Result):
            return answer
        if answer.status_code == 201 or answer.is_success:
            return Result(journey_id, Outcome.CREATED, answer.status_code)
        if answer.status_code == 409:
            return Result(journey_id, Outcome.ALREADY_THERE, 409)
        terms: tuple[TermsViolation, ...] = ()
        if answer.status_code == 422:
            try:
                terms = terms_of(answer.json())
            except ValueError:
                terms = ()
        return Result(journey_id, Outcome.REJECTED, answer.status_code, answer.text[:500], terms)

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

    async def send_all(self, journeys: Iterable[dict[str, Any]]) -> list[Result]:
        """Send every journey in turn (each outcome is logged); the results, in order."""
        results = []
        for journey in journeys:
            result = await self.send(journey)
            results.append(result)
            log.info(
                "rpc.sent",
                journey_id=result.journey_id,
                outcome=result.outcome.value,
                status=result.status,
                detail=result.detail[:200] or None,
                terms=[str(violation) for violation in result.terms] or None,
            )
        return results

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
