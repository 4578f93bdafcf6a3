"""Shell: the registry outbox — every trip attested to the RPC by the service itself, durably.

Each recorded trip gets one `rpc_journey` row (queued when the recorder stores the trip; a
sweep also queues any trip the recorder's wake-up missed, e.g. across a restart). What the row
needs next is decided from the row alone, so a restart (or a second sender on the same
database) resumes where the last one stopped:

- queued: sent `send_delay` after the passenger's estimated arrival, before the registry's
  24 h; our rules first (`rpc_rules.not_sent_reason`) — a journey that breaks one is stored
  `not_sent` with its reason. 201 and 409 (already there) are stored as sent (`pending`);
  422 as `terms_violation_error` with its `terms_violation_error_details`; 400 as
  `validation_error` with the registry's message. Network errors, 429 and 5xx are retried with
  exponential backoff and jitter; past 24 h without an answer the journey is `expired`.
- sent: its status is read once an hour after sending (to catch `validation_error` while it can
  still be fixed) and again 48 h after the trip, when it is final (stored with `final`).
- `validation_error` and fixable (see `fixable`): sent again by PATCH once its data changed.
- cancel asked (`cancel_journey`, e.g. an operator's fraud review): `POST …/cancel` if the
  registry has it, else stored `canceled` without a call.

A journey's `incentives[]` are the campaigns' ledger (`money`) of its month up to its day, the
ledger payouts pay from: caps and budgets count journeys in pickup order, so later trips never
change an earlier journey's amounts. The ledgers are worked out once per pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog
from sqlmodel import Session, col, select

from dispatcher.model import LineId, Network
from line_service.authority.campaigns import Campaign, Incentive, Ledger
from line_service.authority.money import trip_money
from line_service.authority.rpc_client import PATCH_FIELDS, Outcome, Result, RpcClient
from line_service.authority.rpc_export import SKIP_FLAGGED, journey_of, skip_reason
from line_service.authority.rpc_rules import not_sent_reason
from line_service.authority.schemas import send_within_hours
from line_service.storage.party_store import PartyStore
from line_service.storage.rpc_outbox_table import RpcJourneyRecord
from line_service.storage.store import Store, TripRecord

log = structlog.get_logger(__name__)

QUEUED, NOT_SENT, EXPIRED = "queued", "not_sent", "expired"
PENDING, CANCELED = "pending", "canceled"
VALIDATION_ERROR, TERMS_VIOLATION = "validation_error", "terms_violation_error"
REGISTRY_STATUSES = (
    "fraud_error",
    "anomaly_error",
    "validation_error",
    "acquisition_error",
    "normalization_error",
    "ok",
    "canceled",
    "pending",
    "unknown",
    "terms_violation_error",
)
STATUSES = (QUEUED, NOT_SENT, EXPIRED, *REGISTRY_STATUSES)
SEND_WINDOW = timedelta(hours=send_within_hours())  # 24 h: later, the registry refuses it
FINAL_AFTER = timedelta(hours=48)  # the registry's status no longer changes
EARLY_CHECK = timedelta(hours=1)  # a first look, while a validation_error can be fixed
FIX_LOOK_EVERY = timedelta(minutes=10)  # a journey in validation_error: its data looked at again
SWEEP_BACK = timedelta(hours=72)  # trips this recent are queued if they have no row
CANCEL_CODE = "fraud"
DUE_BATCH = 100  # rows worked per pass
NOT_CONFIGURED = "registry not configured (CARPOOL_RPC_URL)"


class JourneyStatuses(Protocol):
    """The read side others use (e.g. payouts): a journey's registry status, or None."""

    def status_of(self, operator_journey_id: str) -> str | None:
        """The journey's status (a registry status, or queued / not_sent / expired)."""
        ...


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter: attempt n waits a random share of first·2ⁿ⁻¹ (capped)."""

    first: timedelta = timedelta(seconds=30)
    most: timedelta = timedelta(minutes=30)

    def delay(self, attempts: int, draw: float) -> timedelta:
        """The wait after `attempts` failures; `draw` in [0, 1) (half to all of the step)."""
        step: timedelta = min(self.first * (2 ** max(attempts - 1, 0)), self.most)
        return step * (0.5 + draw / 2)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class RpcOutbox:
    """The `rpc_journey` rows: queueing, reading, cancelling (synchronous: worker threads)."""

    def __init__(
        self,
        store: Store,
        network: Network,
        clock: Callable[[], datetime],
        send_delay: timedelta = timedelta(minutes=10),
        campaigns: Sequence[Campaign] | None = None,
    ) -> None:
        self.store = store
        self.network = network
        self.clock = clock
        self.send_delay = send_delay
        self.parties = PartyStore(store.engine)
        if campaigns is None:
            from line_service.authority.campaigns_file import default_campaigns

            campaigns = default_campaigns(network)
        self.campaigns = list(campaigns)
        self._ledgers: dict[date, Ledger] = {}

    def forget_ledgers(self) -> None:
        """A new pass: trips were recorded or reviewed since the ledgers were worked out."""
        self._ledgers = {}

    def incentives_of(self, trip: TripRecord) -> list[Incentive]:
        """The campaigns' incentives of a journey (its month's ledger up to its local day)."""
        line = self.network.line(LineId(trip.line_id))
        zone = ZoneInfo(line.timezone if line else "Europe/Paris")
        day = _utc(trip.picked_up_at).astimezone(zone).date()
        ledger = self._ledgers.get(day)
        if ledger is None:
            money = trip_money(self.store, self.network, self.campaigns, day.replace(day=1), day)
            ledger = self._ledgers[day] = money.ledger
        return ledger.incentives.get(trip.id, [])

    def queue_new(self) -> int:
        """Queue every recent trip that has no row yet; how many were queued."""
        now = self.clock()
        since = now - SWEEP_BACK
        with Session(self.store.engine) as session:
            known = select(RpcJourneyRecord.journey_id).where(
                col(RpcJourneyRecord.trip_at) >= since - timedelta(hours=1)
            )
            trips = session.exec(
                select(TripRecord).where(
                    col(TripRecord.picked_up_at) >= since, col(TripRecord.id).not_in(known)
                )
            ).all()
            for trip in trips:
                session.add(self._row_of(trip, now))
            session.commit()
        if trips:
            log.info("rpc.queued", journeys=len(trips))
        return len(trips)

    def _row_of(self, trip: TripRecord, now: datetime) -> RpcJourneyRecord:
        reason = skip_reason(trip, self.network)
        if reason == SKIP_FLAGGED:
            reason = f"{reason}: {trip.flags}"
        row = RpcJourneyRecord(
            journey_id=trip.id,
            line_id=trip.line_id,
            trip_at=_utc(trip.picked_up_at),
            status=QUEUED if reason is None else NOT_SENT,
            reason=reason or "",
            next_at=None if reason else max(now, _utc(trip.arrival_at) + self.send_delay),
            updated_at=now,
        )
        return row

    def resume_parked(self) -> int:
        """Journeys held while no registry was configured are due now; how many."""
        now = self.clock()
        with Session(self.store.engine) as session:
            rows = session.exec(
                select(RpcJourneyRecord).where(
                    RpcJourneyRecord.status == QUEUED, RpcJourneyRecord.reason == NOT_CONFIGURED
                )
            ).all()
            for row in rows:
                row.reason, row.next_at, row.updated_at = "", now, now
                session.add(row)
            session.commit()
        return len(rows)

    def due(self, limit: int = DUE_BATCH) -> list[RpcJourneyRecord]:
        """Rows with something to do now, the most urgent first."""
        with Session(self.store.engine) as session:
            rows = session.exec(
                select(RpcJourneyRecord)
                .where(col(RpcJourneyRecord.next_at) <= self.clock())
                .order_by(col(RpcJourneyRecord.next_at))
                .limit(limit)
            ).all()
            return list(rows)

    def save(self, row: RpcJourneyRecord) -> None:
        """Store one row as the sender left it, unless a cancel arrived meanwhile."""
        with Session(self.store.engine) as session:
            current = session.get(RpcJourneyRecord, row.journey_id)
            if current is not None and current.cancel_code and not row.cancel_code:
                row.cancel_code, row.cancel_message = current.cancel_code, current.cancel_message
                row.next_at = self.clock()
            row.updated_at = self.clock()
            session.merge(row)
            session.commit()

    def trip(self, journey_id: str) -> TripRecord | None:
        """The trip behind a journey (its data as it is now)."""
        with Session(self.store.engine) as session:
            return session.get(TripRecord, journey_id)

    def status_of(self, operator_journey_id: str) -> str | None:
        """The journey's status (a registry status, or queued / not_sent / expired), or None."""
        with Session(self.store.engine) as session:
            row = session.get(RpcJourneyRecord, operator_journey_id)
            return None if row is None else row.status

    def is_final(self, operator_journey_id: str) -> bool:
        """Whether the journey's status was read at the registry 48 h after the trip."""
        with Session(self.store.engine) as session:
            row = session.get(RpcJourneyRecord, operator_journey_id)
            return row is not None and row.final

    def get(self, operator_journey_id: str) -> RpcJourneyRecord | None:
        """The journey's row, or None."""
        with Session(self.store.engine) as session:
            return session.get(RpcJourneyRecord, operator_journey_id)

    def cancel_journey(self, operator_journey_id: str, reason: str) -> bool:
        """Queue the journey's cancellation (fraud); False when no such trip is known."""
        now = self.clock()
        with Session(self.store.engine) as session:
            row = session.get(RpcJourneyRecord, operator_journey_id)
            if row is None:
                trip = session.get(TripRecord, operator_journey_id)
                if trip is None:
                    return False
                row = self._row_of(trip, now)
            row.cancel_code, row.cancel_message = CANCEL_CODE, reason[:512] or None
            row.next_at, row.updated_at = now, now
            session.add(row)
            session.commit()
        log.info("rpc.cancel_queued", journey_id=operator_journey_id)
        return True

    def journeys(
        self, status: str | None, line_id: str | None = None, limit: int = 100
    ) -> list[RpcJourneyRecord]:
        """Rows with that status (any when None), the latest trips first."""
        query = select(RpcJourneyRecord)
        if status is not None:
            query = query.where(RpcJourneyRecord.status == status)
        if line_id is not None:
            query = query.where(RpcJourneyRecord.line_id == line_id)
        query = query.order_by(col(RpcJourneyRecord.trip_at).desc()).limit(limit)
        with Session(self.store.engine) as session:
            return list(session.exec(query).all())

    def counts(
        self, line_id: str | None = None, first: datetime | None = None, end: datetime | None = None
    ) -> Counter[str]:
        """How many journeys are in each status (of a line, of trips in [first, end))."""
        return journey_counts(self.store, line_id, first, end)


def journey_counts(
    store: Store,
    line_id: str | None = None,
    first: datetime | None = None,
    end: datetime | None = None,
) -> Counter[str]:
    """How many journeys are in each status (of a line, of trips in [first, end))."""
    query = select(RpcJourneyRecord.status)
    if line_id is not None:
        query = query.where(RpcJourneyRecord.line_id == line_id)
    if first is not None:
        query = query.where(col(RpcJourneyRecord.trip_at) >= first)
    if end is not None:
        query = query.where(col(RpcJourneyRecord.trip_at) < end)
    with Session(store.engine) as session:
        return Counter(session.exec(query).all())


def with_adults(journey: dict[str, Any], parties: PartyStore) -> dict[str, Any]:
    """The journey with `over_18` for each occupant who said so by SMS (MAJEUR OUI/NON)."""
    identities = [journey[role]["identity"] for role in ("driver", "passenger")]
    adults = parties.adult_by_key([identity["identity_key"] for identity in identities])
    for identity in identities:
        if identity["identity_key"] in adults:
            identity["over_18"] = adults[identity["identity_key"]]
    return journey


def fixable(row: RpcJourneyRecord, journey: dict[str, Any], now: datetime) -> bool:
    """A journey in `validation_error` is fixed by PATCH when: the registry has it, the trip
    started under 24 h ago (the registry's window for updates), and what the trip's data gives
    now differs from what was sent in a field PATCH can change (an operator corrected it)."""
    if row.status != VALIDATION_ERROR or row.sent_at is None:
        return False
    if now >= _utc(row.trip_at) + SEND_WINDOW:
        return False
    sent = json.loads(row.payload) if row.payload else {}
    return any(sent.get(key) != journey.get(key) for key in PATCH_FIELDS)


class RpcSender:
    """The background task: works the due rows against the registry, then sleeps `poll`."""

    def __init__(
        self,
        outbox: RpcOutbox,
        client: RpcClient | None,
        poll: timedelta = timedelta(seconds=30),
        backoff: Backoff = Backoff(),
        draw: Callable[[], float] = random.random,
        active: Callable[[], bool] = lambda: True,
    ) -> None:
        """`active` says whether this process works the outbox now: in a cluster, one process
        at a time does (the owner of the network's first line), so that no journey is sent
        twice by two processes at once."""
        self.outbox = outbox
        self.client = client
        self.active = active
        self.poll = poll
        self.backoff = backoff
        self.draw = draw
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """A trip was recorded: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Queue and send until cancelled; a failing database or registry is retried."""
        if self.client is not None:
            with contextlib.suppress(Exception):  # the loop below retries the database anyway
                await asyncio.to_thread(self.outbox.resume_parked)
        while True:
            try:
                if await self.tick() >= DUE_BATCH:
                    continue  # more is due: no wait
            except Exception as exc:
                log.error("rpc.outbox_failed", error=str(exc)[:300])
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll.total_seconds())

    async def tick(self) -> int:
        """Queue new trips, then do what every due row needs; how many rows were worked."""
        if not self.active():
            return 0
        await asyncio.to_thread(self.outbox.queue_new)
        self.outbox.forget_ledgers()
        rows = await asyncio.to_thread(self.outbox.due)
        for row in rows:
            try:
                await self._work(row)
            except Exception as exc:  # one bad row never holds the others back
                log.error("rpc.journey_failed", journey_id=row.journey_id, error=str(exc)[:300])
                row.attempts += 1
                row.reason = f"internal error: {type(exc).__name__}"
                row.next_at = self.outbox.clock() + self.backoff.delay(row.attempts, self.draw())
            await asyncio.to_thread(self.outbox.save, row)
        return len(rows)

    async def _work(self, row: RpcJourneyRecord) -> None:
        now = self.outbox.clock()
        if row.cancel_code and row.status != CANCELED:
            await self._cancel(row, now)
        elif row.sent_at is None and row.status == QUEUED:
            await self._send(row, now)
        elif row.status == VALIDATION_ERROR and row.sent_at is not None:
            await self._fix(row, now)
        elif row.status == VALIDATION_ERROR:
            await self._send_again(row, now)
        elif row.sent_at is not None:
            await self._check(row, now)
        else:
            row.next_at = None

    def _retry(self, row: RpcJourneyRecord, result: Result, now: datetime) -> None:
        row.attempts += 1
        row.reason = result.detail or f"HTTP {result.status}"
        row.next_at = now + self.backoff.delay(row.attempts, self.draw())
        log.warning("rpc.retry_later", journey_id=row.journey_id, reason=row.reason)

    def _journey(self, row: RpcJourneyRecord) -> tuple[dict[str, Any] | None, str | None]:
        trip = self.outbox.trip(row.journey_id)
        if trip is None:
            return None, "trip no longer stored"
        reason = skip_reason(trip, self.outbox.network)
        if reason is not None:
            return None, reason
        journey = journey_of(trip, self.outbox.network, incentives=self.outbox.incentives_of(trip))
        return with_adults(journey, self.outbox.parties), None

    async def _send(self, row: RpcJourneyRecord, now: datetime) -> None:
        journey, reason = await asyncio.to_thread(self._journey, row)
        if journey is not None:
            reason = not_sent_reason(journey, now)
        if journey is None or reason is not None:
            row.status, row.reason, row.next_at = NOT_SENT, reason or "", None
            if reason and reason.startswith("expired"):
                row.status = EXPIRED
            return
        if self.client is None:  # looked at again only when it would expire
            row.reason = NOT_CONFIGURED
            row.next_at = max(now + self.poll, _utc(row.trip_at) + SEND_WINDOW)
            return
        result = await self.client.send(journey)
        if result.outcome in (Outcome.CREATED, Outcome.ALREADY_THERE):
            row.status, row.sent_at, row.attempts = PENDING, now, 0
            row.payload = json.dumps(journey, sort_keys=True)
            row.reason = "already registered (409)" if result.status == 409 else ""
            row.next_at = min(now + EARLY_CHECK, _utc(row.trip_at) + FINAL_AFTER)
        elif result.outcome is Outcome.UNREACHABLE or result.status in (401, 403):
            if now + self.backoff.first >= _utc(row.trip_at) + SEND_WINDOW:
                row.status, row.reason, row.next_at = EXPIRED, "24 h passed unanswered", None
            else:
                self._retry(row, result, now)
        elif result.status == 422:
            row.status, row.next_at = TERMS_VIOLATION, None
            row.reason = ", ".join(str(term) for term in result.terms)
            row.details = json.dumps(result.body.get("error", {}).get("data", {}), sort_keys=True)
        else:  # 400: the registry did not store it; sent again once the trip's data changes
            row.status, row.payload = VALIDATION_ERROR, json.dumps(journey, sort_keys=True)
            row.reason = result.detail[:500] or f"HTTP {result.status}"
            row.next_at = min(now + FIX_LOOK_EVERY, _utc(row.trip_at) + SEND_WINDOW)
        log.info("rpc.sent", journey_id=row.journey_id, status=row.status, reason=row.reason)

    async def _send_again(self, row: RpcJourneyRecord, now: datetime) -> None:
        """A journey the registry refused (400) is posted again once its data changed."""
        if now >= _utc(row.trip_at) + SEND_WINDOW:
            row.next_at = None  # too late: stays refused
            return
        journey, _ = await asyncio.to_thread(self._journey, row)
        if journey is None or json.dumps(journey, sort_keys=True) == row.payload:
            row.next_at = min(now + FIX_LOOK_EVERY, _utc(row.trip_at) + SEND_WINDOW)
            return
        row.status, row.reason = QUEUED, ""
        await self._send(row, now)

    async def _fix(self, row: RpcJourneyRecord, now: datetime) -> None:
        if now >= _utc(row.trip_at) + SEND_WINDOW:
            await self._check(row, now)  # too late to fix: only the final status is left
            return
        journey, _ = await asyncio.to_thread(self._journey, row)
        if journey is None or self.client is None or not fixable(row, journey, now):
            row.next_at = min(now + FIX_LOOK_EVERY, _utc(row.trip_at) + SEND_WINDOW)
            return
        result = await self.client.patch(journey)
        if result.outcome is Outcome.PATCHED:
            row.status, row.reason, row.attempts = PENDING, "updated (PATCH)", 0
            row.payload = json.dumps(journey, sort_keys=True)
            row.next_at = min(now + EARLY_CHECK, _utc(row.trip_at) + FINAL_AFTER)
        elif result.outcome is Outcome.UNREACHABLE:
            self._retry(row, result, now)
        else:
            row.reason = f"update refused: {result.detail[:200] or result.status}"
            row.next_at = now + FIX_LOOK_EVERY
        log.info("rpc.patched", journey_id=row.journey_id, outcome=result.outcome.value)

    async def _check(self, row: RpcJourneyRecord, now: datetime) -> None:
        if self.client is None:
            row.next_at = now + self.poll
            return
        result = await self.client.status(row.journey_id)
        if result.outcome is Outcome.UNREACHABLE:
            self._retry(row, result, now)
            return
        final = now >= _utc(row.trip_at) + FINAL_AFTER
        if result.outcome is Outcome.FOUND:
            status = str(result.body.get("status"))
            row.status = status if status in REGISTRY_STATUSES else "unknown"
            kept = {
                key: result.body[key]
                for key in (
                    "fraud_error_labels",
                    "anomaly_error_details",
                    "terms_violation_details",
                )
                if result.body.get(key)
            }
            row.details = json.dumps(kept, sort_keys=True) if kept else row.details
        elif result.outcome is Outcome.NOT_FOUND:
            row.reason = "the registry does not know it (404)"
            row.status = "acquisition_error" if final else row.status
        row.checked_at, row.attempts, row.final = now, 0, final
        if final:
            row.next_at = None
        elif row.status == VALIDATION_ERROR:
            row.next_at = now  # look at its data for a fix at once
        else:
            row.next_at = _utc(row.trip_at) + FINAL_AFTER
        log.info("rpc.checked", journey_id=row.journey_id, status=row.status, final=final)

    async def _cancel(self, row: RpcJourneyRecord, now: datetime) -> None:
        if row.sent_at is None:
            row.status, row.reason, row.next_at = CANCELED, "cancelled before it was sent", None
            return
        if self.client is None:
            row.next_at = now + self.poll
            return
        result = await self.client.cancel(
            row.journey_id, row.cancel_code or CANCEL_CODE, row.cancel_message
        )
        if result.outcome is Outcome.CANCELLED:
            row.status, row.reason, row.attempts = CANCELED, row.cancel_message or "", 0
            row.next_at = max(now, _utc(row.trip_at) + FINAL_AFTER)
        elif result.outcome is Outcome.UNREACHABLE:
            self._retry(row, result, now)
        elif result.outcome is Outcome.NOT_FOUND:
            row.status, row.reason, row.next_at = CANCELED, "the registry does not know it", None
        else:
            row.reason = f"cancel refused: {result.detail[:200] or result.status}"
            row.next_at = None
        log.info("rpc.cancelled", journey_id=row.journey_id, outcome=result.outcome.value)
