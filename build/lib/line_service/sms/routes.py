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
from line_service.web.public_routes import RuntimeDep
from sms_gateway import twiml
from sms_gateway.twilio_sender import signature_is_valid

log = structlog.get_logger(__name__)

MAX_FORM_BYTES = 64 * 1024
XML = "application/xml"

sms = APIRouter(tags=["sms"])


def get_channel(runtime: RuntimeDep) -> SmsChannel:
    """The running SMS channel."""
    channel = runtime.sms
    if channel is None:
        raise HTTPException(503, "the SMS channel is not configured")
    return channel


ChannelDep = Annotated[SmsChannel, Depends(get_channel)]


async def _signed_form(request: Request, channel: SmsChannel, path: str) -> dict[str, str]:
    """The form Twilio posted, once its signature is checked (403 otherwise)."""
    declared = request.headers.get("content-length", "0")
    if not declared.isdigit() or int(declared) > MAX_FORM_BYTES:
        raise HTTPException(413, "form too large")
    form = await request.form()
    params = {key: value for key, value in form.multi_items() if isinstance(value, str)}
    signature = request.headers.get("X-Twilio-Signature")
    if not signature_is_valid(channel.auth_token, channel.url(path), params, signature):
        log.warning(
            "sms.forbidden", path=path, signed=signature is not None, token=bool(channel.auth_token)
        )
        raise HTTPException(403, "invalid or missing X-Twilio-Signature")
    return params


@sms.post(
    INBOUND_PATH,
    response_class=Response,
    responses={200: {"content": {XML: {}}, "description": "TwiML reply, in French"}},
)
async def inbound_sms(request: Request, channel: ChannelDep) -> Response:
    """An SMS from a rider or a driver (Twilio's form fields); answered with TwiML."""
    params = await _signed_form(request, channel, INBOUND_PATH)
    message_sid = params.get("MessageSid") or params.get("SmsSid") or ""
    if not message_sid:
        raise HTTPException(400, "MessageSid is missing")
    reply = await channel.handle(message_sid[:64], params.get("From", ""), params.get("Body", ""))
    return Response(twiml.message(reply), media_type=XML)


@sms.post(STATUS_PATH, status_code=204, response_class=Response)
async def delivery_status(request: Request, channel: ChannelDep) -> Response:
    """Twilio reports what became of an SMS we sent (queued, sent, delivered, failed…)."""
    params = await _signed_form(request, channel, STATUS_PATH)
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
