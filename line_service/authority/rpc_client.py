"""Adapter: posts journeys to the Registre de preuve de covoiturage (RPC API v3.4) with httpx.

`POST {base}/v3.4/journeys` creates one journey; 409 means it is already registered (sending
again is harmless: idempotent by `operator_journey_id`). `POST …/journeys/{id}/cancel` cancels,
`GET …/journeys/{id}` reads its status, `PATCH …/journeys/{id}` fixes one in `validation_error`.
Auth as the registry does it: an access/secret key pair is traded at `POST …/auth/access_token`
for a JWT valid 5 minutes, renewed before it ends and again on a 401 (a fixed token still works).
Transport errors, 429 and 5xx are retried with backoff; other answers are final. A journey
invalid against the package's v3.4 schema, or under 1 km (the registry's terms), is not sent.
A 422 names the broken terms: `terms_violation_error_details` is parsed into the result.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import structlog

from line_service.authority.schemas import journey_problems, min_distance_m, rpc_api_version

if TYPE_CHECKING:  # imported where a request is made: not on the service's start-up path
    import httpx

log = structlog.get_logger(__name__)

API_VERSION = rpc_api_version()
TOKEN_LIFETIME = timedelta(minutes=5)  # the registry's access_token (v3.4)
TOKEN_MARGIN = timedelta(seconds=30)  # renewed this long before it ends
PATCH_FIELDS = ("operator_trip_id", "operator_class", "incentives", "start", "end", "distance")


class Outcome(StrEnum):
    """What became of one call to the registry."""

    CREATED = "created"
    ALREADY_THERE = "already_there"
    CANCELLED = "cancelled"
    PATCHED = "patched"
    FOUND = "found"  # a status was read
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
    body: dict[str, Any] = field(default_factory=dict)  # the answer's JSON object, if any


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _expiry_of(token: str) -> datetime | None:
    """The `exp` of a JWT (unverified: only to know when to renew), or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        return datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (ValueError, KeyError, TypeError):
        return None


class AccessTokens:
    """Shell: the registry's short-lived tokens from an access/secret key pair (time injected).

    A token is asked at `POST {base}/auth/access_token` (201 `{"access_token": …}`) and kept
    until TOKEN_MARGIN before its end (its JWT `exp`, else 5 minutes after it was issued).
    """

    def __init__(
        self, access_key: str, secret_key: str, clock: Callable[[], datetime] = _utc_now
    ) -> None:
        self._keys = {"access_key": access_key, "secret_key": secret_key}
        self._clock = clock
        self._token: str | None = None
        self._until = datetime.min.replace(tzinfo=UTC)
        self.issued = 0

    def forget(self) -> None:
        """Drop the token (the registry answered 401 to it)."""
        self._token = None

    async def token(self, client: httpx.AsyncClient, base: str) -> str | None:
        """A valid token, asking a new one when needed (None when the keys are refused)."""
        import httpx

        now = self._clock()
        if self._token is not None and now < self._until - TOKEN_MARGIN:
            return self._token
        answer = await client.post(f"{base}/auth/access_token", json=self._keys)
        if answer.status_code == 429 or answer.status_code >= 500:
            raise httpx.HTTPError(f"access_token: HTTP {answer.status_code}")
        if not answer.is_success:
            log.error("rpc.token_refused", status=answer.status_code)
            self._token = None
            return None
        token = str(answer.json().get("access_token", ""))
        self._token, self.issued = token, self.issued + 1
        self._until = _expiry_of(token) or now + TOKEN_LIFETIME
        return token


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
        token: str | AccessTokens,
        client: httpx.AsyncClient | None = None,
        max_attempts: int = 5,
        first_delay: float = 0.5,
        max_delay: float = 30.0,
    ) -> None:
        self._base = base_url.rstrip("/") + "/" + API_VERSION
        self._token = token
        self._client = client or _new_client()
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
        answer = await self._call("POST", journey_id, f"{self._base}/journeys", journey)
        if isinstance(answer, Result):
            return answer
        if answer.status_code == 201 or answer.is_success:
            return Result(journey_id, Outcome.CREATED, answer.status_code, body=_json(answer))
        if answer.status_code == 409:
            return Result(journey_id, Outcome.ALREADY_THERE, 409)
        terms: tuple[TermsViolation, ...] = ()
        if answer.status_code == 422:
            try:
                terms = terms_of(answer.json())
            except ValueError:
                terms = ()
        return Result(
            journey_id,
            Outcome.REJECTED,
            answer.status_code,
            answer.text[:500],
            terms,
            _json(answer),
        )

    async def status(self, journey_id: str) -> Result:
        """The registry's view of a journey: FOUND with its JSON (`status`, …), or NOT_FOUND."""
        answer = await self._call("GET", journey_id, f"{self._base}/journeys/{journey_id}")
        if isinstance(answer, Result):
            return answer
        if answer.is_success:
            return Result(journey_id, Outcome.FOUND, answer.status_code, body=_json(answer))
        return _refused(journey_id, answer)

    async def patch(self, journey: dict[str, Any]) -> Result:
        """Send the fixable fields of a journey again (the registry had it in validation_error)."""
        journey_id = str(journey["operator_journey_id"])
        body = {key: journey[key] for key in PATCH_FIELDS if key in journey}
        url = f"{self._base}/journeys/{journey_id}"
        answer = await self._call("PATCH", journey_id, url, body)
        if isinstance(answer, Result):
            return answer
        if answer.is_success:
            return Result(journey_id, Outcome.PATCHED, answer.status_code)
        return _refused(journey_id, answer)

    async def cancel(self, journey_id: str, code: str, message: str | None = None) -> Result:
        """Cancel a registered journey (`code`: up to 32 of [0-9A-Za-z_-]; `message`: why)."""
        body: dict[str, Any] = {"code": code}
        if message:
            body["message"] = message[:512]
        url = f"{self._base}/journeys/{journey_id}/cancel"
        answer = await self._call("POST", journey_id, url, body)
        if isinstance(answer, Result):
            return answer
        if answer.is_success:
            return Result(journey_id, Outcome.CANCELLED, answer.status_code)
        return _refused(journey_id, answer)

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

    async def _headers(self, renew: bool = False) -> dict[str, str] | None:
        if isinstance(self._token, str):
            return {"Authorization": f"Bearer {self._token}"}
        if renew:
            self._token.forget()
        token = await self._token.token(self._client, self._base)
        return None if token is None else {"Authorization": f"Bearer {token}"}

    async def _call(
        self, method: str, journey_id: str, url: str, body: dict[str, Any] | None = None
    ) -> httpx.Response | Result:
        """One request with its retries; a 401 renews the token once and tries again."""
        import httpx

        answer = await self._attempts(method, journey_id, url, body, renew=False)
        renewable = isinstance(self._token, AccessTokens)
        if renewable and isinstance(answer, httpx.Response) and answer.status_code == 401:
            log.info("rpc.token_renewed_after_401", journey_id=journey_id)
            answer = await self._attempts(method, journey_id, url, body, renew=True)
        return answer

    async def _attempts(
        self,
        method: str,
        journey_id: str,
        url: str,
        body: dict[str, Any] | None,
        renew: bool,
    ) -> httpx.Response | Result:
        import httpx

        delay, detail = self._first_delay, ""
        for attempt in range(1, self._max_attempts + 1):
            try:
                headers = await self._headers(renew=renew and attempt == 1)
                if headers is None:
                    return Result(journey_id, Outcome.REJECTED, 401, "access keys refused")
                answer = await self._client.request(method, url, json=body, headers=headers)
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


def _new_client() -> httpx.AsyncClient:
    import httpx

    return httpx.AsyncClient(timeout=30.0)


def _json(answer: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object ({} when it is not one)."""
    try:
        found = answer.json()
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _refused(journey_id: str, answer: httpx.Response) -> Result:
    """A journey call the registry did not accept: NOT_FOUND on 404, else REJECTED with its text."""
    if answer.status_code == 404:
        return Result(journey_id, Outcome.NOT_FOUND, 404)
    return Result(journey_id, Outcome.REJECTED, answer.status_code, answer.text[:500])
