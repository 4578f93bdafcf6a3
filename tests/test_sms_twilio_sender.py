"""Outbound SMS through the twilio library against a local stand-in for Twilio's REST API."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator

import pytest

from sms_gateway.sender import OutgoingSms
from sms_gateway.twilio_sender import TwilioAccount, TwilioSender, signature_is_valid
from tests.support.twilio_standin import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    FROM_NUMBER,
    TwilioStandIn,
    sign,
)
from tests.support.waiting import wait_until

RIDER = "+33612345678"
CALLBACK = "https://carpool.example/sms/twilio/status"


@pytest.fixture
def standin() -> Iterator[TwilioStandIn]:
    server = TwilioStandIn()
    server.start()
    yield server
    server.stop()


def account(standin: TwilioStandIn, token: str = AUTH_TOKEN) -> TwilioAccount:
    return TwilioAccount(ACCOUNT_SID, token, FROM_NUMBER, standin.base_url, CALLBACK)


@contextlib.asynccontextmanager
async def delivering(sender: TwilioSender) -> AsyncIterator[TwilioSender]:
    task = asyncio.create_task(sender.run())
    try:
        yield sender
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def eventually(condition: Callable[[], bool], what: str) -> None:
    """Wait (off the loop, so the sender keeps running) until `condition` holds."""
    await asyncio.to_thread(wait_until, condition, 10, what)


async def test_a_message_reaches_twilio_with_to_from_body_and_basic_auth(
    standin: TwilioStandIn,
) -> None:
    statuses: list[tuple[str, str]] = []
    sender = TwilioSender(account(standin), on_sent=lambda sid, st: statuses.append((sid, st)))
    async with delivering(sender):
        sender.send(OutgoingSms(RIDER, "Bon voyage! Le conducteur a validé votre code.", "r1"))
        await eventually(lambda: sender.sent == 1, "sender.sent == 1")
    [received] = standin.received
    assert received.path == f"/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json"
    assert (received.username, received.password) == (ACCOUNT_SID, AUTH_TOKEN)
    assert (received.to, received.from_) == (RIDER, FROM_NUMBER)
    assert received.body == "Bon voyage! Le conducteur a validé votre code."
    assert received.status_callback == CALLBACK
    assert len(statuses) == 1
    assert statuses[0][0].startswith("SM")
    assert statuses[0][1] == "queued"


async def test_a_provider_error_is_retried_until_it_goes_through(standin: TwilioStandIn) -> None:
    standin.failures.extend([500, 503])
    sender = TwilioSender(account(standin), first_retry_delay=0.01)
    async with delivering(sender):
        sender.send(OutgoingSms(RIDER, "Un taxi arrive.", "r2"))
        await eventually(lambda: sender.sent == 1, "sender.sent == 1")
    assert [sms.body for sms in standin.received] == ["Un taxi arrive."]
    assert sender.dropped == 0


async def test_a_refusal_by_twilio_is_dropped_without_retrying_and_the_next_one_still_goes(
    standin: TwilioStandIn,
) -> None:
    sender = TwilioSender(account(standin, token="wrong-token"), first_retry_delay=0.01)
    async with delivering(sender):
        sender.send(OutgoingSms(RIDER, "refused", "r3"))
        await eventually(lambda: sender.dropped == 1, "sender.dropped == 1")
    assert standin.received[0].password == "wrong-token"  # tried once, not retried
    assert len(standin.received) == 1

    good = TwilioSender(account(standin), workers=1)
    async with delivering(good):
        good.send(OutgoingSms(RIDER, "accepted", "r4"))
        await eventually(lambda: good.sent == 1, "good.sent == 1")
    assert standin.bodies_to(RIDER)[-1] == "accepted"


async def test_a_full_queue_drops_instead_of_blocking_the_caller() -> None:
    unreachable = TwilioAccount(ACCOUNT_SID, AUTH_TOKEN, FROM_NUMBER, "http://127.0.0.1:9")
    sender = TwilioSender(unreachable, queue_size=2)
    for index in range(5):  # no worker runs: nothing is delivered, send must still return
        sender.send(OutgoingSms(RIDER, f"message {index}", f"r{index}"))
    assert sender.dropped == 3


def test_signatures_from_the_twilio_library_are_accepted_and_others_refused() -> None:
    url = "https://carpool.example/sms/twilio"
    params = {"From": RIDER, "Body": "CAL DUNKERQUE", "MessageSid": "SM1"}
    good = sign(url, params)
    assert signature_is_valid(AUTH_TOKEN, url, params, good)
    assert not signature_is_valid(AUTH_TOKEN, url, {**params, "Body": "ANNULER"}, good)
    assert not signature_is_valid(AUTH_TOKEN, url + "x", params, good)
    assert not signature_is_valid(AUTH_TOKEN, url, params, None)
    assert not signature_is_valid("", url, params, sign(url, params, token=""))
    assert not signature_is_valid(AUTH_TOKEN, url, params, "not base64 at all ✗")
