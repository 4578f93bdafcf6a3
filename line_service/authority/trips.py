"""Shell: validated rides become trip records — distance, money, identities, anti-abuse flags.

A request that reaches PICKED_UP by CODE_VALIDATED is a trip. The engine's listener only queues
a draft (pure arithmetic on the request and its line); a task stores it off the engine, where
the national registry's anti-abuse rules are applied against the trips already stored: under
1 km (API v3.4; 2 km before), more than 4 trips a person a day, the same driver/passenger pair
twice within 30 minutes. Such trips are kept, flagged, paid nothing and never exported.
Validations that look staged (`validation_checks`) are flagged too and held for an operator.

Money follows proof: a driver who cannot be identified, or who is the rider, is paid nothing
(`unpaid_reason`). Counted once: the line's per-trip amount goes to the car run (its first
journey), the per-passenger amount to each journey.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog
from sqlmodel import Session, col, select

from dispatcher.effects import Effect, SaveRequest
from dispatcher.events import Event
from dispatcher.model import Line, LineId, Network, StopId
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest
from dispatcher.state import DispatcherState
from line_service.authority.driver_identity import (
    Driver,
    identify_driver,
    phone_in_ref,
    unpaid_reason,
)
from line_service.authority.driver_journeys import distance_km
from line_service.authority.schemas import min_distance_m
from line_service.authority.validation_checks import ReviewRules, Validation, held_flags
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
__all__ = ["phone_in_ref"]  # kept here for the rooms that read drivers' numbers


@dataclass(frozen=True, slots=True)
class Identity:
    """What the registry gets of a person: an opaque id, a hashed key and a truncated number."""

    ref: str
    phone_trunc: str
    identity_key: str


def identity_of(phone: str, ref: str | None = None, last_name: str = "") -> Identity:
    """The identity of an E.164 number: the key hashes "<phone>-<LAST NAME>" (empty when the
    person gave none)."""
    key = hashlib.sha256(f"{phone}-{last_name}".encode()).hexdigest()
    return Identity(ref=ref or f"u-{key[:24]}", phone_trunc=phone[:-2], identity_key=key)


class Person(Protocol):
    """A person an identity is made of (see `line_service.authority.identities`)."""

    @property
    def phone(self) -> str: ...

    @property
    def last_name(self) -> str: ...


class Identities(Protocol):
    """Who a driver's ref is, and a rider's number with what they gave (a database read)."""

    def driver(self, ref: str) -> Person | None: ...

    def rider(self, phone: str) -> Person: ...


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
    driver_compensation_cents: int  # per-trip + per-passenger part: the run's first journey
    passenger_contribution_cents: int
    unpaid_reason: str | None = None  # own ride, or no identified driver: paid nothing
    per_trip_cents: int = 0  # the share of the compensation that belongs to the car run
    origin_position: tuple[float, float] | None = None
    nearest_sign_m: int | None = None
    passenger_phone: str | None = None  # never stored with the trip (its identity is)

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
    identify: Callable[[str], Driver | None] = identify_driver,
    speed_kmh: float = AVERAGE_SPEED_KMH,
) -> TripDraft | None:
    """The trip a validated request makes, or None when it is not one (or its stops are gone).

    `identify` is the one function that says who drove (`driver_identity.identify_driver`).
    """
    if request.state is not RequestState.PICKED_UP or request.cause is not Cause.CODE_VALIDATED:
        return None
    origin, destination = line.stop(request.stop_id), line.stop(request.destination_id)
    if origin is None or destination is None or not request.driver_ref:
        return None
    distance_m = round(abs(destination.km - origin.km) * 1000)
    money = line.compensation
    who = identify(request.driver_ref)
    phone = None if who is None else who.phone
    signs = [sign.distance_upstream_m for sign in origin.signs]
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
        unpaid_reason=unpaid_reason(who, request.phone),
        per_trip_cents=money.driver_per_trip_cents,
        origin_position=(origin.lat, origin.lon),
        nearest_sign_m=min(signs) if signs else None,
        passenger_phone=request.phone,
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

    def __init__(
        self, store: Store, network: Network | None = None, rules: ReviewRules | None = None
    ) -> None:
        self._store = store
        self._network = network  # positions of earlier stops (the speed check needs them)
        self._rules = rules or ReviewRules()

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
            flags += self._held(draft, same_day)
            run_paid = any(t.operator_trip_id == run_id for t in same_day)
            record = _record(draft, run_id, flags, run_paid)
            session.add(record)
            session.commit()
            session.refresh(record)
            return record

    def _held(self, draft: TripDraft, same_day: list[TripRecord]) -> tuple[str, ...]:
        """The suspicions about this validation (`validation_checks`)."""
        earlier = [
            Validation(t.origin_id, self._position(t.line_id, t.origin_id), _utc(t.picked_up_at))
            for t in same_day
            if t.driver_ref == draft.driver_ref
        ]
        this = Validation(draft.origin_id, draft.origin_position, draft.picked_up_at)
        return held_flags(
            this, draft.requested_at, draft.nearest_sign_m, earlier, distance_km, self._rules
        )

    def _position(self, line_id: str, stop_id: str) -> tuple[float, float] | None:
        line = None if self._network is None else self._network.line(LineId(line_id))
        stop = None if line is None else line.stop(StopId(stop_id))
        return None if stop is None else (stop.lat, stop.lon)

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


def _record(draft: TripDraft, run_id: str, flags: tuple[str, ...], run_paid: bool) -> TripRecord:
    passenger, driver = draft.passenger, draft.driver
    # Counted once: a later passenger of a car run brings only the per-passenger amount.
    amount = draft.driver_compensation_cents - (draft.per_trip_cents if run_paid else 0)
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
        driver_compensation_cents=0 if flags or draft.unpaid_reason else amount,
        passenger_contribution_cents=draft.passenger_contribution_cents,
        flags=",".join(flags),
        unpaid_reason=draft.unpaid_reason,
        operator_class=draft.operator_class,
    )


class TripRecorder:
    """Engine listener + task: queues drafts at once, stores them in order, retries forever."""

    def __init__(
        self,
        network: Network,
        book: TripBook,
        identify: Callable[[str], Driver | None] = identify_driver,
        max_retry_delay: float = 30.0,
        identities: Identities | None = None,
        on_recorded: Callable[[], None] = lambda: None,
    ) -> None:
        self._network = network
        self._book = book
        self._identify = identify
        self._identities = identities
        self._on_recorded = on_recorded
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
        return draft_trip(line, effect.request, effect.previous_state, self._identify)

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
                    draft = await asyncio.to_thread(self._identified, draft)
                    trip = await asyncio.to_thread(self._book.record, draft)
                except Exception as exc:
                    log.error("trip.record_failed", error=str(exc)[:300], retry_in=delay)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self._max_retry_delay)
                    continue
                break
            self.recorded += 1
            self._on_recorded()
            log.info(
                "trip.recorded",
                request_id=draft.request_id,
                distance_m=trip.distance_m,
                flags=trip.flags or None,
                operator_class=trip.operator_class,
                fallback_dispatched=trip.fallback_dispatched,
            )

    def _identified(self, draft: TripDraft) -> TripDraft:
        """The draft with its occupants' identities as the database vouches for them."""
        if self._identities is None:
            return draft
        driver = self._identities.driver(draft.driver_ref)
        phone = draft.passenger_phone
        rider = None if phone is None else self._identities.rider(phone)
        if driver is None:
            unpaid = draft.unpaid_reason
        else:  # a number the database vouches for (an SMS driver's): the driver is identified
            unpaid = unpaid_reason(Driver(key=draft.driver_ref, phone=driver.phone), phone)
        return replace(
            draft,
            driver=draft.driver
            if driver is None
            else identity_of(driver.phone, None, driver.last_name),
            passenger=draft.passenger
            if rider is None
            else identity_of(rider.phone, None, rider.last_name),
            unpaid_reason=unpaid,
        )
