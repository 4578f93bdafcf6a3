"""Shell: validated rides become trip records — distance, money, identities, anti-abuse flags.

A request that reaches PICKED_UP by CODE_VALIDATED is a trip. The engine's listener only queues
a draft (pure arithmetic on the request and its line); a task stores it off the engine, where
the national registry's anti-abuse rules are applied against the trips already stored: under
1 km (API v3.4; 2 km before), more than 4 trips a person a day, the same driver/passenger pair
twice within 30 minutes. Such trips are kept, flagged, paid nothing and never exported.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import structlog
from sqlmodel import Session, col, select

from dispatcher.effects import Effect, SaveRequest
from dispatcher.events import Event
from dispatcher.model import Line, Network
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest
from dispatcher.state import DispatcherState
from line_service.authority.schemas import min_distance_m
from line_service.storage.store import Store, TripRecord

log = structlog.get_logger(__name__)

MIN_DISTANCE_M = min_distance_m()  # the registry's terms, v3.4: 1 km
MAX_TRIPS_A_DAY = 4
SAME_PAIR_WINDOW = timedelta(minutes=30)
CAR_RUN_WINDOW = timedelta(minutes=10)
AVERAGE_SPEED_KMH = 60.0

FLAG_SHORT = "short_trip"
FLAG_TOO_MANY = "too_many_trips_today"
FLAG_SAME_PAIR = "same_pair_within_30_min"

_PHONE_IN_REF = re.compile(r"^(?:tel:)?(\+[1-9][0-9]{7,14})$")


@dataclass(frozen=True, slots=True)
class Identity:
    """What the registry gets of a person: an opaque id, a hashed key and a truncated number."""

    ref: str
    phone_trunc: str
    identity_key: str


def identity_of(phone: str, ref: str | None = None) -> Identity:
    """The identity of an E.164 number; no last name is known: the key hashes "<phone>-"."""
    key = hashlib.sha256(f"{phone}-".encode()).hexdigest()
    return Identity(ref=ref or f"u-{key[:24]}", phone_trunc=phone[:-2], identity_key=key)


def phone_in_ref(driver_ref: str) -> str | None:
    """The driver's E.164 number when the app sent it as `driver_ref` (`+33…` or `tel:+33…`)."""
    match = _PHONE_IN_REF.fullmatch(driver_ref.strip())
    return match.group(1) if match else None


@dataclass(frozen=True, slots=True)
class TripDraft:
    """A trip as computed from the request and its line, before the anti-abuse rules."""

    request_id: str
    line_id: str
    timezone: str
    origin_id: str
    destination_id: str
    requested_at: datetime
    picked_up_at: datetime
    arrival_at: datetime
    distance_m: int
    seats: int
    channel: str
    driver_ref: str
    driver: Identity | None
    passenger: Identity | None
    fallback_dispatched: bool
    driver_compensation_cents: int
    passenger_contribution_cents: int

    @property
    def operator_class(self) -> str:
        """RPC proof class by evidence: A operator only, B one occupant's, C both, distinct."""
        by_phone = self.channel in (Channel.SMS.value, Channel.VOICE.value)
        passenger = self.passenger if by_phone else None
        if passenger is not None and self.driver is not None:
            distinct = self.driver.identity_key != passenger.identity_key
            return "C" if distinct else "B"
        return "B" if passenger is not None or self.driver is not None else "A"


def draft_trip(
    line: Line,
    request: RideRequest,
    previous_state: RequestState | None,
    driver_phone: Callable[[str], str | None] = phone_in_ref,
    speed_kmh: float = AVERAGE_SPEED_KMH,
) -> TripDraft | None:
    """The trip a validated request makes, or None when it is not one (or its stops are gone)."""
    if request.state is not RequestState.PICKED_UP or request.cause is not Cause.CODE_VALIDATED:
        return None
    origin, destination = line.stop(request.stop_id), line.stop(request.destination_id)
    if origin is None or destination is None or not request.driver_ref:
        return None
    distance_m = round(abs(destination.km - origin.km) * 1000)
    money = line.compensation
    phone = driver_phone(request.driver_ref)
    return TripDraft(
        request_id=request.id,
        line_id=line.id,
        timezone=line.timezone,
        origin_id=origin.id,
        destination_id=destination.id,
        requested_at=request.created_at,
        picked_up_at=request.updated_at,
        arrival_at=request.updated_at + timedelta(hours=distance_m / 1000 / speed_kmh),
        distance_m=distance_m,
        seats=request.seats,
        channel=request.source.channel.value,
        driver_ref=request.driver_ref,
        # The registry gets an opaque id, never the number the driver_ref may carry.
        driver=None if phone is None else identity_of(phone),
        passenger=None if request.phone is None else identity_of(request.phone),
        fallback_dispatched=previous_state is RequestState.FALLBACK,
        driver_compensation_cents=money.driver_per_trip_cents
        + money.driver_per_passenger_cents * request.seats,
        passenger_contribution_cents=money.passenger_contribution_cents * request.seats,
    )


def abuse_flags(
    draft: TripDraft,
    passenger_trips_today: int,
    driver_runs_today: int,
    same_pair_recently: bool,
) -> tuple[str, ...]:
    """The registry's rules: counts are of the person's earlier trips that local day."""
    flags = []
    if draft.distance_m < MIN_DISTANCE_M:
        flags.append(FLAG_SHORT)
    if passenger_trips_today >= MAX_TRIPS_A_DAY or driver_runs_today >= MAX_TRIPS_A_DAY:
        flags.append(FLAG_TOO_MANY)
    if same_pair_recently:
        flags.append(FLAG_SAME_PAIR)
    return tuple(flags)


def _local_day(draft: TripDraft) -> tuple[datetime, datetime]:
    zone = ZoneInfo(draft.timezone)
    day = draft.picked_up_at.astimezone(zone).date()
    start = datetime.combine(day, time(), tzinfo=zone)
    return start, datetime.combine(day + timedelta(days=1), time(), tzinfo=zone)


class TripBook:
    """Trips in the database: recording with the anti-abuse rules, and reading back."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def record(self, draft: TripDraft) -> TripRecord:
        """Store the trip (once per request) with its flags, car run and class."""
        with Session(self._store.engine) as session:
            existing = session.exec(
                select(TripRecord).where(TripRecord.request_id == draft.request_id)
            ).first()
            if existing is not None:
                return existing
            day_start, day_end = _local_day(draft)
            same_day = list(
                session.exec(
                    select(TripRecord).where(
                        col(TripRecord.picked_up_at) >= day_start,
                        col(TripRecord.picked_up_at) < day_end,
                    )
                ).all()
            )
            run_id = self._car_run(draft, same_day)
            passenger_key = draft.passenger.ref if draft.passenger else None
            passenger_count = sum(
                1 for t in same_day if passenger_key and t.passenger_ref == passenger_key
            )
            driver_runs = {
                t.operator_trip_id
                for t in same_day
                if t.driver_ref == draft.driver_ref and t.operator_trip_id != run_id
            }
            recent_pair = any(
                passenger_key is not None
                and t.passenger_ref == passenger_key
                and t.driver_ref == draft.driver_ref
                and abs(draft.picked_up_at - _utc(t.picked_up_at)) < SAME_PAIR_WINDOW
                for t in same_day
            )
            flags = abuse_flags(draft, passenger_count, len(driver_runs), recent_pair)
            record = _record(draft, run_id, flags)
            session.add(record)
            session.commit()
            session.refresh(record)
            return record

    @staticmethod
    def _car_run(draft: TripDraft, same_day: list[TripRecord]) -> str:
        """Passengers picked up by one driver at one stop within minutes share a car run."""
        for trip in same_day:
            if (
                trip.driver_ref == draft.driver_ref
                and trip.origin_id == draft.origin_id
                and abs(draft.picked_up_at - _utc(trip.picked_up_at)) <= CAR_RUN_WINDOW
            ):
                return trip.operator_trip_id
        return uuid.uuid4().hex

    def between(self, start: datetime, end: datetime) -> list[TripRecord]:
        """Trips picked up in [start, end), oldest first."""
        with Session(self._store.engine) as session:
            rows = session.exec(
                select(TripRecord)
                .where(col(TripRecord.picked_up_at) >= start, col(TripRecord.picked_up_at) < end)
                .order_by(col(TripRecord.picked_up_at))
            ).all()
            return list(rows)


def _utc(value: datetime) -> datetime:
    """Aware UTC (SQLite hands back naive datetimes)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _record(draft: TripDraft, run_id: str, flags: tuple[str, ...]) -> TripRecord:
    passenger, driver = draft.passenger, draft.driver
    return TripRecord(
        id=uuid.uuid4().hex,
        request_id=draft.request_id,
        operator_trip_id=run_id,
        line_id=draft.line_id,
        origin_id=draft.origin_id,
        destination_id=draft.destination_id,
        requested_at=draft.requested_at,
        picked_up_at=draft.picked_up_at,
        arrival_at=draft.arrival_at,
        distance_m=draft.distance_m,
        seats=draft.seats,
        channel=draft.channel,
        driver_ref=draft.driver_ref,
        driver_phone_trunc=driver.phone_trunc if driver else None,
        driver_identity_key=driver.identity_key if driver else None,
        passenger_ref=passenger.ref if passenger else None,
        passenger_phone_trunc=passenger.phone_trunc if passenger else None,
        passenger_identity_key=passenger.identity_key if passenger else None,
        fallback_dispatched=draft.fallback_dispatched,
        driver_compensation_cents=0 if flags else draft.driver_compensation_cents,
        passenger_contribution_cents=draft.passenger_contribution_cents,
        flags=",".join(flags),
        operator_class=draft.operator_class,
    )


class TripRecorder:
    """Engine listener + task: queues drafts at once, stores them in order, retries forever."""

    def __init__(
        self,
        network: Network,
        book: TripBook,
        driver_phone: Callable[[str], str | None] = phone_in_ref,
        max_retry_delay: float = 30.0,
    ) -> None:
        self._network = network
        self._book = book
        self._driver_phone = driver_phone
        self._queue: asyncio.Queue[TripDraft] = asyncio.Queue()
        self._max_retry_delay = max_retry_delay
        self.recorded = 0

    def __call__(self, event: Event | None, effects: list[Effect], state: DispatcherState) -> None:
        """The engine listener: draft a trip for every request validated by a driver's code."""
        for effect in effects:
            if not isinstance(effect, SaveRequest):
                continue
            line = self._network.line(effect.request.line_id)
            draft = None if line is None else self._draft(line, effect)
            if draft is not None:
                self._queue.put_nowait(draft)

    def _draft(self, line: Line, effect: SaveRequest) -> TripDraft | None:
        return draft_trip(line, effect.request, effect.previous_state, self._driver_phone)

    @property
    def backlog(self) -> int:
        """Drafts not yet stored."""
        return self._queue.qsize()

    async def run(self) -> None:
        """Store drafts until cancelled; a failing database is retried, never skipped."""
        while True:
            draft = await self._queue.get()
            delay = 0.1
            while True:
                try:
                    trip = await asyncio.to_thread(self._book.record, draft)
                except Exception as exc:
                    log.error("trip.record_failed", error=str(exc)[:300], retry_in=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._max_retry_delay)
                    continue
                break
            self.recorded += 1
            log.info(
                "trip.recorded",
                request_id=draft.request_id,
                distance_m=trip.distance_m,
                flags=trip.flags or None,
                operator_class=trip.operator_class,
                fallback_dispatched=trip.fallback_dispatched,
            )
