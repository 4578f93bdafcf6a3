"""Shell: the phone line — each step of a call becomes TwiML, the last one places the request.

A call walks four steps, each an action URL Twilio posts the keyed digits to:
`/voice/twilio` (welcome: key the stop's code) → `/voice/twilio/stop` (which stop; a menu when
codes share keys: `/voice/twilio/which-stop`) → `/voice/twilio/destination` (which destination,
then the request is placed through the intake, as SMS does, and the code read back twice, with
the wait to expect when the SMS channel's estimate has one).
Keys that mean nothing are asked again once (`try=2` in the URL), then the caller is told
goodbye. Each (CallSid, step URL) is answered once: its TwiML is stored and given again to
Twilio's retries. The caller's number is the rider's identity: the SMS channel's abuse policy
admits it, and the SMS channel's notifier texts it what becomes of the request (never a number
that wrote STOP).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlencode

import structlog

from dispatcher.model import Line, Stop
from dispatcher.request_machine import Cause, Channel, RequestState, RideRequest, Source
from line_service.dispatch.intake import Accepted
from line_service.sms.channel import SmsChannel
from line_service.storage.voice_store import VoiceStore
from sms_gateway import replies, voice
from sms_gateway.phones import to_e164
from sms_gateway.rate_limit import Verdict
from sms_gateway.sender import OutgoingSms

log = structlog.get_logger(__name__)

CALL_PATH = "/voice/twilio"
STOP_PATH = "/voice/twilio/stop"
WHICH_STOP_PATH = "/voice/twilio/which-stop"
DESTINATION_PATH = "/voice/twilio/destination"
LAST_TRY = 2


@dataclass(frozen=True, slots=True)
class CallStep:
    """One post of Twilio's during a call: where, with what, from whom."""

    call_sid: str
    path: str
    query: dict[str, str]
    caller: str
    digits: str

    @property
    def key(self) -> str:
        """The step's identity within its call (its action URL)."""
        return self.path + ("?" + urlencode(sorted(self.query.items())) if self.query else "")

    @property
    def attempt(self) -> int:
        """1 for the first ask of this step, 2 for the one repeat."""
        return 2 if self.query.get("try") == "2" else 1


def action(path: str, **query: str) -> str:
    """The action URL of a step (relative: Twilio resolves it against the current URL)."""
    return path + ("?" + urlencode(query) if query else "")


class VoiceChannel:
    """Answers the phone line's webhooks; every rider rule is borrowed from the SMS channel."""

    def __init__(self, sms: SmsChannel, store: VoiceStore) -> None:
        self.sms = sms
        self.store = store

    async def handle(self, step: CallStep) -> str:
        """The TwiML for one step of a call; a step answered before gets the same TwiML."""
        hashed = self.sms.hash(step.caller)
        try:
            stored = await asyncio.to_thread(self.store.answer_for, step.call_sid, step.key)
        except Exception as exc:
            log.error("voice.store_unavailable", sid=step.call_sid, error=str(exc)[:200])
            return voice.goodbye(voice.UNAVAILABLE)
        if stored is not None:
            log.info("voice.duplicate", sid=step.call_sid, step=step.key)
            return stored
        try:
            twiml = await self._answer(step)
        except TimeoutError:
            log.error("voice.engine_timeout", sid=step.call_sid, step=step.key)
            return voice.goodbye(voice.UNAVAILABLE)  # not remembered: a retry may succeed
        try:
            await asyncio.to_thread(
                self.store.remember, step.call_sid, step.key, hashed, twiml, self.sms.clock()
            )
        except Exception as exc:
            log.error("voice.remember_failed", sid=step.call_sid, error=str(exc)[:200])
        return twiml

    async def _answer(self, step: CallStep) -> str:
        phone = to_e164(step.caller)
        if phone is None:
            log.info("voice.hidden_number", sid=step.call_sid)
            return voice.goodbye(voice.HIDDEN_NUMBER)
        if step.path == CALL_PATH:
            return self._welcome(step, phone)
        if step.path == STOP_PATH:
            return self._stop_keyed(step)
        if step.path == WHICH_STOP_PATH:
            return self._stop_chosen(step)
        return await self._destination_chosen(step, phone)

    def _welcome(self, step: CallStep, phone: str) -> str:
        verdict = self.sms.admit(phone)
        log.info("voice.call", sid=step.call_sid, phone_hash=self.sms.hash(phone), verdict=verdict)
        if verdict is not Verdict.ALLOWED:
            return voice.goodbye(voice.RATE_LIMITED)
        return voice.gather(voice.WELCOME, action(STOP_PATH, **{"try": "1"}))

    def _stop_keyed(self, step: CallStep) -> str:
        found = voice.stops_keyed(self.sms.network, step.digits)
        if not found:
            return self._again(step, voice.STOP_AGAIN, action(STOP_PATH, **{"try": "2"}))
        if len(found) == 1:
            return self._ask_destination(*found[0])
        stops = [stop for _line, stop in found]
        keys = voice.keypad_digits(stops[0].code)
        return voice.gather(
            voice.stop_menu(stops),
            action(WHICH_STOP_PATH, keys=keys, **{"try": "1"}),
            voice.keys_for(len(stops)),
        )

    def _stop_chosen(self, step: CallStep) -> str:
        found = voice.stops_keyed(self.sms.network, step.query.get("keys", ""))
        index = voice.choice(step.digits, len(found))
        if index is None:
            retry = action(WHICH_STOP_PATH, keys=step.query.get("keys", ""), **{"try": "2"})
            menu = voice.stop_menu([stop for _line, stop in found]) if found else voice.WELCOME
            return self._again(step, f"{voice.CHOICE_AGAIN} {menu}", retry, len(found))
        return self._ask_destination(*found[index])

    def _ask_destination(self, line: Line, stop: Stop, attempt: int = 1) -> str:
        destinations = line.destinations_from(stop.id)
        if not destinations:
            return voice.goodbye(replies.no_ride_from(self.sms.network, line.id, stop.id))
        return voice.gather(
            voice.destination_menu(stop, destinations),
            action(DESTINATION_PATH, stop=stop.id, **{"try": str(attempt)}),
            voice.keys_for(len(destinations)),
        )

    async def _destination_chosen(self, step: CallStep, phone: str) -> str:
        place = self._stop_of(step.query.get("stop", ""))
        if place is None:
            return voice.goodbye(voice.GOODBYE_UNDERSTOOD)
        line, stop = place
        destinations = line.destinations_from(stop.id)
        index = voice.choice(step.digits, len(destinations))
        if index is None:
            if step.attempt >= LAST_TRY:
                return voice.goodbye(voice.GOODBYE_UNDERSTOOD)
            return self._ask_destination(line, stop, attempt=LAST_TRY)
        abuse = self.sms.abuse
        wait = await abuse.admit_request(abuse.phone_identity(phone))
        if wait is not None:  # the SMS channel's request rate: one policy per number
            return voice.goodbye(replies.requests_limited(wait.total_seconds()), "Au revoir.")
        outcome = await self.sms.intake.request_ride(
            line_id=line.id,
            stop_id=stop.id,
            destination_id=destinations[index].id,
            seats=1,
            source=Source(Channel.VOICE, step.call_sid),
            phone=phone,
        )
        if not isinstance(outcome, Accepted):
            return voice.goodbye(voice.UNAVAILABLE)
        return await self._placed(outcome.request, phone, new=outcome.new)

    async def _placed(self, request: RideRequest, phone: str, new: bool) -> str:
        network = self.sms.network
        if request.state is RequestState.REFUSED and request.cause is Cause.ALREADY_WAITING:
            waiting = self.sms.engine.state.waiting_for_phone(phone)
            if waiting is not None and waiting.code is not None:
                name = _destination_name(network.line(waiting.line_id), waiting)
                return voice.goodbye(voice.already_waiting(name, waiting.code))
        if request.state is not RequestState.WAITING or request.code is None:
            return voice.goodbye(replies.ride_outcome(network, request), "Au revoir.")
        outlook = await self.sms.expected_wait(request)  # the SMS reply's, read off the loop
        wait, driver = outlook.wait_minutes, outlook.driver_minutes
        if new:  # the code in writing too (a number that wrote STOP is not texted)
            text = replies.ride_outcome(network, request, wait_minutes=wait, driver_minutes=driver)
            self.sms.sender.send(OutgoingSms(phone, text, request.id))
        name = _destination_name(network.line(request.line_id), request)
        return voice.goodbye(voice.code_read_back(name, request.code, wait, driver))

    def _again(self, step: CallStep, prompt: str, retry: str, keys: int | None = None) -> str:
        """Ask once more, or say goodbye when this was the repeat already."""
        if step.attempt >= LAST_TRY:
            log.info("voice.not_understood", sid=step.call_sid, step=step.path)
            return voice.goodbye(voice.GOODBYE_UNDERSTOOD)
        return voice.gather(prompt, retry, keys)

    def _stop_of(self, stop_id: str) -> tuple[Line, Stop] | None:
        for line in self.sms.network.lines:
            for stop in line.all_stops():
                if stop.id == stop_id:
                    return line, stop
        return None


def _destination_name(line: Line | None, request: RideRequest) -> str:
    destination = line.stop(request.destination_id) if line else None
    return destination.name if destination else request.destination_id
