"""Composition root: `create_app(settings)` — the FastAPI app whose lifespan runs the service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from line_service.api_routes import api, health
from line_service.runtime import BackgroundJob, Runtime, build_runtime, running, utc_now
from line_service.settings import Settings


def create_app(
    settings: Settings,
    background: tuple[BackgroundJob, ...] = (),
    runtime: Runtime | None = None,
) -> FastAPI:
    """The service as an ASGI app; nothing starts until its lifespan runs."""
    built = runtime or build_runtime(settings, utc_now)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, Runtime]]:
        async with running(built, background) as live:
            yield {"runtime": live}

    app = FastAPI(
        title="Carpool line service",
        version="0.1.0",
        summary="Dynamic carpool lines: stop terminals, variable-message signs, SMS, dispatcher.",
        lifespan=lifespan,
    )
    app.include_router(health)
    app.include_router(api)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def home() -> str:
        names = ", ".join(line.name for line in built.network.lines)
        return (
            "<!doctype html><html lang=fr><meta charset=utf-8><title>Lignes de covoiturage</title>"
            f"<h1>Lignes : {names}</h1><p><a href=/docs>API</a></p></html>"
        )

    return app
