"""Shell: personal data (RGPD) — the retention job, and access and erasure for one number.

Where a rider's or driver's number can sit in the database:
- `ride_request.phone`: in clear while a request is WAITING, ANNOUNCED or FALLBACK (the store
  drops it, keeping a salted hash in `rider_phone_hash`, when the request ends any other way;
  a FALLBACK request keeps it until the retention job runs);
- `ride_request.driver_ref` / `trip.driver_ref`: `sms:<salted hash>` for drivers who validated by
  SMS, or the number itself (`+33…`, `tel:+33…`) when the app sent it;
- `trip`: the registry's identity of each occupant (`*_phone_trunc` = the number without its last
  two digits, `*_identity_key` = unsalted SHA-256, `passenger_ref` = `u-` + part of that key);
- `sms_inbound.phone_hash`: salted hash of the sender. `sms_delivery` holds no number;
- `account.phone`: the verified number of a rider's or driver's account (in clear: requests
  carry it), `account_token` the hashes of its tokens, `sign_in_challenge` the codes texted to
  it (by salted hash); `ride_request.driver_ref` / `trip.driver_ref` = `account:<id>` for a
  driver who validated in the app; `driver_trip.driver_ref` the same for trips a driver
  announced ("Je passe");
- `voice_step.phone_hash`: salted hash of the caller of each answered step of a phone call;
- `abuse_charge`: the abuse limits' counts (wrong drivers' codes, ride requests), keyed by
  `phone:<salted hash>`, `account:<id>` or a client address; deleted by this job once older
  than the longest budget window (24 h), so kept at most that plus a day;
- `party`: the number behind an `sms:<hash>` ref (and a last name, adult or not, if given by
  SMS), kept to attest trips to the national registry;
- `rpc_journey.payload`: the journey last sent to the registry (truncated numbers, keys).

Retention: anything older than the retention period that holds a number in clear, or a value
anyone can recompute from a number (unsalted keys), is erased; salted hashes stay (statistics).
An account that has not signed in for that long and holds no live token is deleted.
Erasure of one number: every trace goes, and its salted hashes are replaced by one random
pseudonym, so statistics still count one distinct person but nothing links back to the number.
"""

from __future__ import annotations

import asyncio
import secrets
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import func, inspect
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col, or_, select

from line_service.abuse.code_guesses import IDENTITY_KEY
from line_service.abuse.gate import ACCOUNT, PHONE
from line_service.abuse.request_rates import IDENTITY as REQUEST_IDENTITY
from line_service.authority.trips import identity_of, phone_in_ref
from line_service.settings import Settings
from line_service.storage.abuse_ledger import AbuseChargeRecord, DatabaseLedger, stored_key
from line_service.storage.account_tables import (
    AccountRecord,
    AccountTokenRecord,
    SignInChallengeRecord,
)
from line_service.storage.driver_trip_table import DriverTripRecord
from line_service.storage.money_tables import BannedDriverRecord
from line_service.storage.party_store import PartyRecord
from line_service.storage.rpc_outbox_table import RpcJourneyRecord
from line_service.storage.sms_store import SmsDeliveryRecord, SmsInboundRecord, SmsOptOutRecord
from line_service.storage.store import (
    PHONE_KEEPING_STATES,
    PhoneHashRecord,
    RequestEventRecord,
    RideRequestRecord,
    Store,
    TripRecord,
    as_utc,
)
from line_service.storage.voice_store import VoiceStepRecord
from sms_gateway.phones import phone_hash

log = structlog.get_logger(__name__)

RETENTION_EVERY = timedelta(days=1)
RETENTION_RETRY = timedelta(hours=1)
HASHED_DRIVER = "hash:"  # a driver_ref that was a number, pseudonymised
HASHED_PASSENGER = "h-"  # a trip passenger_ref derived from a number, pseudonymised
ERASED_PASSENGER = "x-"  # a trip passenger_ref after an erasure request


class NotACarpoolDatabaseError(Exception):
    """The database holds none of the service's tables (wrong CARPOOL_DATABASE_URL?)."""


@dataclass(frozen=True, slots=True)
class PhoneKeys:
    """Every form under which one E.164 number may be stored."""

    phone: str
    hash: str  # salted: rider_phone_hash, sms_inbound, sms:/hash: driver refs
    identity_key: str  # the registry's unsalted key (trips)
    identity_ref: str  # trip passenger_ref before retention
    pseudonym_ref: str  # trip passenger_ref after retention
    account_ids: tuple[str, ...] = ()  # the number's account (found in the database)

    @property
    def driver_refs(self) -> tuple[str, ...]:
        """The driver_ref values that designate this number."""
        return (
            self.phone,
            f"tel:{self.phone}",
            f"sms:{self.hash}",
            HASHED_DRIVER + self.hash,
            *(f"account:{account_id}" for account_id in self.account_ids),
        )

    @property
    def passenger_refs(self) -> tuple[str, ...]:
        """The trip passenger_ref values that designate this number."""
        return (self.identity_ref, self.pseudonym_ref)


def keys_for(phone: str, salt: str) -> PhoneKeys:
    """The stored forms of an E.164 number, with the service's hash salt."""
    identity = identity_of(phone)
    return PhoneKeys(
        phone=phone,
        hash=phone_hash(phone, salt),
        identity_key=identity.identity_key,
        identity_ref=identity.ref,
        pseudonym_ref=HASHED_PASSENGER + phone_hash(identity.ref, salt),
    )


def _with_account(engine: Engine, tables: set[str], keys: PhoneKeys) -> PhoneKeys:
    """The keys with the id of the number's account, when it has one."""
    if AccountRecord.__tablename__ not in tables:
        return keys
    with Session(engine) as session:
        found = session.exec(
            select(AccountRecord.id).where(AccountRecord.phone == keys.phone)
        ).all()
    return replace(keys, account_ids=tuple(found))


def _account_rows(session: Session, tables: set[str], keys: PhoneKeys) -> list[SQLModel]:
    """The number's account, its tokens, the sign-in codes texted to it and the trips it
    announced as a driver."""
    if AccountRecord.__tablename__ not in tables:
        return []
    ids = list(keys.account_ids)
    refs = [f"account:{account_id}" for account_id in ids]
    return [
        *session.exec(
            select(DriverTripRecord).where(col(DriverTripRecord.driver_ref).in_(refs))
        ).all(),
        *session.exec(select(AccountRecord).where(col(AccountRecord.id).in_(ids))).all(),
        *session.exec(
            select(AccountTokenRecord).where(col(AccountTokenRecord.account_id).in_(ids))
        ).all(),
        *session.exec(
            select(SignInChallengeRecord).where(SignInChallengeRecord.phone_hash == keys.hash)
        ).all(),
    ]


def existing_tables(engine: Engine) -> set[str]:
    """The names of the tables present in the database now."""
    return set(inspect(engine).get_table_names())


def _require_service_tables(tables: set[str]) -> None:
    if RideRequestRecord.__tablename__ not in tables:
        raise NotACarpoolDatabaseError("no ride_request table: is CARPOOL_DATABASE_URL right?")


def _plain(record: SQLModel) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in type(record).model_fields:
        value = getattr(record, name)
        out[name] = as_utc(value).isoformat() if isinstance(value, datetime) else value
    return out


def export(engine: Engine, keys: PhoneKeys, now: datetime) -> dict[str, Any]:
    """Everything the database holds about one number (the answer to an access request)."""
    tables = existing_tables(engine)
    _require_service_tables(tables)
    keys = _with_account(engine, tables, keys)
    with Session(engine) as session:
        account = [
            {"table": type(record).__tablename__, **_plain(record)}
            for record in _account_rows(session, tables, keys)
        ]
        for item in account:
            if "token_hash" in item:
                item["token_hash"] = "(SHA-256 of the token; the token itself is not kept)"
            if "code_hash" in item:
                item["code_hash"] = "(hash of the code; the code itself is not kept)"
        rider_ids = set(
            session.exec(
                select(RideRequestRecord.id).where(RideRequestRecord.phone == keys.phone)
            ).all()
        )
        if PhoneHashRecord.__tablename__ in tables:
            rider_ids |= set(
                session.exec(
                    select(PhoneHashRecord.request_id).where(
                        PhoneHashRecord.phone_hash == keys.hash
                    )
                ).all()
            )
        driver_ids = set(
            session.exec(
                select(RideRequestRecord.id).where(
                    col(RideRequestRecord.driver_ref).in_(keys.driver_refs)
                )
            ).all()
        )
        requests = []
        for row in session.exec(
            select(RideRequestRecord)
            .where(col(RideRequestRecord.id).in_(rider_ids | driver_ids))
            .order_by(col(RideRequestRecord.created_at))
        ).all():
            history = session.exec(
                select(RequestEventRecord)
                .where(RequestEventRecord.request_id == row.id)
                .order_by(col(RequestEventRecord.id))
            ).all()
            item = _plain(row)
            item["role"] = "rider" if row.id in rider_ids else "driver"
            item["history"] = [_plain(event) for event in history]
            requests.append(item)
        sms = []
        if SmsInboundRecord.__tablename__ in tables:
            sms = [
                _plain(message)
                for message in session.exec(
                    select(SmsInboundRecord)
                    .where(SmsInboundRecord.phone_hash == keys.hash)
                    .order_by(col(SmsInboundRecord.received_at))
                ).all()
            ]
        calls = []
        if VoiceStepRecord.__tablename__ in tables:
            calls = [
                _plain(step)
                for step in session.exec(
                    select(VoiceStepRecord)
                    .where(VoiceStepRecord.phone_hash == keys.hash)
                    .order_by(col(VoiceStepRecord.answered_at))
                ).all()
            ]
        opted_out = None
        if SmsOptOutRecord.__tablename__ in tables:
            found = session.get(SmsOptOutRecord, keys.hash)
            opted_out = None if found is None else _plain(found)
        banned = None
        if BannedDriverRecord.__tablename__ in tables:
            ban = session.get(BannedDriverRecord, f"tel:{keys.phone}")
            banned = None if ban is None else _plain(ban)
        charges = [_plain(charge) for charge in _abuse_charges(session, tables, keys)]
        trips = []
        if TripRecord.__tablename__ in tables:
            trips = [
                _plain(trip)
                for trip in session.exec(
                    select(TripRecord)
                    .where(_trip_of(keys, rider_ids))
                    .order_by(col(TripRecord.picked_up_at))
                ).all()
            ]
    return {
        "phone": keys.phone,
        "exported_at": now.isoformat(),
        "requests": requests,
        "sms_inbound": sms,
        "voice_steps": calls,
        "sms_delivery": [],
        "sms_opt_out": opted_out,
        "trips": trips,
        "account": account,
        "banned_driver": banned,
        "party": _parties(engine, tables, keys),
        "abuse_charges": charges,
        "notes": [
            "account: the rider's or driver's account of this number, its tokens (hashes "
            "only) and the sign-in codes texted to it in the last hour (hashes only).",
            "sms_inbound lists the texts received from this number (found by its salted hash).",
            f"sms_delivery: statuses of outbound texts are kept by MessageSid only, with no link "
            f"to a number ({_count(engine, tables, SmsDeliveryRecord)} statuses stored in all).",
            "sms_opt_out: when this number wrote STOP (null if it did not).",
            "banned_driver: the operator's ban of this driver (null if none); an erasure "
            "does not lift it (fraud prevention).",
            "party: the number kept to attest trips to the national registry, with what was "
            "given by SMS (last name, adult or not) and when.",
            "voice_steps lists the steps of phone calls from this number, with what was said.",
            "abuse_charges: the last day's wrong drivers' codes and ride requests counted "
            "against this number or its account (the anti-guessing budgets), deleted at most a "
            "day after their window ends.",
            "The SMS provider (Twilio) keeps its own message logs: ask it separately.",
        ],
    }


def _count(engine: Engine, tables: set[str], model: type[SmsDeliveryRecord]) -> int:
    if model.__tablename__ not in tables:
        return 0
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def _trip_of(keys: PhoneKeys, rider_ids: set[str]) -> Any:
    return or_(
        col(TripRecord.passenger_ref).in_(keys.passenger_refs),
        col(TripRecord.passenger_identity_key) == keys.identity_key,
        col(TripRecord.driver_ref).in_(keys.driver_refs),
        col(TripRecord.driver_identity_key) == keys.identity_key,
        col(TripRecord.request_id).in_(rider_ids),
    )


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure changed: rows per place, and requests still open in the service."""

    counts: dict[str, int]
    open_requests: int


def erase(engine: Engine, keys: PhoneKeys, pseudonym: str | None = None) -> Erasure:
    """Erase every trace of one number; its hashes become one random pseudonym. Idempotent."""
    tables = existing_tables(engine)
    _require_service_tables(tables)
    keys = _with_account(engine, tables, keys)
    alias = pseudonym or secrets.token_hex(16)
    counts: Counter[str] = Counter()
    open_requests = 0
    with Session(engine) as session:
        for row in _account_rows(session, tables, keys):
            session.delete(row)
            counts[str(type(row).__tablename__)] += 1
        rider_ids: set[str] = set()
        for row in session.exec(
            select(RideRequestRecord).where(RideRequestRecord.phone == keys.phone)
        ).all():
            open_requests += row.state in {state.value for state in PHONE_KEEPING_STATES}
            rider_ids.add(row.id)
            row.phone = None
            session.add(row)
            session.merge(PhoneHashRecord(request_id=row.id, phone_hash=alias))
            counts["ride_request.phone"] += 1
        for row in session.exec(
            select(RideRequestRecord).where(col(RideRequestRecord.driver_ref).in_(keys.driver_refs))
        ).all():
            row.driver_ref = _erased_driver(row.driver_ref or "", alias)
            session.add(row)
            counts["ride_request.driver_ref"] += 1
        if PhoneHashRecord.__tablename__ in tables:
            for hashed in session.exec(
                select(PhoneHashRecord).where(PhoneHashRecord.phone_hash == keys.hash)
            ).all():
                rider_ids.add(hashed.request_id)
                hashed.phone_hash = alias
                session.add(hashed)
                counts["rider_phone_hash"] += 1
        if SmsInboundRecord.__tablename__ in tables:
            for message in session.exec(
                select(SmsInboundRecord).where(SmsInboundRecord.phone_hash == keys.hash)
            ).all():
                message.phone_hash = alias
                session.add(message)
                counts["sms_inbound"] += 1
        if VoiceStepRecord.__tablename__ in tables:
            for step in session.exec(
                select(VoiceStepRecord).where(VoiceStepRecord.phone_hash == keys.hash)
            ).all():
                step.phone_hash = alias
                session.add(step)
                counts["voice_step"] += 1
        if SmsOptOutRecord.__tablename__ in tables:
            # The service texts only numbers that asked for a ride, and any message from the
            # number ends a STOP anyway: once its data is gone, nothing is left to text.
            stopped = session.get(SmsOptOutRecord, keys.hash)
            if stopped is not None:
                session.delete(stopped)
                counts["sms_opt_out"] += 1
        if TripRecord.__tablename__ in tables:
            for trip in session.exec(select(TripRecord).where(_trip_of(keys, rider_ids))).all():
                counts.update(_erase_trip(trip, keys, rider_ids, alias))
                counts.update(_erase_sent(session, tables, trip.id))
                session.add(trip)
        counts.update(_erase_parties(session, tables, keys))
        counts.update(_erase_abuse_charges(session, tables, keys, alias))
        session.commit()
    return Erasure(dict(counts), open_requests)


def _abuse_identities(keys: PhoneKeys) -> tuple[str, ...]:
    """The abuse limits' identities of a number: its salted hash, its account."""
    return (PHONE + keys.hash, *(ACCOUNT + account_id for account_id in keys.account_ids))


def _abuse_charges(session: Session, tables: set[str], keys: PhoneKeys) -> list[AbuseChargeRecord]:
    """The abuse limits' counts naming the number: against it, or tagged with it on a line."""
    if AbuseChargeRecord.__tablename__ not in tables:
        return []
    identities = _abuse_identities(keys)
    own = [
        stored_key(prefix + name)
        for name in identities
        for prefix in (IDENTITY_KEY, REQUEST_IDENTITY)
    ]
    return list(
        session.exec(
            select(AbuseChargeRecord)
            .where(
                or_(
                    col(AbuseChargeRecord.key).in_(own),
                    col(AbuseChargeRecord.tag).in_([stored_key(name) for name in identities]),
                )
            )
            .order_by(col(AbuseChargeRecord.at))
        ).all()
    )


def _erase_abuse_charges(
    session: Session, tables: set[str], keys: PhoneKeys, alias: str
) -> Counter[str]:
    """The number's own counts go; a line's wrong codes stay counted under the pseudonym (the
    line's budget must not fall by an erasure)."""
    counts: Counter[str] = Counter()
    identities = {stored_key(name) for name in _abuse_identities(keys)}
    for charge in _abuse_charges(session, tables, keys):
        if charge.tag in identities:
            charge.tag = PHONE + alias
            session.add(charge)
        else:
            session.delete(charge)
        counts["abuse_charge"] += 1
    return counts


def _party_query(keys: PhoneKeys) -> Any:
    return select(PartyRecord).where(
        or_(col(PartyRecord.ref) == f"sms:{keys.hash}", col(PartyRecord.phone) == keys.phone)
    )


def _parties(engine: Engine, tables: set[str], keys: PhoneKeys) -> list[dict[str, Any]]:
    """The `party` rows of one number (an access request)."""
    if PartyRecord.__tablename__ not in tables:
        return []
    with Session(engine) as session:
        return [_plain(row) for row in session.exec(_party_query(keys)).all()]


def _erase_parties(session: Session, tables: set[str], keys: PhoneKeys) -> Counter[str]:
    """Delete the `party` rows of one number."""
    erased: Counter[str] = Counter()
    if PartyRecord.__tablename__ in tables:
        for row in session.exec(_party_query(keys)).all():
            session.delete(row)
            erased["party"] += 1
    return erased


def _erase_sent(session: Session, tables: set[str], journey_id: str) -> Counter[str]:
    """Forget the body sent to the registry for one journey (its status stays)."""
    erased: Counter[str] = Counter()
    if RpcJourneyRecord.__tablename__ in tables:
        row = session.get(RpcJourneyRecord, journey_id)
        if row is not None and row.payload:
            row.payload = ""
            session.add(row)
            erased["rpc_journey.payload"] += 1
    return erased


def _erased_driver(ref: str, alias: str) -> str:
    return f"sms:{alias}" if ref.startswith("sms:") else HASHED_DRIVER + alias


def _erase_trip(trip: TripRecord, keys: PhoneKeys, rider_ids: set[str], alias: str) -> Counter[str]:
    changed: Counter[str] = Counter()
    if (
        trip.passenger_ref in keys.passenger_refs
        or trip.passenger_identity_key == keys.identity_key
        or (trip.request_id in rider_ids and trip.passenger_ref is not None)
    ):
        trip.passenger_ref = ERASED_PASSENGER + alias
        trip.passenger_phone_trunc = None
        trip.passenger_identity_key = None
        changed["trip.passenger"] += 1
    if trip.driver_ref in keys.driver_refs or trip.driver_identity_key == keys.identity_key:
        trip.driver_ref = _erased_driver(trip.driver_ref, alias)
        trip.driver_phone_trunc = None
        trip.driver_identity_key = None
        changed["trip.driver"] += 1
    return changed


def erase_expired(engine: Engine, salt: str, cutoff: datetime) -> dict[str, int]:
    """Erase numbers (and unsalted keys) stored before `cutoff`; salted hashes stay."""
    tables = existing_tables(engine)
    counts: Counter[str] = Counter()
    if RideRequestRecord.__tablename__ not in tables:
        return {}
    with Session(engine) as session:
        for row in session.exec(
            select(RideRequestRecord).where(
                col(RideRequestRecord.phone).is_not(None),
                col(RideRequestRecord.updated_at) < cutoff,
            )
        ).all():
            if row.phone is None:
                continue
            if session.get(PhoneHashRecord, row.id) is None:
                session.add(
                    PhoneHashRecord(request_id=row.id, phone_hash=phone_hash(row.phone, salt))
                )
            row.phone = None
            session.add(row)
            counts["ride_request.phone"] += 1
        for row in session.exec(
            select(RideRequestRecord).where(
                _number_like(col(RideRequestRecord.driver_ref)),
                col(RideRequestRecord.updated_at) < cutoff,
            )
        ).all():
            number = phone_in_ref(row.driver_ref or "")
            if number is not None:
                row.driver_ref = HASHED_DRIVER + phone_hash(number, salt)
                session.add(row)
                counts["ride_request.driver_ref"] += 1
        if TripRecord.__tablename__ in tables:
            for trip in session.exec(
                select(TripRecord).where(
                    col(TripRecord.picked_up_at) < cutoff,
                    or_(
                        col(TripRecord.passenger_phone_trunc).is_not(None),
                        col(TripRecord.passenger_identity_key).is_not(None),
                        col(TripRecord.driver_phone_trunc).is_not(None),
                        col(TripRecord.driver_identity_key).is_not(None),
                        col(TripRecord.passenger_ref).startswith("u-"),
                        _number_like(col(TripRecord.driver_ref)),
                    ),
                )
            ).all():
                if _expire_trip(trip, salt):
                    session.add(trip)
                    counts["trip"] += 1
        if AccountRecord.__tablename__ in tables:
            counts.update(_expire_accounts(session, cutoff))
        counts.update(_expire_attestation(session, tables, cutoff))
        session.commit()
    return dict(counts)


def _expire_accounts(session: Session, cutoff: datetime) -> Counter[str]:
    """Tokens and codes expired before `cutoff`; accounts unused since, with no token left."""
    counts: Counter[str] = Counter()
    for token in session.exec(
        select(AccountTokenRecord).where(col(AccountTokenRecord.expires_at) < cutoff)
    ).all():
        session.delete(token)
        counts["account_token"] += 1
    for challenge in session.exec(
        select(SignInChallengeRecord).where(col(SignInChallengeRecord.expires_at) < cutoff)
    ).all():
        session.delete(challenge)
        counts["sign_in_challenge"] += 1
    session.flush()
    holders = select(AccountTokenRecord.account_id)
    for account in session.exec(
        select(AccountRecord).where(
            col(AccountRecord.signed_in_at) < cutoff, col(AccountRecord.id).not_in(holders)
        )
    ).all():
        session.delete(account)
        counts["account"] += 1
    return counts


def _expire_attestation(session: Session, tables: set[str], cutoff: datetime) -> Counter[str]:
    """Parties not seen since `cutoff`, and bodies sent for trips before it, are erased."""
    erased: Counter[str] = Counter()
    if PartyRecord.__tablename__ in tables:
        for party in session.exec(
            select(PartyRecord).where(col(PartyRecord.updated_at) < cutoff)
        ).all():
            session.delete(party)
            erased["party"] += 1
    if RpcJourneyRecord.__tablename__ in tables:
        for row in session.exec(
            select(RpcJourneyRecord).where(
                col(RpcJourneyRecord.trip_at) < cutoff, col(RpcJourneyRecord.payload) != ""
            )
        ).all():
            row.payload = ""
            session.add(row)
            erased["rpc_journey.payload"] += 1
    return erased


def _number_like(column: Any) -> Any:
    """A driver_ref that may hold a number in clear (`+33…`, `tel:+33…`)."""
    return or_(column.startswith("+"), column.startswith("tel:"))


def _expire_trip(trip: TripRecord, salt: str) -> bool:
    before = (
        trip.passenger_ref,
        trip.passenger_phone_trunc,
        trip.passenger_identity_key,
        trip.driver_ref,
        trip.driver_phone_trunc,
        trip.driver_identity_key,
    )
    if trip.passenger_ref and trip.passenger_ref.startswith("u-"):
        trip.passenger_ref = HASHED_PASSENGER + phone_hash(trip.passenger_ref, salt)
    number = phone_in_ref(trip.driver_ref)
    if number is not None:
        trip.driver_ref = HASHED_DRIVER + phone_hash(number, salt)
    trip.passenger_phone_trunc = trip.passenger_identity_key = None
    trip.driver_phone_trunc = trip.driver_identity_key = None
    after = (
        trip.passenger_ref,
        trip.passenger_phone_trunc,
        trip.passenger_identity_key,
        trip.driver_ref,
        trip.driver_phone_trunc,
        trip.driver_identity_key,
    )
    return before != after


async def retention_loop(
    store: Store,
    salt: str,
    retention: timedelta,
    clock: Callable[[], datetime],
    every: timedelta = RETENTION_EVERY,
    charges_kept: timedelta | None = None,
) -> None:
    """Run the retention job now and then every `every`; a failure is logged and retried.
    With `charges_kept`, the abuse limits' counts older than that go too."""
    while True:
        now = clock()
        cutoff = now - retention
        try:
            counts = await asyncio.to_thread(erase_expired, store.engine, salt, cutoff)
            if charges_kept is not None:
                ledger = DatabaseLedger(store.engine)
                forgotten = await asyncio.to_thread(ledger.forget_before, now - charges_kept)
                counts = {**counts, "abuse_charge": forgotten}
        except Exception as exc:
            log.error("privacy.retention_failed", error=str(exc)[:200])
            wait = min(every, RETENTION_RETRY)
        else:
            log.info(
                "privacy.retention",
                cutoff=cutoff.isoformat(),
                erased=sum(counts.values()),
                **{place.replace(".", "_"): count for place, count in counts.items()},
            )
            wait = every
        await asyncio.sleep(wait.total_seconds())


async def run_retention(store: Store, settings: Settings, clock: Callable[[], datetime]) -> None:
    """The service's retention task: numbers older than CARPOOL_PHONE_RETENTION_DAYS go."""
    await retention_loop(
        store,
        settings.phone_hash_salt.get_secret_value(),
        timedelta(days=settings.phone_retention_days),
        clock,
        charges_kept=max(settings.guess_limits.window, settings.request_rates.window),
    )
