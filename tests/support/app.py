"""Test support: the real app of a runtime served by uvicorn in this event loop (lifespan
included), with a client for it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
import uvicorn

from line_service.app import create_app
from line_service.runtime import Runtime
from line_service.sms.opt_outs import OptOutSender
from sms_gateway.console_sender import ConsoleSender
from tests.support.brokers import free_port
from tests.support.waiting import wait_until


@contextlib.asynccontextmanager
async def served_app(runtime: Runtime) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a free port until the block ends; the client's base URL is its root."""
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


def console_sender(runtime: Runtime) -> ConsoleSender:
    """The console provider behind the runtime's STOP filter (what the service texted)."""
    assert runtime.sms is not None
    sender = runtime.sms.sender
    assert isinstance(sender, OptOutSender)
    assert isinstance(sender.provider, ConsoleSender)
    return sender.provider
