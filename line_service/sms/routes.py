"""Adapter: Twilio's webhooks — inbound SMS (`POST /sms/twilio`) and delivery status callbacks.

Both check `X-Twilio-Signature` against `CARPOOL_PUBLIC_URL` + the route's path with the auth
token; a missing or wrong signature (or no token configured) gets 403 and changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request, Response

from line_service.sms.channel import INBOUND_PATH, STATUS_PATH, SmsChannel
from line_service.sms.signed_form import XML, signed_form
from sms_gateway import twiml

log = structlog.get_logger(__name__)


sms = APIRouter(tags=["sms"])


def get_channel(request: Request) -> SmsChannel:
    """The running SMS channel (lifespan state `sms`; None when SMS is not configured)."""
    channel: SmsChannel | None = getattr(request.state, "sms", None)
    if channel is None:
        raise HTTPException(503, "the SMS channel is not configured")
    return channel


ChannelDep = Annotated[SmsChannel, Depends(get_channel)]


@sms.post(
    INBOUND_PATH,
    response_class=Response,
    responses={200: {"content": {XML: {}}, "description": "TwiML reply, in French"}},
)
async def inbound_sms(request: Request, channel: ChannelDep) -> Response:
    """An SMS from a rider or a driver (Twilio's form fields); answered with TwiML."""
    params = await signed_form(request, channel, INBOUND_PATH)
    message_sid = params.get("MessageSid") or params.get("SmsSid") or ""
    if not message_sid:
        raise HTTPException(400, "MessageSid is missing")
    reply = await channel.handle(message_sid[:64], params.get("From", ""), params.get("Body", ""))
    return Response(twiml.message(reply), media_type=XML)


@sms.post(STATUS_PATH, status_code=204, response_class=Response)
async def delivery_status(request: Request, channel: ChannelDep) -> Response:
    """Twilio reports what became of an SMS we sent (queued, sent, delivered, failed…)."""
    params = await signed_form(request, channel, STATUS_PATH)
    message_sid = params.get("MessageSid") or params.get("SmsSid") or ""
    status = params.get("MessageStatus") or params.get("SmsStatus") or ""
    if not message_sid or not status:
        raise HTTPException(400, "MessageSid and MessageStatus are required")
    error_code = params.get("ErrorCode") or None
    await asyncio.to_thread(
        channel.store.record_status, message_sid, status, error_code, channel.clock()
    )
    log.info("sms.status", sid=message_sid[:64], status=status[:32], error_code=error_code)
    return Response(status_code=204)
