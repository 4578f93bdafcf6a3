"""Adapter: the phone line's Twilio Voice webhooks (`POST /voice/twilio` and its action URLs).

Each checks `X-Twilio-Signature` against `CARPOOL_PUBLIC_URL` + the path and query Twilio called,
with the auth token, exactly as `/sms/twilio` does: a missing or wrong signature gets 403 and
changes nothing. Answers are TwiML in French (`<Say language="fr-FR">`, `<Gather input="dtmf">`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from line_service.sms.signed_form import XML, signed_form
from line_service.voice.channel import (
    CALL_PATH,
    DESTINATION_PATH,
    STOP_PATH,
    WHICH_STOP_PATH,
    CallStep,
    VoiceChannel,
)

voice = APIRouter(tags=["voice"])
MAX_QUERY_VALUE = 64


def get_voice(request: Request) -> VoiceChannel:
    """The running phone line (lifespan state `voice`; None when it is not configured)."""
    channel: VoiceChannel | None = getattr(request.state, "voice", None)
    if channel is None:
        raise HTTPException(503, "the phone line is not configured")
    return channel


VoiceDep = Annotated[VoiceChannel, Depends(get_voice)]


async def _step(request: Request, channel: VoiceChannel, path: str) -> Response:
    query = request.url.query
    params = await signed_form(request, channel.sms, path + (f"?{query}" if query else ""))
    call_sid = params.get("CallSid", "")
    if not call_sid:
        raise HTTPException(400, "CallSid is missing")
    step = CallStep(
        call_sid=call_sid[:64],
        path=path,
        query={k: v[:MAX_QUERY_VALUE] for k, v in request.query_params.items()},
        caller=params.get("From", ""),
        digits=params.get("Digits", "")[:16],
    )
    return Response(await channel.handle(step), media_type=XML)


_XML_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {XML: {}}, "description": "TwiML, in French"}
}


@voice.post(CALL_PATH, response_class=Response, responses=_XML_ANSWER)
async def incoming_call(request: Request, channel: VoiceDep) -> Response:
    """A rider calls the line's number: ask for the stop's code."""
    return await _step(request, channel, CALL_PATH)


@voice.post(STOP_PATH, response_class=Response, responses=_XML_ANSWER)
async def stop_keyed(request: Request, channel: VoiceDep) -> Response:
    """The caller keyed the stop's code: ask for the destination (or which stop)."""
    return await _step(request, channel, STOP_PATH)


@voice.post(WHICH_STOP_PATH, response_class=Response, responses=_XML_ANSWER)
async def stop_chosen(request: Request, channel: VoiceDep) -> Response:
    """The caller chose among stops sharing the keyed code."""
    return await _step(request, channel, WHICH_STOP_PATH)


@voice.post(DESTINATION_PATH, response_class=Response, responses=_XML_ANSWER)
async def destination_chosen(request: Request, channel: VoiceDep) -> Response:
    """The caller chose the destination: the request is placed and its code read back."""
    return await _step(request, channel, DESTINATION_PATH)
