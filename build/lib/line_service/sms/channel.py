"""Shell: the SMS channel — inbound texts become events, request changes become texts.

Inbound: a MessageSid is handled once (its answer is stored and given again to Twilio's
retries, and concurrent retries wait for the first); the sender's number is normalised to
E.164, rate-limited, and the body parsed by `sms_gateway.commands`. Outbound: the engine calls
`SmsNotifier.notify` after commit; the text goes to the provider's queue, never blocking.
"""

from __future__ import annotations

import asyncio
import functools
from dataclasses import dataclass
from datetime import timedelta

import structlog

from dispatcher.effects import Effect, SaveRequest
from dispatcher.events import Actor, CodeValidated, Event, RideCancelled, RideRequested
from dispatcher.model import Network
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest, Source
from line_service.dispatch.device_gateway import new_request_ids
from line_service.dispatch.engine import Clock, Engine
from line_service.settings import Settings
from line_service.storage.sms_store import SmsStore
from line_service.storage.store import Store
from sms_gateway import commands, replies
from sms_gateway.console_sender import ConsoleSender
from sms_gateway.phones import phone_hash, to_e164
from sms_gateway.rate_limit import RateLimit, Verdict
from sms_gateway.sender import OutgoingSms, SmsSender

log = structlog.get_logger(__name__)

SUBMIT_TIMEOUT_SECONDS = 5.0
INBOUND_PATH = "/sms/twilio"
STATUS_PATH = "/sms/twilio/status"
RIDER_OWN_CAUSES = frozenset({Cause.RIDER_CANCELLED, Cause.RIDER_DEPARTED})


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
        if request.source.channel is Channel.SMS and request.cause in RIDER_OWN_CAUSES:
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
        sms_store: SmsStore,
        sender: SmsSender,
        clock: Clock,
    ) -> None:
        self.settings = settings
        self.network = network
        self.engine = engine
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

    async def run(self) -> None:
        """The provider's delivery loop."""
        await self.sender.run()

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
        verdict = self._limit.check(phone, self.clock())
        if verdict is not Verdict.ALLOWED:
            log.warning("sms.rate_limited", phone_hash=self.hash(phone), verdict=verdict.value)
            text = replies.RATE_LIMITED if verdict is Verdict.REFUSED else None
            return Answer(text, "rate_limited")
        command = commands.parse(body, self.network)
        name = type(command).__name__
        log.info("sms.received", phone_hash=self.hash(phone), command=name, length=len(body))
        try:
            return Answer(await self._perform(command, message_sid, phone), name)
        except TimeoutError:
            log.error("sms.engine_timeout", sid=message_sid, command=name)
            return Answer(replies.UNAVAILABLE, name, remember=False)

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
            case commands.Help():
                return replies.HELP if command.understood else replies.NOT_UNDERSTOOD

    async def _submit(self, event: Event) -> list[Effect]:
        return await asyncio.wait_for(self.engine.submit(event), SUBMIT_TIMEOUT_SECONDS)

    async def _ride(self, command: commands.AskRide, message_sid: str, phone: str) -> str:
        request_id, code = new_request_ids()
        source = Source(Channel.SMS, message_sid)
        effects = await self._submit(
            RideRequested(
                request_id=request_id,
                line_id=command.line_id,
                stop_id=command.stop_id,
                destination_id=command.destination_id,
                seats=1,
                source=source,
                code_candidate=code,
                phone=phone,
            )
        )
        request = _saved(effects) or self.engine.state.request_by_source(source)
        if request is None:
            return replies.NOT_UNDERSTOOD
        if request.state is RequestState.REFUSED and request.cause is Cause.ALREADY_WAITING:
            waiting = self.engine.state.waiting_for_phone(phone)
            if waiting is not None:
                return replies.already_waiting(self.network, waiting)
        return replies.ride_outcome(self.network, request)

    async def _cancel(self, phone: str, departed: bool) -> str:
        waiting = self.engine.state.waiting_for_phone(phone)
        if waiting is None:
            return replies.NOTHING_WAITING
        event = RideCancelled(
            line_id=waiting.line_id, actor=Actor.RIDER, departed=departed, request_id=waiting.id
        )
        if _saved(await self._submit(event)) is None:
            return replies.NOTHING_WAITING
        return replies.DEPARTED if departed else replies.CANCELLED

    async def _validate(self, code: str, phone: str) -> str:
        state = self.engine.state
        found = next(
            (
                request
                for line in self.network.lines
                if (request := state.request_by_code(line.id, code)) is not None
            ),
            None,
        )
        if found is None:
            return replies.code_unknown(code)
        if found.phone == phone:
            return replies.OWN_CODE
        event = CodeValidated(found.line_id, code, driver_ref=f"sms:{self.hash(phone)}")
        if _saved(await self._submit(event)) is None:
            return replies.code_unknown(code)
        return replies.CODE_VALIDATED


def _saved(effects: list[Effect]) -> RideRequest | None:
    return next((e.request for e in effects if isinstance(e, SaveRequest)), None)


def build_sms_channel(
    settings: Settings, network: Network, store: Store, engine: Engine, clock: Clock
) -> SmsChannel:
    """The SMS channel for these settings, plugged into the engine (notifier) and the store."""
    sms_store = SmsStore(store.engine)
    sender: SmsSender
    if settings.sms_provider == "twilio":
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
        sender = TwilioSender(account, on_sent=functools.partial(_sent, sms_store, clock))
    else:
        sender = ConsoleSender()
    channel = SmsChannel(settings, network, engine, sms_store, sender, clock)
    engine.notifier = SmsNotifier(network, sender)
    store.phone_hasher = channel.hash
    return channel


def _sent(sms_store: SmsStore, clock: Clock, message_sid: str, status: str) -> None:
    task = asyncio.get_running_loop().run_in_executor(
        None, sms_store.record_status, message_sid, status, None, clock()
    )
    task.add_done_callback(_log_failure)


def _log_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("sms.status_failed", error=str(task.exception())[:200])
