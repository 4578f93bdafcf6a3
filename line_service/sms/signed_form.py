"""Adapter: a form posted by Twilio, trusted only once its X-Twilio-Signature is checked.

The signature covers `CARPOOL_PUBLIC_URL` + the path (and query) Twilio called and the form's
fields, keyed with the auth token: every Twilio webhook (SMS, voice) is read through here.
"""

from __future__ import annotations

import structlog
from fastapi import HTTPException, Request

from line_service.sms.channel import SmsChannel
from sms_gateway.twilio_sender import signature_is_valid

log = structlog.get_logger(__name__)

MAX_FORM_BYTES = 64 * 1024
XML = "application/xml"


async def signed_form(request: Request, channel: SmsChannel, path: str) -> dict[str, str]:
    """The form Twilio posted, once its signature is checked (403 otherwise).

    `path` is what Twilio called after `PUBLIC_URL`, query string included (it is signed too).
    """
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
