"""Pure: TwiML answers to Twilio's webhook (`<Response><Message>…</Message></Response>`)."""

from __future__ import annotations

from xml.sax.saxutils import escape

XML_HEADER = '<?xml version="1.0" encoding="UTF-8"?>'


def message(text: str | None) -> str:
    """A TwiML document replying `text` to the sender, or replying nothing when None."""
    if not text:
        return f"{XML_HEADER}<Response/>"
    return f"{XML_HEADER}<Response><Message>{escape(text)}</Message></Response>"
