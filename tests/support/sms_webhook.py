"""Test support: a runtime whose SMS webhooks are signed, and Twilio-signed webhooks posted to
its app (served by `tests.support.app`)."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from line_service.runtime import Runtime, build_runtime
from line_service.settings import Settings
from tests.support.service import write_lines_file
from tests.support.twilio_standin import AUTH_TOKEN, sign

PUBLIC_URL = "https://carpool.example"
RIDER = "+33612345678"


def webhook_runtime(broker_url: str, directory: Path, **overrides: Any) -> Runtime:
    """A runtime on SQLite under `directory`, SMS webhooks signed for `PUBLIC_URL`; `overrides`
    are settings (`lines_file` too)."""
    values: dict[str, Any] = {
        "database_url": f"sqlite:///{directory}/carpool.sqlite3",
        "mqtt_url": broker_url,
        "mqtt_client_id": f"webhook-test-{uuid.uuid4().hex[:8]}",
        "twilio_auth_token": SecretStr(AUTH_TOKEN),
        "public_url": PUBLIC_URL,
        "phone_hash_salt": SecretStr("pepper"),
    }
    if "lines_file" not in overrides:
        values["lines_file"] = write_lines_file(directory)
    return build_runtime(Settings(**{**values, **overrides}))


def new_sid() -> str:
    """A fresh Twilio MessageSid."""
    return "SM" + uuid.uuid4().hex


class Sms:
    """Posts Twilio-shaped, Twilio-signed webhooks to the app."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(
        self,
        body: str,
        sender: str = RIDER,
        sid: str | None = None,
        signature: str | None = "compute",
        path: str = "/sms/twilio",
    ) -> httpx.Response:
        params = {
            "MessageSid": sid or new_sid(),
            "AccountSid": "AC" + "0" * 32,
            "From": sender,
            "To": "+33700000001",
            "Body": body,
            "NumMedia": "0",
        }
        headers = {}
        if signature == "compute":
            headers["X-Twilio-Signature"] = sign(PUBLIC_URL + path, params)
        elif signature is not None:
            headers["X-Twilio-Signature"] = signature
        return await self.client.post(path, data=params, headers=headers)

    async def reply(self, body: str, sender: str = RIDER, sid: str | None = None) -> str:
        response = await self.post(body, sender, sid)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/xml")
        found = re.search(r"<Message>(.*)</Message>", response.text, re.S)
        return found.group(1).replace("&gt;", ">").replace("&amp;", "&") if found else ""
