"""Adapter: the in-process amqtt broker for demo mode only (bound to 127.0.0.1)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from amqtt.broker import Broker


@contextlib.asynccontextmanager
async def embedded_broker(port: int) -> AsyncIterator[None]:
    """Run an anonymous MQTT broker on 127.0.0.1:`port` for the duration of the block."""
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    broker = Broker(config)
    await broker.start()
    try:
        yield
    finally:
        await broker.shutdown()
