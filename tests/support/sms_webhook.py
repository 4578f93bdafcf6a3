"""Test support: the app served in-process by uvicorn, and Twilio-signed webhooks posted to it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from pydantic import SecretStr

from line_service.app import create_app
from line_service.runtime import Runtime, build_runtime
from line_service.settings import Settings
from line_service.sms.opt_outs import OptOutSender
from sms_gateway.console_sender import ConsoleSender
from tests.support.brokers import free_port
from tests.support.service import write_lines_file
from tests.support.twilio_standin import AUTH_TOKEN, sign
from tests.support.waiting import wait_until

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


@contextlib.asynccontextmanager
async def served(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The runtime's app on a free port (lifespan included), and a client for it."""
    port = free_port()
    config = uvicorn.Config(
        create_app(runtime.settings, runtime=runtime),
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        # uvicorn would believe X-Forwarded-For from 127.0.0.1: CARPOOL_TRUSTED_PROXIES decides.
        proxy_headers=False,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    await asyncio.to_thread(wait_until, lambda: server.started, 20, "uvicorn serving")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client
    finally:
        server.should_exit = True
        await serving


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


def console(runtime: Runtime) -> ConsoleSender:
    """The console provider behind the runtime's SMS channel (what it "sent")."""
    assert runtime.sms is not None
    sender = runtime.sms.sender
    assert isinstance(sender, OptOutSender)
    assert isinstance(sender.provider, ConsoleSender)
    return sender.provider
