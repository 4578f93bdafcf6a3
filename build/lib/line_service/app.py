"""Composition root: `create_app(settings)` — the FastAPI app whose lifespan runs the service."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI

from line_service.runtime import BackgroundJob, Runtime, build_runtime, running, utc_now
from line_service.settings import Settings
from line_service.sms.routes import sms
from line_service.web.dashboard import install_operations
from line_service.web.public_routes import api, health


def create_app(
    settings: Settings,
    background: tuple[BackgroundJob, ...] = (),
    runtime: Runtime | None = None,
    already_running: bool = False,
) -> FastAPI:
    """The service as an ASGI app; nothing starts until its lifespan runs.

    With `already_running`, `runtime` is live already (`carpool-line serve` starts dispatching
    before it imports the web side) and the lifespan runs only the live-updates hub.
    """
    built = runtime or build_runtime(settings, utc_now)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Runtime]]:
        if not already_running:
            async with running(built, (*background, operations.hub.run)) as live:
                yield {"runtime": live}
            return
        hub = asyncio.create_task(operations.hub.run(built), name="live-hub")
        try:
            yield {"runtime": built}
        finally:
            hub.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await hub

    app = FastAPI(
        title="Carpool line service",
        version="0.1.0",
        summary="Dynamic carpool lines: stop terminals, variable-message signs, SMS, dispatcher.",
        lifespan=lifespan,
    )
    app.include_router(health)
    app.include_router(api)
    app.include_router(sms)
    operations = install_operations(app, built)  # operator API, live updates, metrics, "/"

    return app
