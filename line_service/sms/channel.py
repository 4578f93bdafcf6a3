"""Shell: the SMS channel — inbound texts become events, request changes become texts.

Inbound: a MessageSid is handled once (its answer is stored and given again to Twilio's
retries, and concurrent retries wait for the first); the sender's number is normalised to
E.164, rate-limited, and the body parsed by `sms_gateway.commands`. Outbound: the engine calls
`SmsNotifier.notify` after commit; the text goes to the provider's queue, never blocking.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from dispatcher.events import Actor
from dispatcher.model import Line, Network, StopId
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest, Source
from line_service.abuse.code_guesses import Locked
from line_service.abuse.gate import AbuseGate
from line_service.dispatch.engine import Clock, Engine
from line_service.dispatch.intake import Accepted, Intake
from line_service.estimates.estimator import WaitEstimator
from line_service.estimates.wait_estimate import (
    WaitEstimate,
    announced_driver_minutes,
    whole_minutes,
)
from line_service.settings import Settings
from line_service.sms.attestation import TripLinks, give, link_trip, vouch
from line_service.sms.opt_outs import OptOuts
from line_service.storage.party_store import PartyStore
from line_service.storage.sms_store import SmsStore
from sms_gateway import commands, replies
from sms_gateway.console_sender import ConsoleSender
from sms_gateway.phones import phone_hash, to_e164
from sms_gateway.rate_limit import RateLimit, Verdict
from sms_gateway.sender import OutgoingSms, SmsSender

log = structlog.get_logger(__name__)

NextDriver = Callable[[Line, StopId, StopId], datetime | None]
"""When the soonest announced driver passes a stop towards a destination (blocking)."""


@dataclass(frozen=True, slots=True)
class WaitOutlook:
    """What a waiting rider is told to expect, in whole minutes (None: nothing to say)."""

    wait_minutes: int | None
    driver_minutes: int | None  # an announced driver coming within the expected wait


INBOUND_PATH = "/sms/twilio"
STATUS_PATH = "/sms/twilio/status"
RIDER_OWN_CAUSES = frozenset({Cause.RIDER_CANCELLED, Cause.RIDER_DEPARTED})
REPLIED_CHANNELS = frozenset({Channel.SMS, Channel.VOICE})
"""Channels whose riders cancel by SMS (ANNULER, PARTI): the webhook's reply already told them."""


@dataclass(frozen=True, slots=True)
class Answer:
    """What to text back, and whether to remember it for Twilio's retries."""

    reply: str | None
    command: str
    remember: bool = True


class SmsNotifier:
    """The engine's RiderNotifier: texts riders about later changes of their request."""

    def __init__(self, network: Network, sender: SmsSender) -> None:
        self._network = network
        self._sender = sender

    def notify(self, request: RideRequest) -> None:
        """Queue the text for this change, if the rider is to be told."""
        if request.phone is None:
            return
        if request.source.channel in REPLIED_CHANNELS and request.cause in RIDER_OWN_CAUSES:
            return  # the rider's own ANNULER/PARTI was answered in the webhook reply
        text = replies.notification(self._network, request)
        if text is not None:
            self._sender.send(OutgoingSms(request.phone, text, request.id))


class SmsChannel:
    """Answers inbound texts; owns the provider, the rate limit and the number hashing."""

    def __init__(
        self,
        settings: Settings,
        network: Network,
        engine: Engine,
        intake: Intake,
        sms_store: SmsStore,
        sender: SmsSender,
        clock: Clock,
        opt_outs: OptOuts,
        abuse: AbuseGate,
        estimates: WaitEstimator | None = None,
        parties: PartyStore | None = None,
        trip_links: TripLinks | None = None,
        next_driver: NextDriver | None = None,
    ) -> None:
        self.settings = settings
        self.next_driver = next_driver
        self.abuse = abuse
        self.parties = parties
        self.trip_links = trip_links
        self.estimates = estimates
        self.network = network
        self.engine = engine
        self.intake = intake
        self.opt_outs = opt_outs
        self.store = sms_store
        self.sender = sender
        self.clock = clock
        self._salt = settings.phone_hash_salt.get_secret_value()
        self._limit = RateLimit(
            settings.sms_rate_limit_count,
            timedelta(seconds=settings.sms_rate_limit_window_seconds),
        )
        self._inflight: dict[str, asyncio.Future[str | None]] = {}

    @property
    def auth_token(self) -> str:
        """The Twilio auth token signatures are checked with ("" = webhook disabled)."""
        return self.settings.twilio_auth_token.get_secret_value()

    def url(self, path: str) -> str:
        """The public URL Twilio calls for `path` (what signatures are computed over)."""
        return self.settings.public_url.rstrip("/") + path

    def hash(self, phone: str) -> str:
        """The salted hash kept instead of a number."""
        return phone_hash(phone, self._salt)

    def admit(self, phone: str) -> Verdict:
        """The one abuse policy of riders' numbers (SMS and phone calls): may `phone` ask now?"""
        return self._limit.check(phone, self.clock())

    async def run(self) -> None:
        """Read back who wrote STOP, then run the provider's delivery loop."""
        try:
            self.opt_outs.load(await asyncio.to_thread(self.store.opted_out))
        except Exception as exc:
            log.error("sms.opt_outs_unavailable", error=str(exc)[:200])
        await self.sender.run()

    async def follow_opt_outs(self, every_seconds: float) -> None:
        """Read the stored STOP list again and again (a cluster: a STOP another process took
        holds here within `every_seconds`)."""
        while True:
            await asyncio.sleep(every_seconds)
            try:
                self.opt_outs.replace(await asyncio.to_thread(self.store.opted_out))
            except Exception as exc:  # the list in memory stays as it was
                log.warning("sms.opt_outs_unread", error=str(exc)[:200])

    async def handle(self, message_sid: str, sender: str, body: str) -> str | None:
        """The answer to one inbound SMS (None = answer nothing); idempotent per MessageSid."""
        running = self._inflight.get(message_sid)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._inflight[message_sid] = future
        try:
            try:
                stored = await asyncio.to_thread(self.store.reply_for, message_sid)
            except Exception as exc:
                log.error("sms.store_unavailable", sid=message_sid, error=str(exc)[:200])
                future.set_result(replies.UNAVAILABLE)
                return replies.UNAVAILABLE
            if stored is not None:
                log.info("sms.duplicate", sid=message_sid)
                future.set_result(stored or None)
                return stored or None
            answer = await self._answer(message_sid, sender, body)
            if answer.remember:
                await self._remember(message_sid, sender, answer)
            future.set_result(answer.reply)
            return answer.reply
        finally:
            if not future.done():
                future.cancel()
            del self._inflight[message_sid]

    async def _remember(self, message_sid: str, sender: str, answer: Answer) -> None:
        try:
            await asyncio.to_thread(
                self.store.remember,
                message_sid,
                self.hash(sender),
                answer.command,
                answer.reply or "",
                self.clock(),
            )
        except Exception as exc:
            log.error("sms.remember_failed", sid=message_sid, error=str(exc)[:200])

    async def _answer(self, message_sid: str, sender: str, body: str) -> Answer:
        phone = to_e164(sender)
        if phone is None:
            log.info("sms.bad_sender", sender_hash=self.hash(sender))
            return Answer(replies.BAD_NUMBER, "bad_sender")
        verdict = self.admit(phone)
        if verdict is not Verdict.ALLOWED:
            log.warning("sms.rate_limited", phone_hash=self.hash(phone), verdict=verdict.value)
            text = replies.RATE_LIMITED if verdict is Verdict.REFUSED else None
            return Answer(text, "rate_limited")
        command = commands.parse(body, self.network)
        name = type(command).__name__
        log.info("sms.received", phone_hash=self.hash(phone), command=name, length=len(body))
        if isinstance(command, commands.OptOut):
            await self._store_opt_out(phone, opted_out=True)
            return Answer(replies.OPTED_OUT, name)
        await self._store_opt_out(phone, opted_out=False)
        limited = await self._limited(command, phone)
        if limited is not None:
            return Answer(limited or None, "limited")
        try:
            return Answer(await self._perform(command, message_sid, phone) or None, name)
        except TimeoutError:
            log.error("sms.engine_timeout", sid=message_sid, command=name)
            return Answer(replies.UNAVAILABLE, name, remember=False)

    async def _limited(self, command: commands.Command, phone: str) -> str | None:
        """A ride request past its rate: its one text ("" = silence), or None (go on).

        Drivers' codes are limited in `_validate`, which knows whether the code was right."""
        if not isinstance(command, commands.AskRide):
            return None
        identity = self.abuse.phone_identity(phone)
        wait = await self.abuse.admit_request(identity)
        if wait is None:
            return None
        if self.abuse.first_refusal(identity, "request", wait):
            return replies.requests_limited(wait.total_seconds())
        return ""

    async def _store_opt_out(self, phone: str, opted_out: bool) -> None:
        """STOP: no more texts to `phone`; any other message from it: texts again."""
        if opted_out:
            hashed: str | None = self.opt_outs.add(phone)
            log.info("sms.opted_out", phone_hash=hashed)
        else:
            hashed = self.opt_outs.remove(phone)
            if hashed is None:
                return
            log.info("sms.opted_in", phone_hash=hashed)
        try:
            if opted_out:
                await asyncio.to_thread(self.store.opt_out, hashed or "", self.clock())
            else:
                await asyncio.to_thread(self.store.opt_in, hashed or "")
        except Exception as exc:
            log.error("sms.opt_out_not_stored", error=str(exc)[:200])

    async def _perform(self, command: commands.Command, message_sid: str, phone: str) -> str:
        network = self.network
        match command:
            case commands.AskRide():
                return await self._ride(command, message_sid, phone)
            case commands.NeedDestination():
                return replies.need_destination(network, command.line_id, command.stop_id)
            case commands.NoRideFrom():
                return replies.no_ride_from(network, command.line_id, command.stop_id)
            case commands.UnknownStop():
                return replies.unknown_stop(command.written)
            case commands.Cancel():
                return await self._cancel(phone, departed=False)
            case commands.Departed():
                return await self._cancel(phone, departed=True)
            case commands.DriverCode():
                return await self._validate(command.code, phone)
            case commands.OptOut():
                return replies.OPTED_OUT  # answered before: here for exhaustiveness
            case commands.Help():
                return replies.HELP if command.understood else replies.NOT_UNDERSTOOD
            case commands.GiveName() | commands.GiveAdult() | commands.LinkTrip():
                return await self._attestation(command, phone)
            case commands.Terms():
                return replies.TERMS
            case commands.Here():
                return await self._here(phone)

    async def _attestation(
        self, command: commands.GiveName | commands.GiveAdult | commands.LinkTrip, phone: str
    ) -> str:
        ref, now = f"sms:{self.hash(phone)}", self.clock()
        match command:
            case commands.GiveName():
                return await give(self.parties, ref, phone, now, last_name=command.last_name)
            case commands.GiveAdult():
                return await give(self.parties, ref, phone, now, adult=command.adult)
            case commands.LinkTrip():
                return await link_trip(self.trip_links, command.code, phone)

    async def _ride(self, command: commands.AskRide, message_sid: str, phone: str) -> str:
        coming = command.coming_in_minutes
        outcome = await self.intake.request_ride(
            line_id=command.line_id,
            stop_id=command.stop_id,
            destination_id=command.destination_id,
            seats=1,
            source=Source(Channel.SMS, message_sid),
            phone=phone,
            arriving_at=None if coming is None else self.clock() + timedelta(minutes=coming),
        )
        if not isinstance(outcome, Accepted):
            return replies.NOT_UNDERSTOOD
        request = outcome.request
        if request.state is RequestState.REFUSED and request.cause is Cause.ALREADY_WAITING:
            waiting = self.engine.state.waiting_for_phone(phone)
            if waiting is not None:
                return replies.already_waiting(self.network, waiting)
        if request.state is RequestState.ANNOUNCED:
            line = self.network.line(request.line_id)
            grace = line.tuning.announce_grace if line else timedelta()
            minutes = whole_minutes(request.deadline_at - grace - self.clock())
            return replies.announced(self.network, request, minutes)
        if request.state is not RequestState.WAITING:
            return replies.ride_outcome(self.network, request)
        outlook = await self.expected_wait(request)
        return replies.ride_outcome(
            self.network,
            request,
            wait_minutes=outlook.wait_minutes,
            driver_minutes=outlook.driver_minutes,
        )

    async def _here(self, phone: str) -> str:
        coming = self.engine.state.waiting_for_phone(phone)
        if coming is not None and coming.is_waiting:
            return replies.arrived(self.network, coming)
        if coming is None:
            return replies.HERE_NOTHING
        outcome = await self.intake.arrived(coming)
        if not isinstance(outcome, Accepted):
            return replies.HERE_NOTHING
        return replies.arrived(self.network, outcome.request)

    async def expected_wait(self, request: RideRequest) -> WaitOutlook:
        """The rider's expected wait, and an announced driver coming within it ("Je passe"),
        read in a thread (the line's history and the announced trips are database reads); the
        phone line asks it too."""
        line = self.network.line(request.line_id)
        if line is None:
            return WaitOutlook(None, None)
        try:
            estimate, driver_at = await asyncio.to_thread(self._outlook_of, line, request)
        except Exception as exc:
            log.warning("sms.no_wait_estimate", reason=str(exc)[:200])
            return WaitOutlook(None, None)
        driver_in = None if driver_at is None else driver_at - self.clock()
        return WaitOutlook(
            None if estimate is None else whole_minutes(estimate.median),
            announced_driver_minutes(estimate, driver_in),
        )

    def _outlook_of(
        self, line: Line, request: RideRequest
    ) -> tuple[WaitEstimate | None, datetime | None]:
        stop, destination = request.stop_id, request.destination_id
        estimate = (
            None if self.estimates is None else self.estimates.estimate_now(line, stop, destination)
        )
        driver_at = None if self.next_driver is None else self.next_driver(line, stop, destination)
        return estimate, driver_at

    async def _cancel(self, phone: str, departed: bool) -> str:
        waiting = self.engine.state.waiting_for_phone(phone)
        if waiting is None:
            return replies.NOTHING_WAITING
        outcome = await self.intake.cancel(waiting, Actor.RIDER, departed=departed)
        if not isinstance(outcome, Accepted):
            return replies.NOTHING_WAITING
        return replies.DEPARTED if departed else replies.CANCELLED

    async def _validate(self, code: str, phone: str) -> str:
        """A driver's code, charged to the sender and every line it probes before it is looked
        up (`line_service.abuse`); looked up only on the lines still open to the sender."""
        identity = self.abuse.phone_identity(phone)
        every_line = tuple(line.id for line in self.network.lines)
        ticket = await self.abuse.begin_guess(identity, every_line)
        if isinstance(ticket, Locked):
            if self.abuse.first_refusal(identity, "code", ticket.retry_after):
                return replies.codes_locked(ticket.retry_after.total_seconds())
            return ""
        holders = [
            request
            for request in self.engine.state.requests_holding(code.strip())
            if request.line_id in ticket.lines
        ]
        if not holders:
            await self.abuse.guess_was_wrong(ticket)
            if len(ticket.lines) < len(self.network.lines):
                return replies.code_unknown_or_suspended(code)
            return replies.code_unknown(code)
        if len(holders) > 1:
            # Only requests restored from before codes were unique over the network: never
            # guess which rider the driver carries (the charge stays: no rider was found).
            log.warning("sms.code_ambiguous", lines=[request.line_id for request in holders])
            return replies.CODE_AMBIGUOUS
        [found] = holders
        if found.phone == phone:
            await self.abuse.guess_was_right(ticket)
            return replies.OWN_CODE
        driver_ref = f"sms:{self.hash(phone)}"
        await vouch(self.parties, driver_ref, phone, self.clock())
        outcome = await self.intake.validate(found.line_id, code, driver_ref=driver_ref)
        if not isinstance(outcome, Accepted):
            await self.abuse.guess_was_wrong(ticket)
            return replies.code_unknown(code)
        await self.abuse.guess_was_right(ticket)
        return replies.CODE_VALIDATED


def build_sms_sender(settings: Settings, sms_store: SmsStore, clock: Clock) -> SmsSender:
    """The provider these settings name: Twilio (delivery statuses stored) or the console."""
    if settings.sms_provider != "twilio":
        return ConsoleSender()
    # Imported here: twilio (and requests) are a tenth of a second the console provider and
    # a restart's dispatch need not wait for.
    from sms_gateway.twilio_sender import TwilioAccount, TwilioSender

    account = TwilioAccount(
        account_sid=settings.twilio_account_sid,
        auth_token=settings.twilio_auth_token.get_secret_value(),
        from_number=settings.twilio_from,
        api_base=settings.twilio_api_base,
        status_callback=settings.public_url.rstrip("/") + STATUS_PATH,
    )
    return TwilioSender(account, on_sent=functools.partial(_sent, sms_store, clock))


def _sent(sms_store: SmsStore, clock: Clock, message_sid: str, status: str) -> None:
    task = asyncio.get_running_loop().run_in_executor(
        None, sms_store.record_status, message_sid, status, None, clock()
    )
    task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("sms.status_failed", error=str(task.exception())[:200])
